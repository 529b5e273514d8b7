package image

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/slipwayci/slipway/internal/build"
	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/testkit"
)

// partDist builds the sample for one platform into its own dist and
// images it, as one matrix job would.
func partDist(t *testing.T, repo, platform string) string {
	t.Helper()
	dist := filepath.Join(t.TempDir(), "dist")
	if _, err := build.Build(context.Background(), build.Options{
		Dir: repo, Platforms: builtPlatforms(t, platform), LDFlags: build.DefaultLDFlags, Out: dist, Environ: testEnviron(),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := Build(context.Background(), Options{Dist: dist, Dir: repo, Cache: sharedCache(), Environ: testEnviron()}); err != nil {
		t.Fatal(err)
	}
	return dist
}

// Merging one job per platform gives the index one job building both
// would: the same digest, and a record whose paths all hold.
func TestMerge(t *testing.T) {
	o, err := buildImage(t, Options{})
	if err != nil {
		t.Fatal(err)
	}
	whole, err := record.Load(o.Dist)
	if err != nil {
		t.Fatal(err)
	}
	amd := partDist(t, o.Dir, "linux/amd64")
	arm := partDist(t, o.Dir, "linux/arm64")

	out := filepath.Join(t.TempDir(), "merged")
	_, stderr, code := runMain(t, o.Dir, testEnviron(), "--merge", "--dist", out, "--dir", o.Dir, arm, amd)
	if code != 0 {
		t.Fatalf("merge exit %d:\n%s", code, stderr)
	}
	merged, err := record.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if merged.Image.Digest != whole.Image.Digest {
		t.Errorf("merged index %s, one job's %s", merged.Image.Digest, whole.Image.Digest)
	}
	if err := validate.Index(testkit.LayoutIndex(t, filepath.Join(out, "image"))); err != nil {
		t.Errorf("the merged layout does not validate: %v", err)
	}
	if diff := cmp.Diff(whole.Image.Platforms, merged.Image.Platforms); diff != "" {
		t.Errorf("platforms (-one job +merged):\n%s", diff)
	}
	if diff := cmp.Diff(whole.Artifacts, merged.Artifacts); diff != "" {
		t.Errorf("artifacts (-one job +merged):\n%s", diff)
	}
	for _, a := range merged.Artifacts {
		data, err := os.ReadFile(filepath.Join(out, a.Path))
		if err != nil || sha256Hex(data) != a.SHA256 {
			t.Errorf("%s in the merged dist: %v", a.Path, err)
		}
	}
	for _, pi := range merged.Image.Platforms {
		for _, sb := range pi.SBOMs {
			if _, err := os.Stat(filepath.Join(out, sb.Path)); err != nil {
				t.Errorf("SBOM %s: %v", sb.Path, err)
			}
		}
	}
}

func TestMergeErrors(t *testing.T) {
	repo, _ := sampleDist(t)
	amd := partDist(t, repo, "linux/amd64")
	tests := []struct {
		name    string
		dirs    func(t *testing.T) []string
		wantErr string
	}{
		{"same platform twice", func(t *testing.T) []string { return []string{amd, amd} }, "linux/amd64 is in both"},
		{"no image section", func(t *testing.T) []string {
			_, dist := sampleDist(t)
			return []string{dist}
		}, "its record has no image section"},
		{"different settings", func(t *testing.T) []string {
			dist := filepath.Join(t.TempDir(), "dist")
			if _, err := build.Build(context.Background(), build.Options{
				Dir: repo, Platforms: builtPlatforms(t, "linux/arm64"), LDFlags: build.DefaultLDFlags, Out: dist, Environ: testEnviron(),
			}); err != nil {
				t.Fatal(err)
			}
			if _, err := Build(context.Background(), Options{Dist: dist, Dir: repo, Cache: sharedCache(), Environ: testEnviron(), Licenses: "MIT"}); err != nil {
				t.Fatal(err)
			}
			return []string{amd, dist}
		}, "disagree on org.opencontainers.image.licenses"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--merge", "--dist", filepath.Join(t.TempDir(), "out"), "--dir", repo}, tt.dirs(t)...)
			_, stderr, code := runMain(t, repo, testEnviron(), args...)
			if code != 2 || !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, tt.wantErr)
			}
		})
	}
}
