package promote

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slipwayci/slipway/internal/registry"
)

// A promotion record is an in-toto Statement v1 about the image promoted,
// pushed as an OCI artifact whose subject is that image, into the
// environment's repository. It is both evidence attached to the digest and
// a link of the environment's history: it names the record before it, and
// the environment's head tag names the newest.

// Predicate types slipway reads and writes.
const (
	StatementType = "https://in-toto.io/Statement/v1"
	// PredicateType names a promotion record.
	PredicateType = "https://slipway.dev/attestations/promotion/v1"
	// ScanPredicateType names slipway scan's result (internal/scan).
	ScanPredicateType = "https://slipway.dev/attestations/scan/v1"
)

// Annotations on a record's manifest: what walking the history needs,
// so that a walk reads manifests only. The statement says the same.
const (
	annEnvironment = "dev.slipway.promotion.environment"
	annSequence    = "dev.slipway.promotion.sequence"
	annPrevious    = "dev.slipway.promotion.previous"
	annTime        = "dev.slipway.promotion.time"
	annRollback    = "dev.slipway.promotion.rollback"
	annUndoes      = "dev.slipway.promotion.undoes"
	annCreated     = "org.opencontainers.image.created"
)

// Record is the predicate of a promotion record: one promotion of a digest
// into an environment, or one rollback.
type Record struct {
	Environment string `json:"environment"`
	Repository  string `json:"repository"`
	Digest      string `json:"digest"`
	// From is the environment the digest came from, Source the reference
	// it was copied from.
	From   string `json:"from,omitempty"`
	Source string `json:"source,omitempty"`
	// Tags are the environment's tags, moved to Digest.
	Tags  []string  `json:"tags"`
	Gates []Verdict `json:"gates"`
	// Rollback records undo the promotion recorded as Undoes.
	Rollback bool   `json:"rollback,omitempty"`
	Undoes   string `json:"undoes,omitempty"`
	// Previous is the record before this one in the environment's
	// history, Sequence this one's place in it (1 for the first).
	Previous   string    `json:"previous,omitempty"`
	Sequence   int       `json:"sequence"`
	Time       time.Time `json:"time"`
	RunURL     string    `json:"runURL,omitempty"`
	Actor      string    `json:"actor,omitempty"`
	ApprovedBy string    `json:"approvedBy,omitempty"`
	Slipway    string    `json:"slipway"`
}

type statement struct {
	Type          string          `json:"_type"`
	Subject       []subject       `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

type subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// artifact makes the record an artifact to attach to its digest.
func (r *Record) artifact() (registry.Artifact, error) {
	pred, err := json.Marshal(r)
	if err != nil {
		return registry.Artifact{}, err
	}
	alg, hex, _ := strings.Cut(r.Digest, ":")
	data, err := json.MarshalIndent(statement{
		Type:          StatementType,
		Subject:       []subject{{Name: r.Repository, Digest: map[string]string{alg: hex}}},
		PredicateType: PredicateType,
		Predicate:     pred,
	}, "", "  ")
	if err != nil {
		return registry.Artifact{}, err
	}
	t := r.Time.UTC().Format(time.RFC3339Nano)
	ann := map[string]string{
		registry.AnnotationPredicateType: PredicateType,
		annEnvironment:                   r.Environment,
		annSequence:                      strconv.Itoa(r.Sequence),
		annTime:                          t,
		annCreated:                       t,
	}
	if r.Previous != "" {
		ann[annPrevious] = r.Previous
	}
	if r.Rollback {
		ann[annRollback] = "true"
		ann[annUndoes] = r.Undoes
	}
	return registry.Artifact{Data: append(data, '\n'), MediaType: registry.MediaTypeInToto, Annotations: ann}, nil
}

// Entry is a record as its manifest shows it: enough to walk a history
// and evaluate gates without reading the statements.
type Entry struct {
	Ref         v1.Hash // the record's manifest
	Digest      v1.Hash // the image it is about
	Environment string
	Sequence    int
	Previous    v1.Hash // zero for the first record
	Time        time.Time
	Rollback    bool
	Undoes      v1.Hash
	// statement is the layer holding the full record.
	statement v1.Descriptor
}

// parseEntry reads a record's manifest; it fails on anything else, so a
// head tag pointed elsewhere is noticed, not followed.
func parseEntry(ref v1.Hash, raw []byte) (*Entry, error) {
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", ref, err)
	}
	a := m.Annotations
	if m.Subject == nil || a[registry.AnnotationPredicateType] != PredicateType || len(m.Layers) != 1 {
		return nil, fmt.Errorf("%s is not a slipway promotion record", ref)
	}
	e := &Entry{Ref: ref, Digest: m.Subject.Digest, Environment: a[annEnvironment], Rollback: a[annRollback] == "true", statement: m.Layers[0]}
	if e.Sequence, err = strconv.Atoi(a[annSequence]); err != nil || e.Sequence < 1 {
		return nil, fmt.Errorf("record %s: bad sequence %q", ref, a[annSequence])
	}
	if e.Time, err = time.Parse(time.RFC3339Nano, a[annTime]); err != nil {
		return nil, fmt.Errorf("record %s: bad time %q", ref, a[annTime])
	}
	if p := a[annPrevious]; p != "" {
		if e.Previous, err = v1.NewHash(p); err != nil {
			return nil, fmt.Errorf("record %s: bad previous %q", ref, p)
		}
	}
	if e.Sequence == 1 && isSet(e.Previous) || e.Sequence > 1 && !isSet(e.Previous) {
		return nil, fmt.Errorf("record %s: sequence %d with previous %q", ref, e.Sequence, a[annPrevious])
	}
	if e.Rollback {
		if e.Undoes, err = v1.NewHash(a[annUndoes]); err != nil {
			return nil, fmt.Errorf("record %s: bad undoes %q", ref, a[annUndoes])
		}
	}
	return e, nil
}

func isSet(h v1.Hash) bool { return h.Hex != "" }

// parseRecord reads a record's statement and checks it says what its
// manifest does.
func parseRecord(e *Entry, data []byte) (*Record, error) {
	var st statement
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("record %s: %w", e.Ref, err)
	}
	if st.Type != StatementType || st.PredicateType != PredicateType {
		return nil, fmt.Errorf("record %s: not a promotion statement (%s)", e.Ref, st.PredicateType)
	}
	var r Record
	if err := json.Unmarshal(st.Predicate, &r); err != nil {
		return nil, fmt.Errorf("record %s: %w", e.Ref, err)
	}
	if r.Digest != e.Digest.String() || r.Sequence != e.Sequence || r.Environment != e.Environment || r.Previous != orEmpty(e.Previous) {
		return nil, fmt.Errorf("record %s: the statement and its manifest disagree", e.Ref)
	}
	return &r, nil
}

func orEmpty(h v1.Hash) string {
	if !isSet(h) {
		return ""
	}
	return h.String()
}
