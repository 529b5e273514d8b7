package promote

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slipwayci/slipway/internal/registry"
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

	once sync.Once
	refs []v1.Descriptor
	err  error
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

func (e *registryEvidence) Promotions(ctx context.Context, env string) ([]Promotion, error) {
	h, err := e.history(ctx, env)
	if err != nil {
		return nil, err
	}
	return h.Promotions(ctx, e.digest)
}

func (e *registryEvidence) SBOMs(ctx context.Context) ([]string, error) {
	refs, err := e.referrers(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range refs {
		if d.ArtifactType == registry.MediaTypeSPDX || d.ArtifactType == registry.MediaTypeCycloneDX {
			out = append(out, d.Digest.String())
		}
	}
	return out, nil
}

// Scans reads every in-toto statement attached whose predicate is a scan
// and which names the image among its subjects.
func (e *registryEvidence) Scans(ctx context.Context) ([]Scan, error) {
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
		s.Record = d.Digest.String()
		out = append(out, s)
	}
	return out, nil
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
