// Package attest decides what slipway signs for an image it published,
// and signs and attaches it: for the index and for each platform
// manifest, the image itself (cosign's sign predicate, which plain `cosign
// verify` accepts), SLSA provenance, the scan's statement and each SBOM,
// one bundle per statement, attached to every manifest the statement names.
package attest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore-go/pkg/root"
	"golang.org/x/sync/errgroup"

	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/registry"
	"github.com/slipwayci/slipway/internal/sign"
	"github.com/slipwayci/slipway/internal/trust"
)

// Evidence is one statement and the manifests its bundle is attached to.
type Evidence struct {
	// Name says what it is, for messages: "image", "provenance", "scan",
	// "sbom linux/amd64 (spdx-2.3+json)".
	Name      string
	Statement []byte
	Subjects  []v1.Descriptor
}

// Input is what was published and what there is to say about it.
type Input struct {
	// Index is the pushed image index; Manifests its platform manifests,
	// as the index lists them.
	Index     v1.Descriptor
	Manifests []v1.Descriptor
	// Record is the build's record (for the SBOMs); Dir its directory.
	Record *record.Record
	Dir    string
	// Provenance is the SLSA provenance statement (provenance.Statement);
	// nil for none.
	Provenance []byte
	// Scan is the scan step's statement (dist/scan.intoto.json); nil for
	// none.
	Scan []byte
}

// Plan lists the evidence for an image. A statement is attached only to
// the manifests it names, so what is published always verifies for the
// manifest it hangs on.
func Plan(in Input) ([]Evidence, error) {
	all := append([]v1.Descriptor{in.Index}, in.Manifests...)
	var out []Evidence
	for _, d := range all {
		st, err := sign.ImageStatement(d.Digest)
		if err != nil {
			return nil, err
		}
		out = append(out, Evidence{Name: "image", Statement: st, Subjects: []v1.Descriptor{d}})
	}
	for _, e := range []struct {
		name string
		st   []byte
	}{{"provenance", in.Provenance}, {"scan", in.Scan}} {
		if e.st == nil {
			continue
		}
		ev, err := evidence(e.name, e.st, all)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	sboms, err := sbomEvidence(in, all)
	if err != nil {
		return nil, err
	}
	return append(out, sboms...), nil
}

// evidence attaches a statement to the manifests among all that it names;
// naming none of them is an error, not a silent skip.
func evidence(name string, st []byte, all []v1.Descriptor) (Evidence, error) {
	s, err := sign.ParseStatement(st)
	if err != nil {
		return Evidence{}, fmt.Errorf("the %s statement: %w", name, err)
	}
	ev := Evidence{Name: name, Statement: st}
	for _, d := range all {
		if s.Names(d.Digest) {
			ev.Subjects = append(ev.Subjects, d)
		}
	}
	if len(ev.Subjects) == 0 {
		return Evidence{}, fmt.Errorf("the %s statement names none of the image's manifests (index %s)", name, all[0].Digest)
	}
	return ev, nil
}

// SBOM formats as the record names them, and the predicate types cosign
// verify-attestation --type spdxjson and --type cyclonedx look for.
var sbomPredicates = map[string]string{
	"spdx-2.3+json":      sign.SPDXPredicate,
	"cyclonedx-1.5+json": sign.CycloneDXPredicate,
}

// sbomEvidence wraps each platform's SBOMs in statements about that
// platform's manifest and the index, the SBOM document itself as the
// predicate, as `cosign attest --type spdxjson` does.
func sbomEvidence(in Input, all []v1.Descriptor) ([]Evidence, error) {
	if in.Record == nil || in.Record.Image == nil {
		return nil, nil
	}
	// A single-platform image may be pushed as a bare manifest, which is
	// then both the root and the platform's manifest.
	byDigest := map[string]v1.Descriptor{in.Index.Digest.String(): in.Index}
	for _, d := range in.Manifests {
		byDigest[d.Digest.String()] = d
	}
	var out []Evidence
	for _, p := range in.Record.Image.Platforms {
		m, ok := byDigest[p.Digest]
		if !ok {
			return nil, fmt.Errorf("the record's %s manifest %s is not in the pushed index", p.Platform, p.Digest)
		}
		for _, sb := range p.SBOMs {
			pt, ok := sbomPredicates[sb.Format]
			if !ok {
				continue
			}
			doc, err := readSBOM(in.Dir, sb)
			if err != nil {
				return nil, err
			}
			subjects := []v1.Descriptor{all[0]}
			if m.Digest != in.Index.Digest {
				subjects = append(subjects, m)
			}
			var named []sign.Subject
			for _, d := range subjects {
				named = append(named, sign.DigestSubject(p.Platform, d.Digest))
			}
			st, err := sign.NewStatement(pt, json.RawMessage(doc), named...)
			if err != nil {
				return nil, err
			}
			out = append(out, Evidence{Name: "sbom " + p.Platform + " (" + sb.Format + ")", Statement: st, Subjects: subjects})
		}
	}
	return out, nil
}

// readSBOM reads an SBOM and checks it is the one the record describes.
func readSBOM(dir string, sb record.SBOM) ([]byte, error) {
	path := filepath.Join(dir, filepath.FromSlash(sb.Path))
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading SBOM: %w", err)
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != sb.SHA256 {
		return nil, fmt.Errorf("SBOM %s changed since slipway image wrote it (sha256 %x, record says %s)", sb.Path, sum, sb.SHA256)
	}
	if !json.Valid(data) || !bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
		return nil, fmt.Errorf("SBOM %s is not a JSON document", sb.Path)
	}
	return data, nil
}

