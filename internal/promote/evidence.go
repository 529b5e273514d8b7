package promote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slipwayci/slipway/internal/provenance"
	"github.com/slipwayci/slipway/internal/registry"
	"github.com/slipwayci/slipway/internal/sign"
	"github.com/slipwayci/slipway/internal/trust"
)

// registryEvidence reads what the gates need about one digest from
// registries: the artifacts that refer to it and to its manifests in the
// repository it is promoted from (SBOMs, scan statements), and what other
// environments' histories say of it.
type registryEvidence struct {
	src *registry.Repository
	// digest is the image; manifests are it and, for an index, the
	// manifests it lists, since SBOMs are attached per platform. platforms
	// are the images a scan must cover: every platform's of an index, or
	// the image itself.
	digest    v1.Hash
	manifests []v1.Hash
	platforms []v1.Descriptor
	history   func(ctx context.Context, env string) (*History, error)
	// verifier, when the environment has trust:, decides which signed
	// evidence counts; nil counts unsigned evidence, as before trust:.
	verifier *trust.Verifier
	now      func() time.Time

	once sync.Once
	refs []v1.Descriptor
	// about[i] is the manifest refs[i] was listed as referring to.
	about []v1.Hash
	err   error

	mu      sync.Mutex
	ignored map[string][]Ignored
}

// Ignored is evidence a gate set aside, and why ("unsigned", "signed by
// …, not trusted", "about another digest").
type Ignored struct {
	Ref    string
	Reason string
}

func (i Ignored) String() string { return short(i.Ref) + " " + i.Reason }

// short is a digest cut to 12 hex digits, for one-line details.
func short(ref string) string {
	if alg, hex, ok := strings.Cut(ref, ":"); ok && len(hex) > 12 {
		return alg + ":" + hex[:12]
	}
	return ref
}

// Ignored lists what gate set aside, once each.
func (e *registryEvidence) Ignored(gate string) []Ignored {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.ignored[gate])
}

func (e *registryEvidence) ignore(gate string, ref v1.Hash, reason string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ignored == nil {
		e.ignored = map[string][]Ignored{}
	}
	for _, i := range e.ignored[gate] {
		if i.Ref == ref.String() && i.Reason == reason {
			return
		}
	}
	e.ignored[gate] = append(e.ignored[gate], Ignored{Ref: ref.String(), Reason: reason})
}

var _ Evidence = (*registryEvidence)(nil)

// referrers lists, once, what refers to the image and its manifests.
func (e *registryEvidence) referrers(ctx context.Context) ([]v1.Descriptor, error) {
	e.once.Do(func() {
		for _, m := range e.manifests {
			ds, err := e.src.Referrers(ctx, m)
			if err != nil {
				e.err = fmt.Errorf("listing what refers to %s: %w", m, err)
				return
			}
			for i := range ds {
				if ds[i].ArtifactType, err = e.artifactType(ctx, ds[i]); err != nil {
					e.err = err
					return
				}
			}
			e.refs = append(e.refs, ds...)
			for range ds {
				e.about = append(e.about, m)
			}
		}
	})
	return e.refs, e.err
}

// artifactType is what d is. Some registries list a referrer with its
// config's media type (the empty config, for slipway's artifacts) instead
// of the manifest's artifactType, as go-containerregistry's own registry
// does; then the manifest says.
func (e *registryEvidence) artifactType(ctx context.Context, d v1.Descriptor) (string, error) {
	if d.ArtifactType != "" && d.ArtifactType != emptyConfig {
		return d.ArtifactType, nil
	}
	raw, _, found, err := e.src.Manifest(ctx, d.Digest.String())
	if err != nil {
		return "", fmt.Errorf("reading referrer %s: %w", d.Digest, err)
	}
	if !found {
		return d.ArtifactType, nil
	}
	var m struct {
		ArtifactType string `json:"artifactType"`
	}
	if json.Unmarshal(raw, &m) != nil || m.ArtifactType == "" {
		return d.ArtifactType, nil
	}
	return m.ArtifactType, nil
}

// emptyConfig is OCI's empty descriptor media type, the config of artifacts.
const emptyConfig = "application/vnd.oci.empty.v1+json"

