// Package report holds slipway scan's one findings model and the formats it
// renders to. Every format is a Handler of one canonical stream of
// messages; the JSON format writes that stream, and Replay feeds it back
// into any handler, so a report can be rendered again offline.
package report

import (
	"fmt"
	"slices"
	"strings"
)

// Severity of a finding, as the scanners grade it.
type Severity string

// Severities from least to most severe. Unknown sorts below Low: the Go
// vulnerability database grades nothing, and a grade is not invented.
const (
	Unknown  Severity = "UNKNOWN"
	Low      Severity = "LOW"
	Medium   Severity = "MEDIUM"
	High     Severity = "HIGH"
	Critical Severity = "CRITICAL"
)

// Severities lists the severities from most to least severe.
var Severities = []Severity{Critical, High, Medium, Low, Unknown}

// Rank orders severities: Unknown 0 … Critical 4.
func (s Severity) Rank() int {
	switch s {
	case Low:
		return 1
	case Medium:
		return 2
	case High:
		return 3
	case Critical:
		return 4
	}
	return 0
}

// ParseSeverity reads a severity in any case; "" and "none" are not
// severities.
func ParseSeverity(s string) (Severity, error) {
	sev := Severity(strings.ToUpper(strings.TrimSpace(s)))
	if slices.Contains(Severities, sev) {
		return sev, nil
	}
	return "", fmt.Errorf("unknown severity %q (want one of critical, high, medium, low, unknown)", s)
}

// Reachability says how far the scanned code gets to a vulnerability.
type Reachability string

// Reachabilities, from proven reachable down to merely present. A finding
// with no reachability (OS packages, code weaknesses) was not analysed.
// Linked is what a binary alone can tell: the linker keeps far more than
// the code calls, so it ranks below Called, and it is only the verdict
// for binaries whose source is not here (see Analysis).
const (
	Called   Reachability = "called"   // the source calls a vulnerable function
	Linked   Reachability = "linked"   // a vulnerable function is in a binary with no source here
	Imported Reachability = "imported" // its package is imported (or linked), no vulnerable function called
	Required Reachability = "required" // its module is required, the package not imported
)

// Rank orders reachability: none 0, Required 1, Imported 2, Linked 3,
// Called 4.
func (r Reachability) Rank() int {
	switch r {
	case Required:
		return 1
	case Imported:
		return 2
	case Linked:
		return 3
	case Called:
		return 4
	}
	return 0
}

// Analyses, the two ways govulncheck reaches a verdict on reachability.
const (
	// SourceAnalysis follows calls through the module's source, for one
	// set of platforms: the authority for the binaries built from it.
	SourceAnalysis = "source"
	// BinaryAnalysis reads the symbols linked into a binary, for binaries
	// whose source is not here (a base image's, a third party's).
	BinaryAnalysis = "binary"
)

// Unreachable reports whether the analysis showed that no vulnerable code
// is called. Findings that were not analysed are not unreachable.
func (r Reachability) Unreachable() bool { return r == Imported || r == Required }

// Kind tells a vulnerability in a dependency from a weakness in the code.
type Kind string

// Kinds of finding.
const (
	Vulnerability Kind = "vulnerability"
	Weakness      Kind = "weakness"
)

