package report

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// GitLab security reports, schema 15.2.4: container_scanning for what was
// found in the image, sast for what was found only in the source (code
// weaknesses, and Go vulnerabilities when no image was scanned). Waived
// findings are left out: GitLab has no field for an accepted risk.

const gitlabSchemaVersion = "15.2.4"

type glReport struct {
	Schema          string     `json:"schema"`
	Version         string     `json:"version"`
	Scan            glScan     `json:"scan"`
	Vulnerabilities []glVuln   `json:"vulnerabilities"`
	Remediations    []struct{} `json:"remediations,omitempty"`
}

type glScan struct {
	Analyzer  glTool      `json:"analyzer"`
	Scanner   glTool      `json:"scanner"`
	Type      string      `json:"type"`
	StartTime string      `json:"start_time"`
	EndTime   string      `json:"end_time"`
	Status    string      `json:"status"`
	Messages  []glMessage `json:"messages,omitempty"`
}

type glTool struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	URL     string   `json:"url,omitempty"`
	Version string   `json:"version"`
	Vendor  glVendor `json:"vendor"`
}

type glVendor struct {
	Name string `json:"name"`
}

type glMessage struct {
	Level string `json:"level"`
	Value string `json:"value"`
}

type glVuln struct {
	ID          string             `json:"id"`
	Name        string             `json:"name,omitempty"`
	Description string             `json:"description,omitempty"`
	Severity    string             `json:"severity"`
	Solution    string             `json:"solution,omitempty"`
	Identifiers []glIdentifier     `json:"identifiers"`
	Links       []glLink           `json:"links,omitempty"`
	Details     map[string]glField `json:"details,omitempty"`
	Location    any                `json:"location"`
}

type glIdentifier struct {
	Type  string `json:"type"`
	Name  string `json:"name"`
	URL   string `json:"url,omitempty"`
	Value string `json:"value"`
}

type glLink struct {
	URL string `json:"url"`
}

// glField is one of GitLab's details: a named field shown with the
// finding.
type glField struct {
	Name  string `json:"name"`
	Type  string `json:"type"` // text
	Value string `json:"value"`
}

// glDetails says how far the code reaches a vulnerability and by which
// analysis, and who graded it; GitLab has no field of its own for either.
func glDetails(f *Finding) map[string]glField {
	items := map[string]glField{}
	if f.Reachability != "" {
		items["reachability"] = glField{Name: "Reachability", Type: "text", Value: reachSentence(f)}
	}
	if f.SeveritySource != "" {
		items["severity_source"] = glField{Name: "Severity from", Type: "text", Value: f.SeveritySource}
	}
	if len(items) == 0 {
		return nil
	}
	return items
}

type glImageLocation struct {
	Dependency      glDependency `json:"dependency"`
	OperatingSystem string       `json:"operating_system"`
	Image           string       `json:"image"`
}

type glDependency struct {
	Package glPackage `json:"package"`
	Version string    `json:"version"`
}

type glPackage struct {
	Name string `json:"name"`
}

type glSourceLocation struct {
	File      string `json:"file"`
	StartLine int    `json:"start_line,omitempty"`
	EndLine   int    `json:"end_line,omitempty"`
	Method    string `json:"method,omitempty"`
}

// NewGitLabContainerHandler returns GitLab's container_scanning report.
func NewGitLabContainerHandler(w io.Writer) Handler {
	return Collect(func(r *Report) error { return writeGitLab(w, r, "container_scanning") })
}

// NewGitLabSASTHandler returns GitLab's sast report.
func NewGitLabSASTHandler(w io.Writer) Handler {
	return Collect(func(r *Report) error { return writeGitLab(w, r, "sast") })
}

// InImage reports whether a finding was seen in the image.
func (f *Finding) InImage() bool {
	for _, l := range f.Locations {
		if l.Image {
			return true
		}
	}
	return false
}