// Promotions reads env's history of the digest. With trust:, a record
// counts only if a bundle that verifies signs its statement; its time is
// then the signature's.
func (e *registryEvidence) Promotions(ctx context.Context, env string) ([]Promotion, error) {
	h, err := e.history(ctx, env)
	if err != nil {
		return nil, err
	}
	if e.verifier == nil {
		return h.Promotions(ctx, e.digest, nil)
	}
	records := h.signedBy(e.verifier, e.now())
	proms, err := h.Promotions(ctx, e.digest, records.signs)
	if err != nil || len(proms) == 0 {
		return proms, err
	}
	signed, err := records.of(ctx, e.digest)
	if err != nil {
		return nil, err
	}
	var out []Promotion
	for _, p := range proms {
		t, ok := signed[p.statement]
		if !ok {
			ref, _ := v1.NewHash(p.Record)
			e.ignore("from", ref, "a record not signed by a trusted identity")
			continue
		}
		if !t.IsZero() {
			p.Time = t
		}
		out = append(out, p)
	}
	return out, nil
}

// SignedRecords verifies the promotion record bundles attached to digest
// in the history's repository under v, and returns the digests of the
// record statements they sign, with each signature's earliest time.
func (h *History) SignedRecords(ctx context.Context, digest v1.Hash, v *trust.Verifier, now time.Time) (map[v1.Hash]time.Time, error) {
	refs, err := h.repo.Referrers(ctx, digest)
	if err != nil {
		return nil, err
	}
	out := map[v1.Hash]time.Time{}
	for _, d := range refs {
		if d.ArtifactType != sign.BundleMediaType {
			continue
		}
		if pt, ok := d.Annotations[sign.AnnotationPredicateType]; ok && pt != PredicateType {
			continue
		}
		raw, _, found, err := h.repo.Manifest(ctx, d.Digest.String())
		if err != nil || !found {
			return nil, err
		}
		m, err := v1.ParseManifest(bytes.NewReader(raw))
		if err != nil || len(m.Layers) != 1 || string(m.Layers[0].MediaType) != sign.BundleMediaType {
			continue
		}
		data, err := h.repo.Blob(ctx, m.Layers[0].Digest, 16<<20)
		if err != nil {
			return nil, err
		}
		res, err := v.Verify(data, trust.Expect{Digest: digest, PredicateType: PredicateType})
		if err != nil || res.Time.After(now.Add(maxClockSkew)) {
			continue
		}
		sum, _, err := v1.SHA256(bytes.NewReader(res.Payload))
		if err != nil {
			return nil, err
		}
		if t, ok := out[sum]; !ok || res.Time.Before(t) {
			out[sum] = res.Time
		}
	}
	return out, nil
}

