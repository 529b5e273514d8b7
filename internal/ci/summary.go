package ci

import (
	"fmt"
	"strings"
	"text/tabwriter"
)

// Summary is what a step reports at its end: a title, a few lines of
// context and a table. It renders as Markdown for GitHub's step summary and
// as aligned text for a terminal.
type Summary struct {
	Title string
	Lines []string
	Table Table
	Notes []string
}

// Table is a header and rows of cells. Short, if set, is used in place of
// a cell on the terminal (a full digest is too wide there).
type Table struct {
	Header []string
	Rows   [][]string
	Short  func(col int, cell string) string
}

// Markdown renders the summary for GitHub and for summary files.
func (s *Summary) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "### %s\n\n", mdEscape(s.Title))
	for _, l := range s.Lines {
		fmt.Fprintf(&b, "%s\n\n", l)
	}
	if len(s.Table.Header) > 0 {
		b.WriteString("|")
		for _, h := range s.Table.Header {
			fmt.Fprintf(&b, " %s |", mdCell(h))
		}
		b.WriteString("\n|")
		for range s.Table.Header {
			b.WriteString("---|")
		}
		b.WriteString("\n")
		for _, row := range s.Table.Rows {
			b.WriteString("|")
			for _, c := range row {
				fmt.Fprintf(&b, " %s |", mdCell(c))
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	for _, n := range s.Notes {
		fmt.Fprintf(&b, "> %s\n", n)
	}
	return strings.TrimRight(b.String(), "\n") + "\n"
}

// Text renders the summary for a terminal.
func (s *Summary) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", s.Title)
	for _, l := range s.Lines {
		fmt.Fprintf(&b, "  %s\n", strings.ReplaceAll(l, "`", ""))
	}
	if len(s.Table.Header) > 0 {
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  %s\n", strings.Join(s.Table.Header, "\t"))
		for _, row := range s.Table.Rows {
			cells := make([]string, len(row))
			for i, c := range row {
				if s.Table.Short != nil {
					c = s.Table.Short(i, c)
				}
				cells[i] = strings.ReplaceAll(c, "`", "")
			}
			fmt.Fprintf(tw, "  %s\n", strings.Join(cells, "\t"))
		}
		tw.Flush()
	}
	for _, n := range s.Notes {
		fmt.Fprintf(&b, "  %s\n", n)
	}
	return b.String()
}

// mdCell keeps a cell on one line and its pipes from splitting the row.
func mdCell(s string) string {
	s = strings.NewReplacer("|", `\|`, "\r", " ", "\n", " ").Replace(s)
	return s
}

func mdEscape(s string) string {
	return strings.NewReplacer("\n", " ", "<", "&lt;", ">", "&gt;").Replace(s)
}
