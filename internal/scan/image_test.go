package scan

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/slipwayci/slipway/internal/scan/scantest"
)

// multiPlatform is an index of two random images, amd64 and arm64, plus
// an attestation manifest as buildkit adds them.
func multiPlatform(t *testing.T) (v1.ImageIndex, map[string]v1.Hash) {
	t.Helper()
	digests := map[string]v1.Hash{}
	idx := v1.ImageIndex(empty.Index)
	for _, p := range []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}, {OS: "unknown", Architecture: "unknown"}} {
		img, err := random.Image(64, 1)
		if err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		digests[p.OS+"/"+p.Architecture] = d
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	return idx, digests
}

func TestOpenImageLayoutPicksThePlatform(t *testing.T) {
	dir := t.TempDir()
	idx, digests := multiPlatform(t)
	p, err := layout.Write(filepath.Join(dir, "image"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(idx); err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()
	for _, tc := range []struct{ platform, want string }{
		{"linux/arm64", "linux/arm64"},
		{"linux/amd64", "linux/amd64"},
		{"", "linux/amd64"}, // linux on this machine's architecture (the tests run on amd64)
	} {
		img, err := OpenImage(context.Background(), nil, "oci:image", tc.platform, dir)
		if err != nil {
			t.Fatal(err)
		}
		if img.Digest != want.String() || img.Manifest != digests[tc.want].String() || img.Platform != tc.want {
			t.Errorf("--platform %q: opened %s %s %s, want index %s, manifest of %s", tc.platform, img.Digest, img.Manifest, img.Platform, want, tc.want)
		}
	}
	if _, err := OpenImage(context.Background(), nil, "oci:image", "linux/s390x", dir); err == nil || !strings.Contains(err.Error(), "has no linux/s390x image (it has linux/amd64, linux/arm64") {
		t.Errorf("missing platform: %v", err)
	}
	if _, err := OpenImage(context.Background(), nil, "oci:missing", "", dir); err == nil {
		t.Error("opening a missing layout succeeded")
	}
	// A manifest of the layout, by digest.
	img, err := OpenImage(context.Background(), nil, "oci:image@"+want.String(), "linux/arm64", dir)
	if err != nil || img.Manifest != digests["linux/arm64"].String() || img.Name != "oci:image" {
		t.Errorf("oci:image@digest = %+v, %v", img, err)
	}
}

func TestOpenImageFromRegistry(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	idx, digests := multiPlatform(t)
	ref, err := name.ParseReference(strings.TrimPrefix(srv.URL, "http://") + "/acme/app:1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	img, err := OpenImage(context.Background(), nil, ref.String(), "linux/arm64", "")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()
	if img.Digest != want.String() || img.Manifest != digests["linux/arm64"].String() || img.Name != ref.String() {
		t.Errorf("opened %+v, want index %s", img, want)
	}
	if _, err := OpenImage(context.Background(), nil, "UPPER/case::bad", "", ""); err == nil {
		t.Error("a bad reference opened")
	}
}

func TestGoBinariesFindsOnlyGoExecutables(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the sample app")
	}
	bin := scantest.BuildApp(t, t.TempDir())
	files := scantest.ImageFiles(t, bin)
	files["usr/local/bin/copy"] = files["app/vulnerable"]
	if c, err := os.ReadFile("/bin/true"); err == nil {
		files["bin/true"] = c // an ELF file, not a Go one
	}
	files["app/script.sh"] = []byte("#!/bin/sh\necho hi\n")
	dir := t.TempDir()
	got, err := GoBinaries(context.Background(), scantest.Image(t, files), dir)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, b := range got {
		paths = append(paths, b.Path)
		if _, err := os.Stat(b.File); err != nil || filepath.Dir(b.File) != dir {
			t.Errorf("%s copied to %s: %v", b.Path, b.File, err)
		}
	}
	if strings.Join(paths, " ") != "app/vulnerable usr/local/bin/copy" {
		t.Errorf("Go binaries = %q", paths)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("%d files left in %s, want only the two Go binaries", len(entries), dir)
	}
}

func TestTuneGCRestores(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)
	restore := tuneGC(func(string) string { return "" })
	if memoryAvailable() > 0 {
		if p := debug.SetGCPercent(-1); p != -1 {
			t.Errorf("GC percent while scanning = %d, want off", p)
		}
	}
	restore()
	if p := debug.SetGCPercent(100); p != 100 {
		t.Errorf("GC percent after = %d, want 100 restored", p)
	}
	// GOGC in the environment is the user's choice.
	tuneGC(func(k string) string { return map[string]string{"GOGC": "50"}[k] })()
	if p := debug.SetGCPercent(100); p != 100 {
		t.Errorf("GOGC set: GC percent = %d, want it untouched", p)
	}
}
