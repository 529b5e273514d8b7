package scan

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/report"
)

// The evidence of a scan is an in-toto Statement v1 about the image (or,
// without one, the binaries or the commit): what was scanned, by which
// scanners and databases, what they found, which waivers applied and the
// verdict. The push step attaches it to the image digest and promote's
// gates read it.

// StatementType is in-toto's Statement v1.
const StatementType = "https://in-toto.io/Statement/v1"

// PredicateType names slipway's scan result.
const PredicateType = "https://slipway.dev/attestations/scan/v1"

// Statement is an in-toto Statement v1.
type Statement struct {
	Type          string    `json:"_type"`
	Subject       []Subject `json:"subject"`
	PredicateType string    `json:"predicateType"`
	Predicate     Predicate `json:"predicate"`
}

// Subject is a digested artifact the statement is about.
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// Predicate is the scan's result.
type Predicate struct {
	Scanned  Scanned            `json:"scanned"`
	Scanners []*report.Scanner  `json:"scanners"`
	Counts   report.Counts      `json:"counts"`
	Waivers  []report.WaiverUse `json:"waivers"`
	Verdict  Verdict            `json:"verdict"`
	// Reachability is each analysed vulnerability's verdict and the
	// analysis that gave it.
	Reachability []Reach `json:"reachability"`
	// Findings is the canonical findings stream this summarises.
	Findings   Subject `json:"findings"`
	StartedOn  string  `json:"startedOn"`
	FinishedOn string  `json:"finishedOn"`
	Slipway    string  `json:"slipway"`
}

// Scanned says what was looked at.
type Scanned struct {
	Image  *report.Image `json:"image,omitempty"`
	Module string        `json:"module,omitempty"`
	Source string        `json:"source,omitempty"`
	Commit string        `json:"commit,omitempty"`
	// Grades is the database that graded what no scanner graded.
	Grades *report.DB `json:"grades,omitempty"`
}

// Verdict is policy's answer, without the lists the formats carry.
type Verdict struct {
	Pass          bool     `json:"pass"`
	FailOn        string   `json:"failOn"`
	ReachableOnly bool     `json:"reachableOnly"`
	UnknownFails  string   `json:"unknownFails,omitempty"`
	Reasons       []string `json:"reasons"`
	Failing       []string `json:"failing"`
}

// Reach is one vulnerability's reachability and the analysis that gave
// it: source (calls followed) or binary (symbols linked).
type Reach struct {
	ID           string              `json:"id"`
	Package      string              `json:"package"`
	Version      string              `json:"version,omitempty"`
	Reachability report.Reachability `json:"reachability"`
	Analysis     string              `json:"analysis"`
}

// NewStatement describes the report. stream is the canonical JSON the
// report was written as, named findingsPath; rec, if not nil, supplies
// the binaries when no image was scanned.
func NewStatement(r *report.Report, findingsPath string, stream []byte, rec *record.Record) (*Statement, error) {
	subjects := subjects(r, rec)
	if len(subjects) == 0 {
		return nil, fmt.Errorf("nothing to attest: no image, no binaries in the record and no commit")
	}
	v := r.Verdict
	if v == nil {
		return nil, fmt.Errorf("nothing to attest: the report has no verdict")
	}
	sum := sha256.Sum256(stream)
	return &Statement{
		Type:          StatementType,
		Subject:       subjects,
		PredicateType: PredicateType,
		Predicate: Predicate{
			Scanned:  Scanned{Image: r.Scan.Image, Module: r.Scan.Module, Source: r.Scan.Source, Commit: r.Scan.Commit, Grades: r.Scan.Grades},
			Scanners: r.Scanners,
			Counts:   v.Counts,
			Waivers:  nonNil(v.Waivers),
			Verdict: Verdict{
				Pass: v.Pass, FailOn: v.FailOn, ReachableOnly: v.ReachableOnly, UnknownFails: v.UnknownFails,
				Reasons: nonNil(v.Reasons), Failing: nonNil(v.Failing),
			},
			Reachability: reaches(r.Findings),
			Findings:     Subject{Name: findingsPath, Digest: map[string]string{"sha256": hex.EncodeToString(sum[:])}},
			StartedOn:    r.Scan.Started,
			FinishedOn:   r.Scan.Finished,
			Slipway:      r.Scan.Slipway,
		},
	}, nil
}

// reaches lists the verdict on every vulnerability whose reachability was
// analysed.
func reaches(fs []*report.Finding) []Reach {
	out := []Reach{}
	for _, f := range fs {
		if f.Reachability != "" {
			out = append(out, Reach{ID: f.ID, Package: f.Package, Version: f.Version, Reachability: f.Reachability, Analysis: f.Analysis})
		}
	}
	return out
}

// subjects are what the statement is about: the image as given and every
// platform manifest scanned (promote's scan gate passes an index only when
// they are all of its manifests), else the binaries, else the commit.
func subjects(r *report.Report, rec *record.Record) []Subject {
	var out []Subject
	if img := r.Scan.Image; img != nil {
		digests := []string{img.Digest}
		for _, p := range img.Platforms {
			digests = append(digests, p.Manifest)
		}
		for _, d := range digests {
			if alg, hex, ok := strings.Cut(d, ":"); ok && !contains(out, d) {
				out = append(out, Subject{Name: img.Name, Digest: map[string]string{alg: hex}})
			}
		}
		return out
	}
	if rec != nil {
		for _, a := range rec.Artifacts {
			out = append(out, Subject{Name: a.Path, Digest: map[string]string{"sha256": a.SHA256}})
		}
	}
	if len(out) == 0 && r.Scan.Commit != "" {
		out = append(out, Subject{Name: r.Scan.Module, Digest: map[string]string{"gitCommit": r.Scan.Commit}})
	}
	return out
}

func contains(subjects []Subject, digest string) bool {
	alg, hex, _ := strings.Cut(digest, ":")
	for _, s := range subjects {
		if s.Digest[alg] == hex {
			return true
		}
	}
	return false
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// Marshal encodes the statement as indented JSON.
func (s *Statement) Marshal() ([]byte, error) {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding the scan statement: %w", err)
	}
	return append(data, '\n'), nil
}
