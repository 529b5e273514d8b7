package sign_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	slipreg "github.com/slipwayci/slipway/internal/registry"
	"github.com/slipwayci/slipway/internal/sign"
)

// TestPublishShape checks the referrer against cosign's bundle spec: an
// image manifest with artifactType and layer of the bundle media type,
// the empty config, the subject, and the content, predicate type and
// creation annotations, listed among the subject's referrers.
func TestPublishShape(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	repo, err := name.NewRepository(strings.TrimPrefix(srv.URL, "http://") + "/team/app")
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := img.Digest()
	if err := remote.Write(repo.Digest(h.String()), img); err != nil {
		t.Fatal(err)
	}
	mt, _ := img.MediaType()
	raw, _ := img.RawManifest()
	subject := v1.Descriptor{MediaType: mt, Digest: h, Size: int64(len(raw))}

	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	key, _ := sign.NewKey(priv)
	signer, err := sign.New(t.Context(), sign.Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := sign.ImageStatement(h)
	bundle := mustSign(t, signer, st)

	reg, err := slipreg.New(slipreg.Options{})
	if err != nil {
		t.Fatal(err)
	}
	client, err := reg.Dial(t.Context(), repo, slipreg.DialOptions{Push: true})
	if err != nil {
		t.Fatal(err)
	}
	attach := sign.AttachFunc(func(ctx context.Context, s v1.Descriptor, data []byte, mt, at string, ann map[string]string) (v1.Descriptor, error) {
		return client.Attach(ctx, s, slipreg.Artifact{Data: data, MediaType: mt, ArtifactType: at, Annotations: ann})
	})
	created := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	desc, err := sign.Publish(t.Context(), attach, subject, bundle, created)
	if err != nil {
		t.Fatal(err)
	}

	rawArt, _, _, err := client.Manifest(t.Context(), desc.Digest.String())
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		MediaType    string            `json:"mediaType"`
		ArtifactType string            `json:"artifactType"`
		Config       v1.Descriptor     `json:"config"`
		Layers       []v1.Descriptor   `json:"layers"`
		Subject      *v1.Descriptor    `json:"subject"`
		Annotations  map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(rawArt, &m); err != nil {
		t.Fatal(err)
	}
	if m.MediaType != "application/vnd.oci.image.manifest.v1+json" || m.ArtifactType != sign.BundleMediaType {
		t.Errorf("manifest %s artifactType %s", m.MediaType, m.ArtifactType)
	}
	if m.Config.MediaType != "application/vnd.oci.empty.v1+json" || m.Config.Size != 2 {
		t.Errorf("config = %+v, want the empty descriptor", m.Config)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != sign.BundleMediaType || m.Layers[0].Size != int64(len(bundle)) {
		t.Errorf("layers = %+v", m.Layers)
	}
	if m.Subject == nil || m.Subject.Digest != h {
		t.Errorf("subject = %+v, want %s", m.Subject, h)
	}
	wantAnn := map[string]string{
		"dev.sigstore.bundle.content":       "dsse-envelope",
		"dev.sigstore.bundle.predicateType": sign.CosignSignPredicate,
		"org.opencontainers.image.created":  "2026-12-05T10:00:00Z",
	}
	if diff := cmp.Diff(wantAnn, m.Annotations); diff != "" {
		t.Errorf("annotations (-want +got):\n%s", diff)
	}
	layer, err := client.Blob(t.Context(), m.Layers[0].Digest, 1<<20)
	if err != nil || string(layer) != string(bundle) {
		t.Errorf("layer blob differs from the bundle (%v)", err)
	}
	refs, err := client.Referrers(t.Context(), h)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 1 || refs[0].Digest != desc.Digest || refs[0].ArtifactType != sign.BundleMediaType {
		t.Errorf("referrers = %+v", refs)
	}

	// A bundle about another digest is not published.
	other, _ := random.Image(64, 1)
	oh, _ := other.Digest()
	st2, _ := sign.ImageStatement(oh)
	if _, err := sign.Publish(t.Context(), attach, subject, mustSign(t, signer, st2), created); err == nil || !strings.Contains(err.Error(), "does not name") {
		t.Errorf("Publish of a bundle about %s on %s: err = %v", oh, h, err)
	}
}

func TestImageStatement(t *testing.T) {
	h := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	st, err := sign.ImageStatement(h)
	if err != nil {
		t.Fatal(err)
	}
	// The shape cosign v3 signs for `cosign sign`.
	want := `{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"` + h.Hex + `"}}],"predicateType":"https://sigstore.dev/cosign/sign/v1","predicate":{}}`
	if string(st) != want {
		t.Errorf("statement =\n%s\nwant\n%s", st, want)
	}
}

func TestParseStatement(t *testing.T) {
	d := strings.Repeat("0", 64)
	tests := []struct {
		name, st, wantErr string
	}{
		{"good", `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"x","digest":{"sha256":"` + d + `"}}],"predicateType":"p","predicate":{}}`, ""},
		{"statement v0.1", `{"_type":"https://in-toto.io/Statement/v0.1","subject":[{"digest":{"sha256":"` + d + `"}}],"predicateType":"p","predicate":{}}`, "_type"},
		{"no subject", `{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"p","predicate":{}}`, "no subject"},
		{"short digest", `{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"abc"}}],"predicateType":"p","predicate":{}}`, "sha256"},
		{"sha512 only", `{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha512":"` + d + d + `"}}],"predicateType":"p","predicate":{}}`, "sha256"},
		{"no predicate type", `{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"` + d + `"}}],"predicate":{}}`, "predicateType"},
		{"array predicate", `{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"` + d + `"}}],"predicateType":"p","predicate":[]}`, "not an object"},
		{"not JSON", `{`, "reading"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sign.ParseStatement([]byte(tt.st))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