// Published is a bundle attached to a manifest.
type Published struct {
	Evidence string
	// PredicateType is the signed statement's.
	PredicateType string
	Subject       v1.Hash
	Referrer      v1.Descriptor
}

// Signed is a statement signed: its evidence and the Sigstore bundle.
type Signed struct {
	Evidence
	PredicateType string
	Bundle        []byte
}

// Sign signs each statement and attaches its bundle to its manifests;
// see SignAll and Attach.
func Sign(ctx context.Context, s *sign.Signer, repo sign.Attacher, ev []Evidence, now time.Time) ([]Published, error) {
	signed, err := SignAll(ctx, s, ev)
	if err != nil {
		return nil, err
	}
	return Attach(ctx, repo, signed, now)
}

// SignAll signs each statement once, a few at a time (each signature
// waits on the timestamp authority). The bundles do not depend on the
// repository, so a push to many signs once for all.
func SignAll(ctx context.Context, s *sign.Signer, ev []Evidence) ([]Signed, error) {
	out := make([]Signed, len(ev))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i, e := range ev {
		g.Go(func() error {
			st, err := sign.ParseStatement(e.Statement)
			if err != nil {
				return fmt.Errorf("the %s statement: %w", e.Name, err)
			}
			b, err := s.Sign(gctx, e.Statement)
			if err != nil {
				return fmt.Errorf("signing the %s statement: %w", e.Name, err)
			}
			out[i] = Signed{Evidence: e, PredicateType: st.PredicateType, Bundle: b}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// Attach attaches each bundle to its manifests, one at a time: on a
// registry without the referrers API each attachment rewrites the
// subject's fallback index.
func Attach(ctx context.Context, repo sign.Attacher, signed []Signed, now time.Time) ([]Published, error) {
	var out []Published
	for _, b := range signed {
		for _, d := range b.Subjects {
			ref, err := sign.Publish(ctx, repo, d, b.Bundle, now)
			if err != nil {
				return out, err
			}
			out = append(out, Published{Evidence: b.Name, PredicateType: b.PredicateType, Subject: d.Digest, Referrer: ref})
		}
	}
	return out, nil
}

// Check verifies each bundle against a trusted root, as the signer's own
// identity (or key) with the timestamps and log entries it asked for, so
// that signatures no verifier will accept are never published.
func Check(tr root.TrustedMaterial, s *sign.Signer, signed []Signed) error {
	ts, tl := s.Evidence()
	p := trust.Policy{Root: tr, Timestamps: ts, TlogEntries: tl}
	if s.Keyless() {
		subject, issuer := s.Identity()
		p.Identities = []trust.Identity{{Subject: subject, Issuer: issuer}}
	} else {
		p.Keys = []crypto.PublicKey{s.PublicKey()}
	}
	v, err := trust.New(p)
	if err != nil {
		return fmt.Errorf("checking the signatures against --trusted-root: %w", err)
	}
	for _, b := range signed {
		if _, err := v.Verify(b.Bundle, trust.Expect{Digest: b.Subjects[0].Digest, PredicateType: b.PredicateType}); err != nil {
			return fmt.Errorf("the %s signature does not verify against --trusted-root: %w", b.Name, err)
		}
	}
	return nil
}

// AttachTo attaches the bundles in repo as Attach does, but lists them in
// each subject's referrers fallback index with one write per subject, as
// push lists its other referrers, rather than one write and a settling
// pause per bundle (registry.Repository.Attach's way, for one artifact).
func AttachTo(ctx context.Context, repo *registry.Repository, signed []Signed, now time.Time) ([]Published, error) {
	b := &batch{r: repo, bySubject: map[v1.Hash][]v1.Descriptor{}}
	pub, err := Attach(ctx, b, signed, now)
	if err != nil {
		return pub, err
	}
	return pub, b.list(ctx)
}

// batch is a sign.Attacher that pushes each artifact and keeps it by
// subject, for list to add them to the referrers fallback indexes.
type batch struct {
	r         *registry.Repository
	config    bool // the empty config is there
	subjects  []v1.Hash
	bySubject map[v1.Hash][]v1.Descriptor
}

func (b *batch) Attach(ctx context.Context, subject v1.Descriptor, data []byte, mediaType, artifactType string, ann map[string]string) (v1.Descriptor, error) {
	h, size, err := v1.SHA256(bytes.NewReader(data))
	if err != nil {
		return v1.Descriptor{}, err
	}
	layer := v1.Descriptor{MediaType: types.MediaType(mediaType), Size: size, Digest: h}
	raw, desc, err := registry.ArtifactManifest(subject, layer, artifactType, ann)
	if err != nil {
		return v1.Descriptor{}, err
	}
	blobs := []registry.Blob{{Desc: layer, Open: opener(data)}}
	if !b.config {
		empty := registry.EmptyConfig()
		blobs = append(blobs, registry.Blob{Desc: empty, Open: opener(empty.Data)})
	}
	for _, bl := range blobs {
		if _, err := b.r.PutBlob(ctx, bl, "", true); err != nil {
			return v1.Descriptor{}, err
		}
	}
	b.config = true
	if err := b.r.PutManifest(ctx, desc.Digest.String(), desc.MediaType, raw); err != nil {
		return v1.Descriptor{}, err
	}
	if _, ok := b.bySubject[subject.Digest]; !ok {
		b.subjects = append(b.subjects, subject.Digest)
	}
	b.bySubject[subject.Digest] = append(b.bySubject[subject.Digest], desc)
	return desc, nil
}

// list makes the artifacts findable: a registry with the referrers API
// lists them already; one without gets them added to each subject's
// fallback index, keeping what others put there.
func (b *batch) list(ctx context.Context) error {
	if len(b.subjects) == 0 {
		return nil
	}
	api, err := b.r.ReferrersAPI(ctx, b.subjects[0])
	if err != nil || api {
		return err
	}
	for _, s := range b.subjects {
		if _, err := b.r.AddReferrers(ctx, s, b.bySubject[s]); err != nil {
			return fmt.Errorf("listing the signatures of %s: %w", s, err)
		}
	}
	return nil
}

func opener(data []byte) func(context.Context) (io.ReadCloser, error) {
	return func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
}
