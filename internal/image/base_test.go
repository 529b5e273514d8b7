package image

import (
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/testkit"
)

func TestPlatformMatches(t *testing.T) {
	tests := []struct {
		name           string
		built, offered string
		want           bool
	}{
		{"same", "linux/amd64", "linux/amd64", true},
		{"arm64 without and with v8", "linux/arm64", "linux/arm64/v8", true},
		{"GOAMD64 variant on plain amd64", "linux/amd64/v3", "linux/amd64", true},
		{"arm v7 on v7", "linux/arm/v7", "linux/arm/v7", true},
		{"arm v7 on v6", "linux/arm/v7", "linux/arm/v6", false},
		{"other arch", "linux/arm64", "linux/amd64", false},
		{"other os", "windows/amd64", "linux/amd64", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := parsePlatform(tt.built)
			o, _ := parsePlatform(tt.offered)
			if got := platformMatches(b, o); got != tt.want {
				t.Errorf("platformMatches(%s, %s) = %v, want %v", tt.built, tt.offered, got, tt.want)
			}
		})
	}
}

func TestParseLayoutSpec(t *testing.T) {
	tests := []struct {
		name                  string
		in                    string
		wantPath, tag, digest string
	}{
		{"dir only", "base", "base", "", ""},
		{"tag", "./out/base:nonroot", "./out/base", "nonroot", ""},
		{"digest", "/x/base@sha256:abc", "/x/base", "", "sha256:abc"},
		{"colon in a parent dir", "/a:b/base", "/a:b/base", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, tag, d := parseLayoutSpec(tt.in)
			if diff := cmp.Diff([]string{tt.wantPath, tt.tag, tt.digest}, []string{p, tag, d}); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// ociBase is a small OCI image for platform p with one random layer.
func ociBase(t *testing.T, p string) v1.Image {
	t.Helper()
	plat, err := parsePlatform(p)
	if err != nil {
		t.Fatal(err)
	}
	img, err := ociImage(&v1.ConfigFile{
		OS: plat.OS, Architecture: plat.Architecture, Variant: plat.Variant,
		Config: v1.Config{User: "1000", Env: []string{"PATH=/bin", "BASE=1"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := random.Layer(512, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Append(img, mutate.Addendum{Layer: l, History: v1.History{CreatedBy: "base layer"}})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// baseIndex is an OCI index of one image per platform, plus a BuildKit-
// style attestation manifest that must not count as a platform.
func baseIndex(t *testing.T, platforms ...string) v1.ImageIndex {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range platforms {
		plat, _ := parsePlatform(p)
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: ociBase(t, p), Descriptor: v1.Descriptor{Platform: &plat}})
	}
	att, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	return mutate.AppendManifests(idx, mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{
		Platform:    &v1.Platform{OS: "unknown", Architecture: "unknown"},
		Annotations: map[string]string{"vnd.docker.reference.type": "attestation-manifest"},
	}})
}

// pushTo serves the in-memory registry and pushes idx as repo:tag.
func pushIndex(t *testing.T, host, repo string, idx v1.ImageIndex) string {
	t.Helper()
	ref, err := name.ParseReference(host + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	return ref.String()
}

func testRegistry(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

func TestRegistryBase(t *testing.T) {
	host := testRegistry(t)
	idx := baseIndex(t, "linux/amd64", "linux/arm64/v8", "linux/s390x")
	ref := pushIndex(t, host, "distroless/static:nonroot", idx)
	o, err := buildImage(t, Options{Base: ref, Env: map[string]string{"MODE": "prod"}})
	if err != nil {
		t.Fatal(err)
	}
	out := testkit.LayoutIndex(t, o.Layout)
	if err := validate.Index(out); err != nil {
		t.Fatalf("the index does not validate: %v", err)
	}
	im, err := out.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var plats []string
	for _, d := range im.Manifests {
		plats = append(plats, platformString(*d.Platform))
	}
	// s390x was not built and the attestation is no platform; arm64 takes
	// the base's variant.
	if diff := cmp.Diff([]string{"linux/amd64", "linux/arm64/v8"}, plats); diff != "" {
		t.Errorf("platforms (-want +got):\n%s", diff)
	}
	baseDigest, _ := idx.Digest()
	if im.Annotations[annBaseName] != host+"/distroless/static:nonroot" || im.Annotations[annBaseDigest] != baseDigest.String() {
		t.Errorf("index base annotations = %q, %q; want the reference and %s", im.Annotations[annBaseName], im.Annotations[annBaseDigest], baseDigest)
	}

	arm := imageFor(t, out, "linux/arm64/v8")
	m, err := arm.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	armBase, err := idx.Image(mustDigestOf(t, idx, "arm64"))
	if err != nil {
		t.Fatal(err)
	}
	armBaseDigest, _ := armBase.Digest()
	if m.Annotations[annBaseDigest] != armBaseDigest.String() {
		t.Errorf("arm64 manifest base.digest = %s, want the base's arm64 image %s", m.Annotations[annBaseDigest], armBaseDigest)
	}
	baseLayers, _ := armBase.Layers()
	layers, _ := arm.Layers()
	if len(layers) != len(baseLayers)+2 {
		t.Errorf("arm64 image has %d layers, want the base's %d and one per binary", len(layers), len(baseLayers))
	}
	cf, err := arm.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	want := v1.Config{
		Entrypoint: []string{"/usr/local/bin/hello"},
		Env:        []string{"PATH=/bin", "BASE=1", "MODE=prod"},
		User:       "1000",
	}
	if diff := cmp.Diff(want, cf.Config); diff != "" {
		t.Errorf("arm64 config (-want +got):\n%s", diff)
	}
}

func mustDigestOf(t *testing.T, idx v1.ImageIndex, arch string) v1.Hash {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		if d.Platform != nil && d.Platform.Architecture == arch {
			return d.Digest
		}
	}
	t.Fatalf("no %s in the index", arch)
	return v1.Hash{}
}

// A Docker-typed base keeps Docker media types throughout, so its
// manifests never mix the two families.
func TestDockerBase(t *testing.T) {
	host := testRegistry(t)
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(host + "/docker/base:1")
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	o, err := buildImage(t, Options{Base: ref.String()})
	if err != nil {
		t.Fatal(err)
	}
	out := testkit.LayoutIndex(t, o.Layout)
	if err := validate.Index(out); err != nil {
		t.Fatalf("the index does not validate: %v", err)
	}
	m, err := imageFor(t, out, "linux/amd64").Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.DockerManifestSchema2 {
		t.Errorf("manifest media type %s, want Docker's", m.MediaType)
	}
	for _, l := range m.Layers {
		if l.MediaType != types.DockerLayer {
			t.Errorf("layer %s has media type %s, want %s", l.Digest, l.MediaType, types.DockerLayer)
		}
	}
}

func TestBaseErrors(t *testing.T) {
	host := testRegistry(t)
	s390x := pushIndex(t, host, "only/s390x:1", baseIndex(t, "linux/s390x"))
	inner := baseIndex(t, "linux/amd64")
	nested := pushIndex(t, host, "nested/index:1", mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: inner}))

	lay := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(lay, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"a", "b"} {
		if err := p.AppendImage(ociBase(t, "linux/amd64"), layout.WithAnnotations(map[string]string{annRefName: tag})); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name    string
		base    string
		wantErr string
	}{
		{"no platform in common", s390x, "no platform in common: built linux/amd64, linux/arm64; base " + s390x + " offers linux/s390x"},
		{"nested index", nested, "holds another index"},
		{"not found", host + "/missing/base:1", "pulling base " + host + "/missing/base:1: not found"},
		{"bad reference", "Not A Ref!", `--base "Not A Ref!" is not static, scratch, oci:DIR or an image reference`},
		{"ambiguous layout", "oci:" + lay, "the layout holds 2 images; name one as oci:DIR:TAG"},
		{"missing layout tag", "oci:" + lay + ":c", `no image tagged "c" in the layout; it has: a, b`},
		{"no layout", "oci:" + filepath.Join(lay, "nope"), "reading OCI layout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := buildImage(t, Options{Base: tt.base})
			// As the command prints it: options named as flags.
			if err == nil || !strings.Contains(cli.Flags(err).Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			var coder interface{ ExitCode() int }
			if !errors.As(err, &coder) || coder.ExitCode() != cli.ExitUsage {
				t.Errorf("err %v is not a usage error (exit 2)", err)
			}
		})
	}
}

func TestUnreachableBase(t *testing.T) {
	s := httptest.NewServer(registry.New())
	host := strings.TrimPrefix(s.URL, "http://")
	s.Close()
	_, err := buildImage(t, Options{Base: host + "/gone/base:1"})
	if err == nil || !strings.Contains(err.Error(), "pulling base "+host+"/gone/base:1: registry unreachable") {
		t.Fatalf("err = %v, want an unreachable-registry error", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("the error spans lines: %q", err)
	}
}

func TestLayoutBase(t *testing.T) {
	lay := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(lay, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	idx := baseIndex(t, "linux/amd64", "linux/arm64")
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{annRefName: "nonroot"})); err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(ociBase(t, "linux/amd64"), layout.WithAnnotations(map[string]string{annRefName: "other"})); err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	for _, spec := range []string{"oci:" + lay + ":nonroot", "oci:" + lay + "@" + d.String()} {
		t.Run(spec, func(t *testing.T) {
			o, err := buildImage(t, Options{Base: spec})
			if err != nil {
				t.Fatal(err)
			}
			im, err := testkit.LayoutIndex(t, o.Layout).IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			if len(im.Manifests) != 2 || im.Annotations[annBaseDigest] != d.String() {
				t.Errorf("got %d manifests, base.digest %s; want 2 and %s", len(im.Manifests), im.Annotations[annBaseDigest], d)
			}
		})
	}
}

// A pulled base's layers are downloaded once: the second build on the
// same cache reads them from it and asks the registry only for manifests
// and configs.
func TestRegistryBaseLayersCached(t *testing.T) {
	var mu sync.Mutex
	gets := map[string]int{}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			mu.Lock()
			gets[path.Base(r.URL.Path)]++
			mu.Unlock()
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	host := strings.TrimPrefix(s.URL, "http://")
	idx := baseIndex(t, "linux/amd64", "linux/arm64")
	ref := pushIndex(t, host, "cached/base:1", idx)
	var layerDigests []string
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := idx.Image(mustDigestOf(t, idx, arch))
		if err != nil {
			t.Fatal(err)
		}
		ls, _ := img.Layers()
		for _, l := range ls {
			d, _ := l.Digest()
			layerDigests = append(layerDigests, d.String())
		}
	}
	cache := t.TempDir()
	for i := 0; i < 2; i++ {
		o, err := buildImage(t, Options{Base: ref, Cache: cache})
		if err != nil {
			t.Fatal(err)
		}
		if err := validate.Index(testkit.LayoutIndex(t, o.Layout)); err != nil {
			t.Fatalf("build %d: %v", i+1, err)
		}
	}
	for _, d := range layerDigests {
		if n := gets[d]; n != 1 {
			t.Errorf("base layer %s was downloaded %d times, want once", d, n)
		}
	}
}
