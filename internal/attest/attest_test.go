package attest_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slipwayci/slipway/internal/attest"
	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/sign"
)

func hash(c string) v1.Hash { return v1.Hash{Algorithm: "sha256", Hex: strings.Repeat(c, 64)} }

func desc(c string) v1.Descriptor {
	return v1.Descriptor{MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: hash(c), Size: 500}
}

func setup(t *testing.T) (attest.Input, string) {
	t.Helper()
	dir := t.TempDir()
	doc := []byte(`{"spdxVersion":"SPDX-2.3","name":"app"}`)
	if err := os.WriteFile(filepath.Join(dir, "amd64.spdx.json"), doc, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(doc)
	index := desc("a")
	index.MediaType = "application/vnd.oci.image.index.v1+json"
	amd, arm := desc("b"), desc("c")
	rec := &record.Record{Image: &record.Image{Digest: index.Digest.String(), Platforms: []record.PlatformImage{
		{Platform: "linux/amd64", Digest: amd.Digest.String(), SBOMs: []record.SBOM{
			{Format: "spdx-2.3+json", Path: "amd64.spdx.json", SHA256: hex.EncodeToString(sum[:])},
			{Format: "unknown-format", Path: "x"},
		}},
		{Platform: "linux/arm64", Digest: arm.Digest.String()},
	}}}
	scan, err := sign.NewStatement("https://slipway.dev/attestations/scan/v1", map[string]any{}, sign.DigestSubject("app", index.Digest))
	if err != nil {
		t.Fatal(err)
	}
	prov, err := sign.NewStatement(sign.SLSAProvenancePredicate, map[string]any{},
		sign.DigestSubject("app", index.Digest), sign.DigestSubject("app", amd.Digest), sign.DigestSubject("app", arm.Digest),
		sign.DigestSubject("bin/app", hash("f")))
	if err != nil {
		t.Fatal(err)
	}
	return attest.Input{Index: index, Manifests: []v1.Descriptor{amd, arm}, Record: rec, Dir: dir, Provenance: prov, Scan: scan}, dir
}

func TestPlan(t *testing.T) {
	in, _ := setup(t)
	ev, err := attest.Plan(in)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		Name, Predicate string
		Subjects        []string
	}
	var got []row
	for _, e := range ev {
		st, err := sign.ParseStatement(e.Statement)
		if err != nil {
			t.Fatal(err)
		}
		r := row{Name: e.Name, Predicate: st.PredicateType}
		for _, d := range e.Subjects {
			r.Subjects = append(r.Subjects, d.Digest.Hex[:1])
			if !st.Names(d.Digest) {
				t.Errorf("%s is attached to %s, which it does not name", e.Name, d.Digest)
			}
		}
		got = append(got, r)
	}
	want := []row{
		{"image", sign.CosignSignPredicate, []string{"a"}},
		{"image", sign.CosignSignPredicate, []string{"b"}},
		{"image", sign.CosignSignPredicate, []string{"c"}},
		{"provenance", sign.SLSAProvenancePredicate, []string{"a", "b", "c"}},
		{"scan", "https://slipway.dev/attestations/scan/v1", []string{"a"}},
		{"sbom linux/amd64 (spdx-2.3+json)", sign.SPDXPredicate, []string{"a", "b"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}
	// The SBOM predicate is the document itself, as cosign attest puts it.
	st, _ := sign.ParseStatement(ev[5].Statement)
	if string(st.Predicate) != `{"spdxVersion":"SPDX-2.3","name":"app"}` {
		t.Errorf("SBOM predicate = %s", st.Predicate)
	}
}

func TestPlanRefuses(t *testing.T) {
	tests := []struct {
		name string
		edit func(*attest.Input, string)
		want string
	}{
		{"SBOM changed after the image step", func(in *attest.Input, dir string) {
			os.WriteFile(filepath.Join(dir, "amd64.spdx.json"), []byte(`{"spdxVersion":"SPDX-2.3","name":"evil"}`), 0o644)
		}, "changed since slipway image wrote it"},
		{"scan about another image", func(in *attest.Input, _ string) {
			in.Scan, _ = sign.NewStatement("https://slipway.dev/attestations/scan/v1", map[string]any{}, sign.DigestSubject("x", hash("9")))
		}, "names none of the image's manifests"},
		{"record platform not pushed", func(in *attest.Input, _ string) {
			in.Manifests = in.Manifests[1:]
		}, "is not in the pushed index"},
		{"scan not a statement", func(in *attest.Input, _ string) { in.Scan = []byte(`{}`) }, "the scan statement"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, dir := setup(t)
			tt.edit(&in, dir)
			_, err := attest.Plan(in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// A single-platform image pushed as a bare manifest: the manifest is the
// root and the platform's, and each statement is attached to it once.
func TestPlanSingleManifest(t *testing.T) {
	in, _ := setup(t)
	amd := in.Manifests[0]
	in.Index, in.Manifests = amd, nil
	in.Record.Image.Digest = amd.Digest.String()
	in.Record.Image.Platforms = in.Record.Image.Platforms[:1]
	in.Provenance, in.Scan = nil, nil
	ev, err := attest.Plan(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(ev) != 2 {
		t.Fatalf("%d statements, want the image and one SBOM", len(ev))
	}
	for _, e := range ev {
		if len(e.Subjects) != 1 || e.Subjects[0].Digest != amd.Digest {
			t.Errorf("%s is attached to %v, want only %s", e.Name, e.Subjects, amd.Digest)
		}
	}
}
