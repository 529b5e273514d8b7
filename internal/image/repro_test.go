package image

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/slipwayci/slipway/internal/build"
	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/testkit"
)

// Two checkouts of one commit at different paths, built and imaged with
// separate caches, give the same index digest and byte-identical layouts
// and SBOMs.
func TestReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the sample twice")
	}
	ctx := context.Background()
	var digests []string
	var layouts []map[string]string
	for _, where := range []string{"a/checkout", "elsewhere/deeper/other-name"} {
		root := t.TempDir()
		repo := testkit.SampleRepo(t, "hello", filepath.Join(root, where))
		dist := filepath.Join(repo, "dist")
		if _, err := build.Build(ctx, build.Options{
			Dir: repo, Platforms: builtPlatforms(t, "linux/amd64,linux/arm64"), LDFlags: build.DefaultLDFlags,
			Out: dist, Environ: testEnviron(),
		}); err != nil {
			t.Fatal(err)
		}
		static := filepath.Join(repo, "static")
		writeFile(t, filepath.Join(static, "index.html"), "<h1>hello</h1>", 0o644)
		rec, err := Build(ctx, Options{
			Dist: dist, Dir: repo, Cache: filepath.Join(root, "cache"), StaticFiles: static,
			Environ: testEnviron(), Labels: map[string]string{"org.example.team": "payments"},
		})
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, rec.Image.Digest)
		tree := treeDigests(t, filepath.Join(dist, rec.Image.Layout))
		for name, sum := range treeDigests(t, filepath.Join(dist, SBOMDir)) {
			tree[filepath.Join(SBOMDir, name)] = sum
		}
		layouts = append(layouts, tree)
		assertSection(t, rec)
	}
	if digests[0] != digests[1] {
		t.Errorf("index digests differ: %s and %s", digests[0], digests[1])
	}
	if diff := cmp.Diff(layouts[0], layouts[1]); diff != "" {
		t.Errorf("layouts differ (-first +second):\n%s", diff)
	}
}

// treeDigests maps each file under dir to its SHA-256.
func treeDigests(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = sha256Hex(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func assertSection(t *testing.T, rec *record.Record) {
	t.Helper()
	var plats []string
	for _, p := range rec.Image.Platforms {
		plats = append(plats, p.Platform)
	}
	sort.Strings(plats)
	if diff := cmp.Diff([]string{"linux/amd64", "linux/arm64"}, plats); diff != "" {
		t.Errorf("record platforms (-want +got):\n%s", diff)
	}
}
