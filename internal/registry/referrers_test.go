package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	memreg "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slipwayci/slipway/internal/registrytest"
)

var fast = Backoff{Retries: 3, Initial: time.Millisecond, Max: 4 * time.Millisecond, MaxRetryAfter: 10 * time.Second}

// fastClient is a client that retries at once.
func fastClient(t *testing.T) *Client {
	t.Helper()
	c, err := New(Options{Backoff: fast})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// memRegistry serves the in-memory registry behind a recording, faulting
// proxy and returns the proxy.
func memRegistry(t *testing.T, opts ...memreg.Option) *registrytest.Proxy {
	t.Helper()
	srv := httptest.NewServer(memreg.New(append(opts, memreg.Logger(log.New(io.Discard, "", 0)))...))
	t.Cleanup(srv.Close)
	p, err := registrytest.NewProxy(srv.URL, registrytest.ProxyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// seeded writes a random index into repo and returns its digest.
func seeded(t *testing.T, repo name.Repository) v1.Hash {
	t.Helper()
	idx, err := random.Index(256, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(repo.Tag("seed"), idx); err != nil {
		t.Fatal(err)
	}
	h, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestMergeReferrersKeepsOthers(t *testing.T) {
	mine := v1.Descriptor{MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("a", 64)}, Size: 10, ArtifactType: MediaTypeSPDX}
	theirs := v1.Descriptor{MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("b", 64)}, Size: 11, ArtifactType: "application/vnd.dev.cosign"}
	first, changed, err := mergeReferrers(nil, []v1.Descriptor{theirs})
	if err != nil || !changed {
		t.Fatalf("new index: changed=%v err=%v", changed, err)
	}
	next, changed, err := mergeReferrers(first, []v1.Descriptor{mine})
	if err != nil || !changed {
		t.Fatalf("adding: changed=%v err=%v", changed, err)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(next, &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 2 || idx.Manifests[0].Digest != theirs.Digest || idx.MediaType != "application/vnd.oci.image.index.v1+json" {
		t.Errorf("merged index = %+v", idx)
	}
	if _, changed, _ := mergeReferrers(next, []v1.Descriptor{mine, theirs}); changed {
		t.Error("merging what is there already reports a change")
	}
	if _, _, err := mergeReferrers([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}`), nil); err == nil {
		t.Error("a fallback tag holding something else is not an error")
	}
}

func TestAttachMergesWithConcurrentWriters(t *testing.T) {
	reg := memRegistry(t)
	dst, _ := name.NewRepository(reg.Host + "/app")
	digest := seeded(t, dst)
	r, err := fastClient(t).Dial(context.Background(), dst, DialOptions{Push: true})
	if err != nil {
		t.Fatal(err)
	}
	subject := v1.Descriptor{MediaType: types.OCIImageIndex, Digest: digest}
	done := make(chan v1.Descriptor, 8)
	for i := range 8 {
		go func() {
			d, err := r.Attach(context.Background(), subject, Artifact{Data: []byte{byte(i)}, MediaType: "application/x-test", Annotations: map[string]string{"n": string(rune('a' + i))}})
			if err != nil {
				t.Error(err)
			}
			done <- d
		}()
	}
	var want []string
	for range 8 {
		want = append(want, (<-done).Digest.String())
	}
	ds, err := r.Referrers(context.Background(), digest)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range ds {
		got = append(got, d.Digest.String())
	}
	slices.Sort(want)
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		raw, _ := json.Marshal(ds)
		t.Errorf("referrers after 8 concurrent attachments (-want +got):\n%s\n%s", diff, raw)
	}
	if _, err := remote.Head(dst.Tag(FallbackTag(digest))); err != nil {
		t.Errorf("no fallback tag: %v", err)
	}
}

// TestReferrersRefusesAFloodOfReferrers: whoever can push to a repository
// can list any number of referrers under a subject; a promotion would copy
// and check them all. The listing stops at MaxReferrers.
func TestReferrersRefusesAFloodOfReferrers(t *testing.T) {
	subject := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("5", 64)}
	flood := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	for i := range MaxReferrers + 1 {
		flood.Manifests = append(flood.Manifests, v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: 2,
			Digest: v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%064x", i)}})
	}
	raw, _ := json.Marshal(flood)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v2/":
		case "/v2/app/manifests/" + FallbackTag(subject):
			w.Header().Set("Content-Type", string(types.OCIImageIndex))
			w.Write(raw)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	repo, _ := name.NewRepository(strings.TrimPrefix(srv.URL, "http://") + "/app")
	r, err := fastClient(t).Dial(context.Background(), repo, DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Referrers(context.Background(), subject)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("lists %d, more than the %d", MaxReferrers+1, MaxReferrers)) {
		t.Errorf("err = %v, want the listing refused", err)
	}
}
