package ci

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSummaryMarkdown(t *testing.T) {
	tests := []struct {
		name string
		s    Summary
		want string
	}{
		{
			name: "title only",
			s:    Summary{Title: "Build"},
			want: "### Build\n",
		},
		{
			name: "everything",
			s: Summary{
				Title: "Build",
				Lines: []string{"Pushed `ghcr.io/o/r`", "2 platforms"},
				Table: Table{
					Header: []string{"Platform", "Digest"},
					Rows:   [][]string{{"linux/amd64", "`sha256:aa`"}, {"linux/arm64", "`sha256:bb`"}},
				},
				Notes: []string{"Reproducible."},
			},
			want: "### Build\n\n" +
				"Pushed `ghcr.io/o/r`\n\n" +
				"2 platforms\n\n" +
				"| Platform | Digest |\n" +
				"|---|---|\n" +
				"| linux/amd64 | `sha256:aa` |\n" +
				"| linux/arm64 | `sha256:bb` |\n\n" +
				"> Reproducible.\n",
		},
		{
			name: "title escaped onto one line",
			s:    Summary{Title: "a\n<script>b</script>"},
			want: "### a &lt;script&gt;b&lt;/script&gt;\n",
		},
		{
			name: "header without rows",
			s:    Summary{Title: "T", Table: Table{Header: []string{"a", "b"}}},
			want: "### T\n\n| a | b |\n|---|---|\n",
		},
		{
			name: "rows without header are left out",
			s:    Summary{Title: "T", Table: Table{Rows: [][]string{{"x"}}}},
			want: "### T\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.s.Markdown()); diff != "" {
				t.Errorf("Markdown() (-want +got):\n%s", diff)
			}
		})
	}
}

// Whatever the cells hold, the table parses back, as GitHub's Markdown
// reads it, to one row per row and one cell per cell.
func TestSummaryMarkdownTableIsValid(t *testing.T) {
	s := Summary{
		Title: "T",
		Table: Table{
			Header: []string{"na|me", "val\nue"},
			Rows: [][]string{
				{"a|b", "c"},
				{"multi\nline\r\ncell", "|"},
				{`back\slash`, `\|`},
				{"", "||"},
				{"| --- | --- |", "x"},
			},
		},
	}
	md := s.Markdown()
	var table []string
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(l, "|") {
			table = append(table, l)
		}
	}
	if want := 2 + len(s.Table.Rows); len(table) != want {
		t.Fatalf("table has %d lines, want %d:\n%s", len(table), want, md)
	}
	if table[1] != "|---|---|" {
		t.Errorf("delimiter row = %q", table[1])
	}
	got := [][]string{gfmCells(t, table[0])}
	for _, l := range table[2:] {
		got = append(got, gfmCells(t, l))
	}
	want := [][]string{{"na|me", "val ue"}}
	for _, row := range s.Table.Rows {
		var cells []string
		for _, c := range row {
			cells = append(cells, strings.TrimSpace(strings.NewReplacer("\r", " ", "\n", " ").Replace(c)))
		}
		want = append(want, cells)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("cells (-want +got):\n%s\n%s", diff, md)
	}
}

// gfmCells splits a table row as cmark-gfm does: a pipe right after a
// backslash belongs to the cell, and that backslash is dropped.
func gfmCells(t *testing.T, row string) []string {
	t.Helper()
	if !strings.HasPrefix(row, "|") || !strings.HasSuffix(row, "|") || strings.HasSuffix(row, `\|`) {
		t.Fatalf("row %q does not start and end with a pipe", row)
	}
	row = row[1 : len(row)-1]
	var cells []string
	var cell strings.Builder
	for i := 0; i < len(row); i++ {
		switch {
		case row[i] == '\\' && i+1 < len(row) && row[i+1] == '|':
			cell.WriteByte('|')
			i++
		case row[i] == '|':
			cells = append(cells, strings.TrimSpace(cell.String()))
			cell.Reset()
		default:
			cell.WriteByte(row[i])
		}
	}
	return append(cells, strings.TrimSpace(cell.String()))
}

