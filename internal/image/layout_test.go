package image

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/slipwayci/slipway/internal/cli"
)

// outputs reads the step's "output k=v" lines.
func outputs(stdout string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(stdout, "\n") {
		if kv, ok := strings.CutPrefix(line, "output "); ok {
			k, v, _ := strings.Cut(kv, "=")
			out[k] = v
		}
	}
	return out
}

// snapshot is every file under dir with its contents.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		files[p] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// The attack: --layout names a directory that is not an image layout
// slipway wrote (a source tree, someone else's OCI layout, a file). The
// step refuses it, exit 2 and one line, and leaves every file as it was.
func TestLayoutOverSourceTreeRefused(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, target string)
	}{
		{"source tree", func(t *testing.T, target string) {
			writeFile(t, filepath.Join(target, "go.mod"), "module example.com/app\n", 0o644)
			writeFile(t, filepath.Join(target, "cmd", "app", "main.go"), "package main\n", 0o644)
		}},
		{"an OCI layout slipway did not write", func(t *testing.T, target string) {
			if _, err := layout.Write(target, empty.Index); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(target, "README"), "kept by hand\n", 0o644)
		}},
		{"a file", func(t *testing.T, target string) {
			writeFile(t, target, "not a directory\n", 0o644)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo, dist := sampleDist(t)
			target := filepath.Join(t.TempDir(), "precious")
			tt.setup(t, target)
			before := snapshot(t, filepath.Dir(target))
			_, stderr, code := runMain(t, filepath.Dir(dist), testEnviron(),
				"--dist", "dist", "--dir", repo, "--cache", sharedCache(), "--layout", target)
			if code != cli.ExitUsage {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, cli.ExitUsage, stderr)
			}
			if !strings.Contains(stderr, "--layout "+target) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
				t.Errorf("stderr = %q, want one line naming --layout %s", stderr, target)
			}
			if diff := cmp.Diff(before, snapshot(t, filepath.Dir(target))); diff != "" {
				t.Errorf("files changed (-before +after):\n%s", diff)
			}
		})
	}
}

// What slipway may write over: nothing there, an empty directory, or a
// layout it wrote itself, which a second run replaces. Outputs name the
// layout where it is: under dist as dist was given, else absolute, as the
// record keeps it.
func TestLayoutReplacesOnlyItsOwn(t *testing.T) {
	repo, dist := sampleDist(t)
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.MkdirAll(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		layout []string // --layout, if any
		want   string   // the layout output
	}{
		{"default", nil, "dist/image"},
		{"default again", nil, "dist/image"},
		{"relative, outside dist", []string{"--layout", "out/oci"}, filepath.ToSlash(filepath.Join(filepath.Dir(dist), "out", "oci"))},
		{"absolute, empty", []string{"--layout", empty}, filepath.ToSlash(empty)},
		{"absolute again", []string{"--layout", empty}, filepath.ToSlash(empty)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--dist", "dist", "--dir", repo, "--cache", sharedCache()}, tt.layout...)
			stdout, stderr, code := runMain(t, filepath.Dir(dist), testEnviron(), args...)
			if code != 0 {
				t.Fatalf("exit %d:\n%s", code, stderr)
			}
			got := outputs(stdout)["layout"]
			if got != tt.want {
				t.Errorf("output layout=%s, want %s", got, tt.want)
			}
			dir := filepath.FromSlash(got)
			if !filepath.IsAbs(dir) {
				dir = filepath.Join(filepath.Dir(dist), dir)
			}
			if _, err := layout.ImageIndexFromPath(dir); err != nil {
				t.Errorf("no layout where the output says: %v", err)
			}
		})
	}
}
