package e2e

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slipwayci/slipway/internal/registrytest"
	"github.com/slipwayci/slipway/internal/testkit"
)

// TestImageRegistryBase pushes a base made here to a real registry
// (Debian's docker-registry), builds the sample on it by reference, and
// runs the result: the base's user and CA roots must be what the binary
// sees, and the index must name the base it came from.
func TestImageRegistryBase(t *testing.T) {
	requireE2E(t, "git", "docker-registry", "umoci", "runc")
	r := registrytest.New(t, registrytest.Options{})
	ref, err := name.ParseReference(r.Host + "/e2e/base:1")
	if err != nil {
		t.Fatal(err)
	}
	base := imageBase(t)
	if err := remote.WriteIndex(ref, base, pushOpts(r, registrytest.Auth{})...); err != nil {
		t.Fatalf("pushing the base to %s: %v", r.Host, err)
	}
	baseDigest, _ := base.Digest()

	repo, rec := imageSample(t, "--build", "--base", ref.String())
	if rec.Image.BaseDigest != baseDigest.String() {
		t.Errorf("the record's base digest is %s, want the pushed index %s", rec.Image.BaseDigest, baseDigest)
	}
	lay := filepath.Join(repo, "dist", rec.Image.Layout)
	im, err := testkit.LayoutIndex(t, lay).IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.Annotations["org.opencontainers.image.base.name"] != ref.Name() || im.Annotations["org.opencontainers.image.base.digest"] != baseDigest.String() {
		t.Errorf("index annotations %v do not name the base %s@%s", im.Annotations, ref.Name(), baseDigest)
	}
	if len(im.Manifests) != 2 {
		t.Errorf("the index has %d images; want amd64 and arm64, without the base's attestation", len(im.Manifests))
	}

	out := imageRunc(t, imageUnpack(t, lay, "linux/amd64"), "-check")
	if !strings.Contains(out, "\nuid=1000 gid=1000\n") {
		t.Errorf("the binary did not run as the base's user 1000:\n%s", out)
	}
	want := regexp.MustCompile(`ca-roots: (\d+)`).FindStringSubmatch(out)
	if want == nil || want[1] == "0" {
		t.Errorf("the binary found no CA roots in the base:\n%s", out)
	}
}

// imageBase is a small base for linux/amd64 and linux/arm64: a user 1000,
// /tmp, and this machine's CA bundle, plus an attestation manifest of the
// kind BuildKit adds, which must not count as a platform.
func imageBase(t *testing.T) v1.ImageIndex {
	t.Helper()
	certs, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Fatalf("reading the host's CA bundle for the base: %v", err)
	}
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range []struct {
		name string
		mode int64
		data string
	}{
		{"etc/", 0o755, ""},
		{"etc/passwd", 0o644, "root:x:0:0:root:/root:/sbin/nologin\napp:x:1000:1000:app:/home/app:/sbin/nologin\n"},
		{"etc/group", 0o644, "root:x:0:\napp:x:1000:\n"},
		{"etc/ssl/", 0o755, ""},
		{"etc/ssl/certs/", 0o755, ""},
		{"etc/ssl/certs/ca-certificates.crt", 0o644, string(certs)},
		{"tmp/", 0o1777, ""},
	} {
		h := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), Typeflag: tar.TypeReg}
		if strings.HasSuffix(f.name, "/") {
			h.Typeflag = tar.TypeDir
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromReader(bytes.NewReader(b.Bytes()), tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range []string{"amd64", "arm64"} {
		img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
		img, err = mutate.ConfigFile(img, &v1.ConfigFile{
			OS: "linux", Architecture: arch, RootFS: v1.RootFS{Type: "layers"},
			Config: v1.Config{User: "1000:1000", Env: []string{"PATH=/usr/bin:/bin"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, layer); err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: "linux", Architecture: arch},
		}})
	}
	att := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	return mutate.AppendManifests(idx, mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{
		Platform:    &v1.Platform{OS: "unknown", Architecture: "unknown"},
		Annotations: map[string]string{"vnd.docker.reference.type": "attestation-manifest"},
	}})
}