func TestSummaryText(t *testing.T) {
	tests := []struct {
		name string
		s    Summary
		want string
	}{
		{
			name: "title only",
			s:    Summary{Title: "Build"},
			want: "Build\n",
		},
		{
			name: "aligned columns, backticks dropped",
			s: Summary{
				Title: "Build",
				Lines: []string{"Pushed `ghcr.io/o/r`"},
				Table: Table{
					Header: []string{"Platform", "Digest", "Size"},
					Rows: [][]string{
						{"linux/amd64", "`sha256:aa`", "1"},
						{"linux/arm64/v8", "`sha256:bbbbbb`", "22"},
					},
				},
				Notes: []string{"done"},
			},
			want: "Build\n" +
				"  Pushed ghcr.io/o/r\n" +
				"  Platform        Digest         Size\n" +
				"  linux/amd64     sha256:aa      1\n" +
				"  linux/arm64/v8  sha256:bbbbbb  22\n" +
				"  done\n",
		},
		{
			name: "Short shortens cells, not the header",
			s: Summary{
				Title: "T",
				Table: Table{
					Header: []string{"Platform", "Digest"},
					Rows: [][]string{
						{"linux/amd64", "sha256:0123456789abcdef"},
						{"linux/arm64", "sha256:fedcba9876543210"},
					},
					Short: func(col int, cell string) string {
						if col == 1 {
							return cell[:len("sha256:")+4]
						}
						return cell
					},
				},
			},
			want: "T\n" +
				"  Platform     Digest\n" +
				"  linux/amd64  sha256:0123\n" +
				"  linux/arm64  sha256:fedc\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.s.Text()); diff != "" {
				t.Errorf("Text() (-want +got):\n%s", diff)
			}
		})
	}
}

// Off GitHub the Markdown goes to a file: SLIPWAY_SUMMARY_FILE, else
// Options.SummaryFile, relative paths under Options.Dir.
func TestWriteSummaryFile(t *testing.T) {
	tests := []struct {
		name        string
		env         string // SLIPWAY_SUMMARY_FILE; "$DIR" becomes the temp dir
		summaryFile string
		want        string // where the file lands, relative to the temp dir; "" for none
	}{
		{name: "option relative to Dir", summaryFile: "summary.md", want: "summary.md"},
		{name: "option in a new subdirectory", summaryFile: "out/build/summary.md", want: "out/build/summary.md"},
		{name: "option absolute", summaryFile: "$DIR/abs.md", want: "abs.md"},
		{name: "env wins over option", env: "env.md", summaryFile: "summary.md", want: "env.md"},
		{name: "env absolute", env: "$DIR/env-abs.md", want: "env-abs.md"},
		{name: "neither", want: ""},
	}
	for _, platform := range []string{"gitlab", "local"} {
		for _, tt := range tests {
			t.Run(platform+"/"+tt.name, func(t *testing.T) {
				dir := t.TempDir()
				vars := map[string]string{}
				for k, v := range platformEnv[platform] {
					vars[k] = v
				}
				if tt.env != "" {
					vars["SLIPWAY_SUMMARY_FILE"] = strings.ReplaceAll(tt.env, "$DIR", dir)
				}
				o := Options{Dir: dir, SummaryFile: strings.ReplaceAll(tt.summaryFile, "$DIR", dir)}
				r := detect(t, vars, o)
				first := &Summary{Title: "First", Lines: []string{"one"}}
				second := &Summary{Title: "Second", Table: Table{Header: []string{"h"}, Rows: [][]string{{"c"}}}}
				for _, s := range []*Summary{first, second} {
					if err := r.p.WriteSummary(s); err != nil {
						t.Fatalf("WriteSummary: %v", err)
					}
				}
				if diff := cmp.Diff(first.Text()+second.Text(), r.stdout.String()); diff != "" {
					t.Errorf("stdout (-want +got):\n%s", diff)
				}
				var files []string
				filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
					if err == nil && !d.IsDir() {
						rel, _ := filepath.Rel(dir, path)
						files = append(files, filepath.ToSlash(rel))
					}
					return err
				})
				if tt.want == "" {
					if len(files) != 0 {
						t.Errorf("wrote %v, want no file", files)
					}
					return
				}
				if diff := cmp.Diff([]string{tt.want}, files); diff != "" {
					t.Errorf("files (-want +got):\n%s", diff)
				}
				// The file holds the latest summary, not both.
				if diff := cmp.Diff(second.Markdown()+"\n", readFile(t, filepath.Join(dir, tt.want))); diff != "" {
					t.Errorf("summary file (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestWriteSummaryFileError(t *testing.T) {
	for _, platform := range []string{"gitlab", "local"} {
		t.Run(platform, func(t *testing.T) {
			dir := t.TempDir()
			blocker := filepath.Join(dir, "file")
			if err := os.WriteFile(blocker, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			r := detect(t, platformEnv[platform], Options{Dir: dir, SummaryFile: "file/summary.md"})
			err := r.p.WriteSummary(&Summary{Title: "T"})
			if err == nil || !strings.Contains(err.Error(), "writing summary") {
				t.Errorf("WriteSummary under a file = %v, want a writing summary error", err)
			}
		})
	}
}