// Finding is one problem, however many scanners saw it.
type Finding struct {
	// ID is the preferred identifier: a CVE if the vulnerability has one,
	// else a GHSA, else the scanner's own (GO-…); a rule (G404) for a
	// weakness.
	ID      string   `json:"id"`
	Aliases []string `json:"aliases,omitempty"`
	Kind    Kind     `json:"kind"`
	// Title and Description come from scanners and databases: untrusted
	// text, never to be written where it could be read as a command.
	Title       string   `json:"title,omitempty"`
	Description string   `json:"description,omitempty"`
	Severity    Severity `json:"severity"`
	// Package is a Go module path, an OS package name or, for a weakness,
	// the Go package the code is in.
	Package      string `json:"package,omitempty"`
	Version      string `json:"version,omitempty"`
	FixedVersion string `json:"fixedVersion,omitempty"`
	Ecosystem    string `json:"ecosystem,omitempty"` // go, debian, alpine, …
	// SeveritySource is who graded Severity: a vendor in trivy's
	// database (ghsa, nvd, debian, …) or gosec; empty when nobody did.
	SeveritySource string       `json:"severitySource,omitempty"`
	Reachability   Reachability `json:"reachability,omitempty"`
	// Analysis is the analysis that gave Reachability: SourceAnalysis or
	// BinaryAnalysis.
	Analysis  string     `json:"analysis,omitempty"`
	Locations []Location `json:"locations,omitempty"`
	CWEs      []string   `json:"cwes,omitempty"`
	URL       string     `json:"url,omitempty"`
	Scanners  []string   `json:"scanners"`
	// Waiver is set by policy when a waiver matches the finding.
	Waiver *Waiver `json:"waiver,omitempty"`
}

// IDs returns the ID followed by the aliases.
func (f *Finding) IDs() []string { return append([]string{f.ID}, f.Aliases...) }

// Waived reports whether a waiver in force covers the finding.
func (f *Finding) Waived() bool { return f.Waiver != nil && !f.Waiver.Expired }

// SourceLocation returns the first location in the source tree.
func (f *Finding) SourceLocation() (Location, bool) {
	for _, l := range f.Locations {
		if !l.Image {
			return l, true
		}
	}
	return Location{}, false
}