func writeGitLab(w io.Writer, r *Report, kind string) error {
	rep := glReport{
		Schema:          "https://gitlab.com/gitlab-org/security-products/security-report-schemas/-/raw/v" + gitlabSchemaVersion + "/dist/" + strings.ReplaceAll(kind, "_", "-") + "-report-format.json",
		Version:         gitlabSchemaVersion,
		Scan:            glScanFor(r, kind),
		Vulnerabilities: []glVuln{},
	}
	for _, f := range r.Findings {
		if f.Waived() || f.InImage() != (kind == "container_scanning") {
			continue
		}
		v := glVuln{
			ID:          gitlabID(kind, f),
			Name:        clean(glName(f), 255),
			Description: f.Description,
			Severity:    glSeverity(f.Severity),
			Identifiers: glIdentifiers(f),
			Details:     glDetails(f),
		}
		if f.FixedVersion != "" {
			v.Solution = fmt.Sprintf("Upgrade %s to %s or later.", f.Package, f.FixedVersion)
		}
		if strings.HasPrefix(f.URL, "http://") || strings.HasPrefix(f.URL, "https://") {
			v.Links = []glLink{{URL: f.URL}}
		}
		if kind == "container_scanning" {
			v.Location = glImageLocation{
				Dependency:      glDependency{Package: glPackage{Name: f.Package}, Version: f.Version},
				OperatingSystem: glOS(r, f),
				Image:           glImage(r, f),
			}
		} else {
			l, _ := f.SourceLocation()
			v.Location = glSourceLocation{File: l.Path, StartLine: l.Line, EndLine: l.Line, Method: l.Symbol}
		}
		rep.Vulnerabilities = append(rep.Vulnerabilities, v)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(rep)
}

func glScanFor(r *Report, kind string) glScan {
	slipway := r.Scan.Slipway
	if slipway == "" {
		slipway = "devel"
	}
	var names, versions []string
	for _, s := range r.Scanners {
		// container_scanning lists the image scanners; sast the others.
		if (kind == "container_scanning") != (s.Name == "trivy" || hasTarget(s, "binary")) {
			continue
		}
		names = append(names, s.Name)
		versions = append(versions, s.Name+" "+s.Version)
	}
	if len(names) == 0 {
		names, versions = []string{"slipway"}, []string{"slipway " + slipway}
	}
	s := glScan{
		Analyzer: glTool{ID: "slipway-scan", Name: "Slipway scan", URL: "https://github.com/slipwayci/slipway", Version: slipway, Vendor: glVendor{Name: "Slipway"}},
		Scanner: glTool{
			ID:      strings.Join(names, "+"),
			Name:    strings.Join(versions, ", "),
			Version: slipway,
			Vendor:  glVendor{Name: "Slipway"},
		},
		Type:      kind,
		StartTime: glTime(r.Scan.Started),
		EndTime:   glTime(r.Scan.Finished),
		Status:    "success",
	}
	return s
}

func hasTarget(s *Scanner, prefix string) bool {
	for _, t := range s.Targets {
		if strings.HasPrefix(t, prefix) {
			return true
		}
	}
	return false
}

// glTime is GitLab's yyyy-mm-ddThh:mm:ss in UTC.
func glTime(rfc3339 string) string {
	t, err := time.Parse(time.RFC3339, rfc3339)
	if err != nil {
		t = time.Unix(0, 0)
	}
	return t.UTC().Format("2006-01-02T15:04:05")
}

func glName(f *Finding) string {
	if f.Title != "" {
		return f.Title
	}
	if f.Package != "" {
		return f.ID + " in " + f.Package
	}
	return f.ID
}

func glSeverity(s Severity) string {
	if s == "" {
		s = Unknown
	}
	return string(s[:1]) + strings.ToLower(string(s[1:]))
}

func glIdentifiers(f *Finding) []glIdentifier {
	var ids []glIdentifier
	for _, id := range f.IDs() {
		ids = append(ids, glIdentifierFor(f, id))
	}
	for _, c := range f.CWEs {
		n := strings.TrimPrefix(c, "CWE-")
		ids = append(ids, glIdentifier{Type: "cwe", Name: c, Value: n, URL: "https://cwe.mitre.org/data/definitions/" + n + ".html"})
	}
	return ids
}

func glIdentifierFor(f *Finding, id string) glIdentifier {
	switch {
	case strings.HasPrefix(id, "CVE-"):
		return glIdentifier{Type: "cve", Name: id, Value: id, URL: "https://nvd.nist.gov/vuln/detail/" + id}
	case strings.HasPrefix(id, "GHSA-"):
		return glIdentifier{Type: "ghsa", Name: id, Value: id, URL: "https://github.com/advisories/" + id}
	case strings.HasPrefix(id, "GO-"):
		return glIdentifier{Type: "go", Name: id, Value: id, URL: "https://pkg.go.dev/vuln/" + id}
	case f.Kind == Weakness:
		return glIdentifier{Type: "gosec_rule_id", Name: "gosec " + id, Value: id, URL: "https://securego.io/docs/rules/" + strings.ToLower(id) + ".html"}
	}
	return glIdentifier{Type: "other", Name: id, Value: id}
}

// gitlabID is a UUID-shaped digest of what makes a finding itself, so the
// same finding keeps its id from one pipeline to the next.
func gitlabID(kind string, f *Finding) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s", kind, fingerprint(f))
	s := hex.EncodeToString(h.Sum(nil))
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
}

// glPlatform is the platform image a finding was seen in: the one its
// first image location names, else the first scanned.
func glPlatform(r *Report, f *Finding) *PlatformImage {
	img := r.Scan.Image
	if img == nil || len(img.Platforms) == 0 {
		return nil
	}
	for _, l := range f.Locations {
		if p := img.Platform(l.Platform); l.Image && p != nil {
			return p
		}
	}
	return &img.Platforms[0]
}

func glOS(r *Report, f *Finding) string {
	if p := glPlatform(r, f); p != nil && p.OS != "" {
		return p.OS
	}
	return "unknown"
}

// glImage names the image by its index digest, or, for a finding in one
// platform of several, by that platform's manifest.
func glImage(r *Report, f *Finding) string {
	img := r.Scan.Image
	if img == nil {
		return "unknown"
	}
	if p := glPlatform(r, f); p != nil && len(img.Platforms) > 1 {
		return img.Name + "@" + p.Manifest
	}
	if img.Digest != "" {
		return img.Name + "@" + img.Digest
	}
	return img.Name
}
