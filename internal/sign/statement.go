package sign

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// StatementType is in-toto's Statement v1.
const StatementType = "https://in-toto.io/Statement/v1"

// Predicate types of the statements slipway signs, and the names `cosign
// verify-attestation --type` knows them by.
const (
	// CosignSignPredicate is what cosign v3 signs for `cosign sign`: a
	// statement whose subject is the image and whose predicate is empty.
	// Plain `cosign verify` accepts an image with such a bundle.
	CosignSignPredicate = "https://sigstore.dev/cosign/sign/v1"
	// SLSAProvenancePredicate is SLSA provenance v1 (--type slsaprovenance1).
	SLSAProvenancePredicate = "https://slsa.dev/provenance/v1"
	// SPDXPredicate holds an SPDX JSON document (--type spdxjson).
	SPDXPredicate = "https://spdx.dev/Document"
	// CycloneDXPredicate holds a CycloneDX JSON BOM (--type cyclonedx).
	CycloneDXPredicate = "https://cyclonedx.org/bom"
)

// Statement is an in-toto Statement v1, with the predicate left as JSON.
type Statement struct {
	Type          string          `json:"_type"`
	Subject       []Subject       `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

// Subject is an artifact the statement is about.
type Subject struct {
	Name   string            `json:"name,omitempty"`
	Digest map[string]string `json:"digest"`
}

// ParseStatement reads an in-toto Statement v1 and checks its shape: the
// type, at least one subject with a sha256 digest, a predicate type and
// an object as the predicate.
func ParseStatement(data []byte) (*Statement, error) {
	var s Statement
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("reading the in-toto statement: %w", err)
	}
	switch {
	case s.Type != StatementType:
		return nil, fmt.Errorf("reading the in-toto statement: _type is %q, not %s", s.Type, StatementType)
	case len(s.Subject) == 0:
		return nil, errors.New("reading the in-toto statement: it has no subject")
	case s.PredicateType == "":
		return nil, errors.New("reading the in-toto statement: it has no predicateType")
	case len(s.Predicate) == 0 || s.Predicate[0] != '{':
		return nil, errors.New("reading the in-toto statement: its predicate is not an object")
	}
	for _, sub := range s.Subject {
		d, ok := sub.Digest["sha256"]
		if b, err := hex.DecodeString(d); !ok || err != nil || len(b) != 32 {
			return nil, fmt.Errorf("reading the in-toto statement: subject %q has no sha256 digest", sub.Name)
		}
	}
	return &s, nil
}

// Names reports whether the statement names digest among its subjects.
func (s *Statement) Names(digest v1.Hash) bool {
	for _, sub := range s.Subject {
		if sub.Digest[digest.Algorithm] == digest.Hex {
			return true
		}
	}
	return false
}

// NewStatement makes a statement about subjects with the given predicate,
// which is encoded as JSON.
func NewStatement(predicateType string, predicate any, subjects ...Subject) ([]byte, error) {
	p, err := json.Marshal(predicate)
	if err != nil {
		return nil, fmt.Errorf("encoding the %s predicate: %w", predicateType, err)
	}
	return json.Marshal(Statement{Type: StatementType, Subject: subjects, PredicateType: predicateType, Predicate: p})
}

// DigestSubject is a subject named by its digest only, as cosign names
// an image.
func DigestSubject(name string, h v1.Hash) Subject {
	return Subject{Name: name, Digest: map[string]string{h.Algorithm: h.Hex}}
}

// ImageStatement is the statement cosign v3 signs for `cosign sign
// IMAGE@DIGEST`: the image's digest as the one subject, the cosign sign
// predicate type and an empty predicate.
func ImageStatement(h v1.Hash) ([]byte, error) {
	return NewStatement(CosignSignPredicate, struct{}{}, DigestSubject("", h))
}