// Location is where a finding was seen.
type Location struct {
	// Path is relative to the repository root with forward slashes, or,
	// if Image, a path inside the image.
	Path   string `json:"path"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
	Image  bool   `json:"image,omitempty"`
	// Platform is the image's platform, when the image has several.
	Platform string `json:"platform,omitempty"`
	// Symbol is the vulnerable function the code at Path calls.
	Symbol string `json:"symbol,omitempty"`
}

func (l Location) String() string {
	s := l.Path
	if l.Image {
		s = "image:/" + strings.TrimPrefix(s, "/")
		if l.Platform != "" {
			s = "image(" + l.Platform + "):/" + strings.TrimPrefix(l.Path, "/")
		}
	}
	if l.Line > 0 {
		s += fmt.Sprintf(":%d", l.Line)
		if l.Column > 0 {
			s += fmt.Sprintf(":%d", l.Column)
		}
	}
	return s
}

// Waiver is the waiver that matched a finding, as policy records it.
type Waiver struct {
	ID      string `json:"id"` // as written in the waiver file
	Reason  string `json:"reason"`
	Expires string `json:"expires,omitempty"` // YYYY-MM-DD
	Expired bool   `json:"expired,omitempty"`
}

// Scan describes what was scanned.
type Scan struct {
	Slipway string `json:"slipway"`
	// Module and Source describe the Go module scanned from source; Source
	// is its directory relative to the repository root.
	Module string `json:"module,omitempty"`
	Source string `json:"source,omitempty"`
	Commit string `json:"commit,omitempty"`
	Image  *Image `json:"image,omitempty"`
	// Grades is the database that graded the vulnerabilities no scanner
	// graded (trivy's, looked up by CVE and GHSA aliases), if one was at
	// hand.
	Grades *DB `json:"grades,omitempty"`
	// Started and Finished are RFC 3339 times.
	Started  string `json:"started"`
	Finished string `json:"finished"`
}

// Image is the image scanned.
type Image struct {
	// Name is a reference or oci:DIR as given.
	Name string `json:"name"`
	// Digest is what was asked for: an index or a manifest.
	Digest string `json:"digest"`
	// Platforms are the platform images scanned: every one of an index,
	// unless --platform chose one.
	Platforms []PlatformImage `json:"platforms"`
}

// PlatformImage is one platform's image that was scanned.
type PlatformImage struct {
	Platform string `json:"platform,omitempty"` // os/arch[/variant]
	Manifest string `json:"manifest"`
	OS       string `json:"os,omitempty"` // e.g. debian 12.5, as trivy detects it
}

// Platform returns the platform image scanned for p, or nil.
func (i *Image) Platform(p string) *PlatformImage {
	for k := range i.Platforms {
		if i.Platforms[k].Platform == p {
			return &i.Platforms[k]
		}
	}
	return nil
}

// Scanner describes one scanner and the database it used.
type Scanner struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	URL     string `json:"url,omitempty"`
	// Targets says what it looked at: "source", "image", "binary …".
	Targets []string `json:"targets,omitempty"`
	DB      *DB      `json:"db,omitempty"`
}

// DB is a vulnerability database as a scanner saw it.
type DB struct {
	Source  string `json:"source"`            // where it came from
	Version string `json:"version,omitempty"` // schema or release
	Updated string `json:"updated,omitempty"` // RFC 3339
}

// Verdict is policy's answer: may the pipeline go on.
type Verdict struct {
	Pass          bool   `json:"pass"`
	FailOn        string `json:"failOn"` // a severity, or none
	ReachableOnly bool   `json:"reachableOnly,omitempty"`
	// UnknownFails is the rule for vulnerabilities of unknown severity:
	// "called" fails a reached one with a fix, "never" ranks it below
	// low (policy.Unknown).
	UnknownFails string   `json:"unknownFails,omitempty"`
	Counts       Counts   `json:"counts"`
	Reasons      []string `json:"reasons,omitempty"`
	// Failing names each finding that fails the policy, by its ID (and
	// package, where two findings share an ID), so that it counts what
	// Counts counts.
	Failing []string    `json:"failing,omitempty"`
	Waivers []WaiverUse `json:"waivers,omitempty"`
}

// WaiverUse is one waiver of the waiver file and what it did.
type WaiverUse struct {
	ID       string   `json:"id"`
	Reason   string   `json:"reason"`
	Expires  string   `json:"expires,omitempty"`
	Expired  bool     `json:"expired,omitempty"`
	Findings []string `json:"findings,omitempty"` // IDs it matched
}

// Counts are findings by severity; Waived are not counted by severity.
type Counts struct {
	Critical int `json:"critical"`
	High     int `json:"high"`
	Medium   int `json:"medium"`
	Low      int `json:"low"`
	Unknown  int `json:"unknown"`
	Waived   int `json:"waived"`
}

// Add counts one finding.
func (c *Counts) Add(f *Finding) {
	if f.Waived() {
		c.Waived++
		return
	}
	*c.bySeverity(f.Severity)++
}

// Of returns the count for one severity.
func (c *Counts) Of(s Severity) int { return *c.bySeverity(s) }

// Total is every finding not waived.
func (c *Counts) Total() int { return c.Critical + c.High + c.Medium + c.Low + c.Unknown }

func (c *Counts) bySeverity(s Severity) *int {
	switch s {
	case Critical:
		return &c.Critical
	case High:
		return &c.High
	case Medium:
		return &c.Medium
	case Low:
		return &c.Low
	}
	return &c.Unknown
}

// Report is a whole scan: what the stream carries, gathered.
type Report struct {
	Scan     Scan
	Scanners []*Scanner
	Findings []*Finding
	Verdict  *Verdict
}

// Counts counts the report's findings.
func (r *Report) Counts() Counts {
	var c Counts
	for _, f := range r.Findings {
		c.Add(f)
	}
	return c
}

// countsOf counts what policy counted, all findings, when the formats see
// only some of them.
func countsOf(r *Report) Counts {
	if r.Verdict != nil {
		return r.Verdict.Counts
	}
	return r.Counts()
}

// Scanner returns the named scanner, or nil.
func (r *Report) Scanner(name string) *Scanner {
	for _, s := range r.Scanners {
		if s.Name == name {
			return s
		}
	}
	return nil
}
