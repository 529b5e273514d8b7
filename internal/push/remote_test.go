package push

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	memreg "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slipwayci/slipway/internal/registry"
)

// seeded pushes a random index with two SBOMs on its first image into
// repo, and a signature on one of the SBOMs, and returns the push options
// and the artifact type of the SBOM signed.
func seeded(t *testing.T, src name.Repository) (Options, string) {
	t.Helper()
	dir, idx := testLayout(t)
	o := options(t, dir, idx, src)
	o.Attachments = attachments(t, idx)
	if _, err := Push(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	// A signature of the first SBOM: a referrer of a referrer.
	r, err := fastRegistry(t).Dial(context.Background(), src, registry.DialOptions{Push: true})
	if err != nil {
		t.Fatal(err)
	}
	refs, err := r.Referrers(context.Background(), o.Attachments[0].Subject)
	if err != nil || len(refs) != 2 {
		t.Fatalf("seeded referrers: %v %v", refs, err)
	}
	if _, err := r.Attach(context.Background(), refs[0], registry.Artifact{Data: []byte("sig"), MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json"}); err != nil {
		t.Fatal(err)
	}
	// The in-memory registry lists the config's media type; the
	// manifest says what the artifact is.
	raw, _, _, err := r.Manifest(context.Background(), refs[0].Digest.String())
	if err != nil {
		t.Fatal(err)
	}
	var m v1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return o, m.ArtifactType
}

// referrerTypes lists the artifact types referring to subject in repo.
func referrerTypes(t *testing.T, repo name.Repository, subject v1.Hash) []string {
	t.Helper()
	r, err := fastRegistry(t).Dial(context.Background(), repo, registry.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ds, err := r.Referrers(context.Background(), subject)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range ds {
		out = append(out, d.ArtifactType)
		for _, nested := range referrerTypes(t, repo, d.Digest) {
			out = append(out, d.ArtifactType+" <- "+nested)
		}
	}
	slices.Sort(out)
	return out
}

func TestCopyBetweenRegistriesCarriesReferrers(t *testing.T) {
	for _, api := range []bool{false, true} {
		t.Run(map[bool]string{false: "fallback tag", true: "referrers API"}[api], func(t *testing.T) {
			srcReg, dstReg := memRegistry(t, memreg.WithReferrersSupport(api)), memRegistry(t)
			src, dst := repo(t, srcReg.Host, "staging/app"), repo(t, dstReg.Host, "prod/app")
			seed, signed := seeded(t, src)

			res, err := Push(context.Background(), Options{From: &src, Digest: seed.Digest, To: []name.Repository{dst}, Tags: []string{"prod"}, Registry: fastRegistry(t)})
			if err != nil {
				t.Fatal(err)
			}
			pulled(t, dst, "prod", seed.Digest)
			s := res[0].Stats
			if s.Uploaded != 10 || s.Artifacts != 3 {
				t.Errorf("stats = %+v, want 10 blobs uploaded once (6 of the image, 2 SBOMs, the signature, the empty config) and 3 artifacts", s)
			}
			want := []string{registry.MediaTypeCycloneDX, registry.MediaTypeSPDX, signed + " <- application/vnd.dev.sigstore.bundle.v0.3+json"}
			slices.Sort(want)
			subject := seed.Attachments[0].Subject
			if diff := cmp.Diff(want, referrerTypes(t, dst, subject)); diff != "" {
				t.Errorf("referrers at the destination (-want +got):\n%s", diff)
			}
			// Each blob went up once, streamed from the source.
			uploads := map[string]int{}
			for _, q := range dstReg.Requests() {
				if q.Upload() {
					uploads[q.Query.Get("digest")]++
				}
			}
			for d, n := range uploads {
				if n != 1 {
					t.Errorf("blob %s uploaded %d times", d, n)
				}
			}

			// A second copy finds everything there and writes nothing.
			dstReg.Reset()
			if _, err := Push(context.Background(), Options{From: &src, Digest: seed.Digest, To: []name.Repository{dst}, Tags: []string{"prod"}, Registry: fastRegistry(t)}); err != nil {
				t.Fatal(err)
			}
			for _, q := range dstReg.Requests() {
				if q.Method != http.MethodGet && q.Method != http.MethodHead {
					t.Errorf("the second copy sent %s %s", q.Method, q.Path)
				}
			}
		})
	}
}

func TestCopyRefusesWhatTheSourceDoesNotHave(t *testing.T) {
	reg := memRegistry(t)
	src, dst := repo(t, reg.Host, "a"), repo(t, reg.Host, "b")
	missing := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}
	_, err := Push(context.Background(), Options{From: &src, Digest: missing, To: []name.Repository{dst}, Registry: fastRegistry(t)})
	if err == nil || !strings.Contains(err.Error(), "is not in "+src.String()) {
		t.Errorf("err = %v", err)
	}
}

func TestCopyChecksManifestDigests(t *testing.T) {
	// A source registry that answers for one image manifest with bytes of
	// its own.
	reg := memreg.New(memreg.Logger(discardLogger()))
	var victim string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if victim != "" && r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/manifests/"+victim) {
			w.Header().Set("Content-Type", string(types.OCIManifestSchema1))
			w.Write([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}`))
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	src, dst := repo(t, host, "a"), repo(t, memRegistry(t).Host, "b")
	seed, _ := seeded(t, src)
	victim = seed.Attachments[0].Subject.String()
	_, err := Push(context.Background(), Options{From: &src, Digest: seed.Digest, To: []name.Repository{dst}, Registry: fastRegistry(t)})
	if err == nil || !strings.Contains(err.Error(), "the registry sent content with digest") {
		t.Errorf("err = %v, want the tampered manifest refused", err)
	}
}