// SBOMs lists the SPDX and CycloneDX documents attached, each fetched
// and read: with trust:, signed bundles that verify; without, unsigned
// documents.
func (e *registryEvidence) SBOMs(ctx context.Context) ([]string, error) {
	const gate = "sbom"
	if e.verifier != nil {
		vs, err := e.verified(ctx, gate, sign.SPDXPredicate, sign.CycloneDXPredicate)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, v := range vs {
			if !isSBOM(v.res.Statement.Predicate) {
				e.ignore(gate, v.ref, "signed, but its predicate is not an SPDX or CycloneDX document")
				continue
			}
			out = append(out, v.ref.String())
		}
		return out, nil
	}
	refs, err := e.referrers(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range refs {
		if d.ArtifactType != registry.MediaTypeSPDX && d.ArtifactType != registry.MediaTypeCycloneDX {
			continue
		}
		data, err := e.statement(ctx, d.Digest)
		if err != nil {
			return nil, err
		}
		if !isSBOM(data) {
			e.ignore(gate, d.Digest, "not an SPDX or CycloneDX document")
			continue
		}
		out = append(out, d.Digest.String())
	}
	return out, nil
}

// isSBOM reports whether data is an SPDX or CycloneDX JSON document.
func isSBOM(data []byte) bool {
	var doc struct {
		SPDXVersion string `json:"spdxVersion"`
		BOMFormat   string `json:"bomFormat"`
	}
	return json.Unmarshal(data, &doc) == nil && (strings.HasPrefix(doc.SPDXVersion, "SPDX-") || doc.BOMFormat == "CycloneDX")
}

// Scans reads every scan statement attached which names the image among
// its subjects. With trust:, only signed ones that verify count, dated by
// their signature; without, unsigned ones, dated by their own finishedOn.
// None dated in the future counts.
func (e *registryEvidence) Scans(ctx context.Context) ([]Scan, error) {
	const gate = "scan"
	now := e.now()
	if e.verifier != nil {
		vs, err := e.verified(ctx, gate, ScanPredicateType)
		if err != nil {
			return nil, err
		}
		var out []Scan
		for _, v := range vs {
			s, ok := parseScan(v.res.Payload, e.manifests, e.platforms)
			if !ok {
				e.ignore(gate, v.ref, "signed, but not a scan statement about the image")
				continue
			}
			s.Time, s.Signer, s.Record = v.res.Time, v.res.Signer.String(), v.ref.String()
			out = append(out, s)
		}
		return out, nil
	}
	refs, err := e.referrers(ctx)
	if err != nil {
		return nil, err
	}
	var out []Scan
	for _, d := range refs {
		pt, noted := d.Annotations[registry.AnnotationPredicateType]
		if d.ArtifactType != registry.MediaTypeInToto || noted && pt != ScanPredicateType {
			continue
		}
		data, err := e.statement(ctx, d.Digest)
		if err != nil {
			return nil, err
		}
		s, ok := parseScan(data, e.manifests, e.platforms)
		if !ok {
			continue
		}
		if s.Time.After(now.Add(maxClockSkew)) {
			e.ignore(gate, d.Digest, "dated in the future ("+s.Time.UTC().Format(time.RFC3339)+")")
			continue
		}
		s.Record = d.Digest.String()
		out = append(out, s)
	}
	return out, nil
}

// Provenance reads the SLSA provenance that verifies under trust:; none
// without it (the provenance gate needs trust:).
func (e *registryEvidence) Provenance(ctx context.Context) ([]Provenance, error) {
	if e.verifier == nil {
		return nil, nil
	}
	vs, err := e.verified(ctx, "provenance", sign.SLSAProvenancePredicate)
	if err != nil {
		return nil, err
	}
	var out []Provenance
	for _, v := range vs {
		var p provenance.Provenance
		if err := json.Unmarshal(v.res.Statement.Predicate, &p); err != nil {
			e.ignore("provenance", v.ref, "signed, but not SLSA provenance v1")
			continue
		}
		prov := Provenance{
			Repository: p.BuildDefinition.ExternalParameters.Repository,
			Ref:        p.BuildDefinition.ExternalParameters.Ref,
			Builder:    p.RunDetails.Builder.ID,
			Signer:     v.res.Signer.String(), Record: v.ref.String(),
		}
		for _, m := range append([]v1.Hash{e.digest}, platformDigests(e.platforms)...) {
			if !v.res.Statement.Names(m) && !slices.Contains(prov.Uncovered, m.String()) {
				prov.Uncovered = append(prov.Uncovered, m.String())
			}
		}
		out = append(out, prov)
	}
	return out, nil
}

func platformDigests(ds []v1.Descriptor) []v1.Hash {
	out := make([]v1.Hash, len(ds))
	for i, d := range ds {
		out[i] = d.Digest
	}
	return out
}

// maxClockSkew is how far in the future a time may be before it is a lie.
const maxClockSkew = 5 * time.Minute

// verifiedEvidence is a bundle that verified under the policy.
type verifiedEvidence struct {
	ref v1.Hash
	res *trust.Result
}

// verified verifies every bundle attached whose predicate type is one of
// types, against the manifest it is attached to, and notes for gate why
// each other one (and each unsigned statement of those types) does not
// count.
func (e *registryEvidence) verified(ctx context.Context, gate string, types ...string) ([]verifiedEvidence, error) {
	refs, err := e.referrers(ctx)
	if err != nil {
		return nil, err
	}
	now := e.now()
	var out []verifiedEvidence
	for i, d := range refs {
		switch d.ArtifactType {
		case sign.BundleMediaType:
		case registry.MediaTypeInToto:
			if pt, noted := d.Annotations[registry.AnnotationPredicateType]; !noted || slices.Contains(types, pt) {
				if st, err := e.unsignedStatement(ctx, d.Digest); err != nil {
					return nil, err
				} else if st != nil && slices.Contains(types, st.PredicateType) {
					e.ignore(gate, d.Digest, "unsigned")
				}
			}
			continue
		case registry.MediaTypeSPDX, registry.MediaTypeCycloneDX:
			if gate == "sbom" {
				e.ignore(gate, d.Digest, "unsigned")
			}
			continue
		default:
			continue
		}
		if pt, noted := d.Annotations[sign.AnnotationPredicateType]; noted && !slices.Contains(types, pt) {
			continue
		}
		data, err := e.statement(ctx, d.Digest)
		if err != nil {
			return nil, err
		}
		res, err := e.verifier.Verify(data, trust.Expect{Digest: e.about[i]})
		var te *trust.Error
		switch {
		case errors.As(err, &te):
			if te.Reason != trust.OtherPredicate {
				e.ignore(gate, d.Digest, refusal(te))
			}
			continue
		case err != nil:
			return nil, fmt.Errorf("verifying %s: %w", d.Digest, err)
		}
		if !slices.Contains(types, res.Statement.PredicateType) {
			continue
		}
		if res.Time.After(now.Add(maxClockSkew)) {
			e.ignore(gate, d.Digest, "signed in the future ("+res.Time.UTC().Format(time.RFC3339)+")")
			continue
		}
		out = append(out, verifiedEvidence{ref: d.Digest, res: res})
	}
	return out, nil
}

// refusal is a one-line reason for a refused bundle.
func refusal(te *trust.Error) string {
	switch te.Reason {
	case trust.OtherDigest:
		return "about another digest"
	case trust.Untrusted:
		if te.Claimed != "" {
			return "signed by " + te.Claimed + ", not trusted"
		}
		return "signature not trusted"
	}
	return "not a signed bundle"
}

// unsignedStatement reads an in-toto statement attached without a
// signature; nil if it is not one.
func (e *registryEvidence) unsignedStatement(ctx context.Context, ref v1.Hash) (*sign.Statement, error) {
	data, err := e.statement(ctx, ref)
	if err != nil || data == nil {
		return nil, err
	}
	st, err := sign.ParseStatement(data)
	if err != nil {
		return nil, nil
	}
	return st, nil
}

// statement reads the one layer of the artifact with digest ref.
func (e *registryEvidence) statement(ctx context.Context, ref v1.Hash) ([]byte, error) {
	raw, _, found, err := e.src.Manifest(ctx, ref.String())
	if err != nil || !found {
		return nil, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil || len(m.Layers) != 1 {
		return nil, nil
	}
	return e.src.Blob(ctx, m.Layers[0].Digest, 16<<20)
}

// scanStatement is the part of slipway scan's statement the gate reads
// (internal/scan.Statement).
type scanStatement struct {
	Type          string    `json:"_type"`
	Subject       []subject `json:"subject"`
	PredicateType string    `json:"predicateType"`
	Predicate     struct {
		Counts struct {
			Critical, High, Medium, Low, Unknown int
		} `json:"counts"`
		Verdict struct {
			Pass bool `json:"pass"`
		} `json:"verdict"`
		FinishedOn string `json:"finishedOn"`
	} `json:"predicate"`
}

// parseScan reads a scan statement about one of digests; false if it is
// anything else. The platform images it does not name are Unscanned.
func parseScan(data []byte, digests []v1.Hash, platforms []v1.Descriptor) (Scan, bool) {
	var st scanStatement
	if data == nil || json.Unmarshal(data, &st) != nil || st.Type != StatementType || st.PredicateType != ScanPredicateType {
		return Scan{}, false
	}
	about := false
	var named []v1.Hash
	for _, s := range st.Subject {
		for alg, hex := range s.Digest {
			h := v1.Hash{Algorithm: alg, Hex: hex}
			named = append(named, h)
			about = about || slices.Contains(digests, h)
		}
	}
	var unscanned []string
	for _, p := range platforms {
		if !slices.Contains(named, p.Digest) {
			u := p.Digest.String()
			if p.Platform != nil {
				u += " " + p.Platform.String()
			}
			unscanned = append(unscanned, u)
		}
	}
	t, err := time.Parse(time.RFC3339, st.Predicate.FinishedOn)
	if !about || err != nil {
		return Scan{}, false
	}
	c := st.Predicate.Counts
	worst := "none"
	for _, s := range []struct {
		n    int
		name string
	}{{c.Unknown, "unknown"}, {c.Low, "low"}, {c.Medium, "medium"}, {c.High, "high"}, {c.Critical, "critical"}} {
		if s.n > 0 {
			worst = s.name
		}
	}
	verdict := "fail"
	if st.Predicate.Verdict.Pass {
		verdict = "pass"
	}
	return Scan{Time: t, Verdict: verdict, MaxSeverity: worst, Unscanned: unscanned}, true
}
