package scan

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
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

	"github.com/slipwayci/slipway/internal/fault"
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
	for _, tc := range []struct {
		platform string
		want     []string
	}{
		{"linux/arm64", []string{"linux/arm64"}},
		{"linux/amd64", []string{"linux/amd64"}},
		{"", []string{"linux/amd64", "linux/arm64"}}, // every platform, not the attestation
	} {
		imgs, err := OpenImage(context.Background(), nil, "oci:image", tc.platform, dir)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, img := range imgs {
			got = append(got, img.Platform)
			if img.Digest != want.String() || img.Manifest != digests[img.Platform].String() || img.Name != "oci:image" {
				t.Errorf("--platform %q: opened %s %s %s, want index %s, manifest of %s", tc.platform, img.Digest, img.Manifest, img.Platform, want, img.Platform)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("--platform %q: opened %v, want %v", tc.platform, got, tc.want)
		}
	}
	// A platform the image does not have never will: exit 2, naming the
	// ones it has.
	if _, err := OpenImage(context.Background(), nil, "oci:image", "linux/s390x", dir); err == nil || !strings.Contains(err.Error(), "has no linux/s390x image; it has linux/amd64, linux/arm64") || fault.Of(err) != fault.Invalid {
		t.Errorf("missing platform: %v (kind %v), want a usage error", err, fault.Of(err))
	}
	if _, err := OpenImage(context.Background(), nil, "oci:missing", "", dir); err == nil {
		t.Error("opening a missing layout succeeded")
	}
	// A manifest of the layout, by digest.
	imgs, err := OpenImage(context.Background(), nil, "oci:image@"+want.String(), "linux/arm64", dir)
	if err != nil || len(imgs) != 1 || imgs[0].Manifest != digests["linux/arm64"].String() || imgs[0].Name != "oci:image" {
		t.Errorf("oci:image@digest = %+v, %v", imgs, err)
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
	imgs, err := OpenImage(context.Background(), nil, ref.String(), "linux/arm64", "")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()
	if img := imgs[0]; len(imgs) != 1 || img.Digest != want.String() || img.Manifest != digests["linux/arm64"].String() || img.Name != ref.String() {
		t.Errorf("opened %+v, want index %s", imgs, want)
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
