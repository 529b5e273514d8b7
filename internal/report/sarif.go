package report

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// SARIF 2.1.0 as GitHub code scanning takes it: one run per tool, each
// with its own automationDetails id so runs do not replace one another,
// source paths relative to the repository root (%SRCROOT%), and a
// security-severity on every rule so GitHub grades the alerts.

const (
	sarifVersion = "2.1.0"
	sarifSchema  = "https://json.schemastore.org/sarif-2.1.0.json"
	srcRoot      = "%SRCROOT%"
)

type sarifLog struct {
	Version string     `json:"version"`
	Schema  string     `json:"$schema"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool              sarifTool       `json:"tool"`
	AutomationDetails sarifAutomation `json:"automationDetails"`
	Results           []sarifResult   `json:"results"`
}

type sarifAutomation struct {
	ID string `json:"id"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string                  `json:"name"`
	Version        string                  `json:"version,omitempty"`
	InformationURI string                  `json:"informationUri,omitempty"`
	Rules          []sarifReportingDescrip `json:"rules"`
}

type sarifReportingDescrip struct {
	ID               string            `json:"id"`
	Name             string            `json:"name,omitempty"`
	ShortDescription sarifText         `json:"shortDescription"`
	FullDescription  *sarifText        `json:"fullDescription,omitempty"`
	HelpURI          string            `json:"helpUri,omitempty"`
	Help             *sarifMultiformat `json:"help,omitempty"`
	DefaultConfig    sarifConfig       `json:"defaultConfiguration"`
	Properties       sarifRuleProps    `json:"properties"`
}

type sarifConfig struct {
	Level string `json:"level"`
}

type sarifRuleProps struct {
	Tags             []string `json:"tags"`
	SecuritySeverity string   `json:"security-severity,omitempty"`
	Precision        string   `json:"precision,omitempty"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifMultiformat struct {
	Text     string `json:"text"`
	Markdown string `json:"markdown,omitempty"`
}

type sarifResult struct {
	RuleID              string             `json:"ruleId"`
	RuleIndex           int                `json:"ruleIndex"`
	Level               string             `json:"level"`
	Message             sarifText          `json:"message"`
	Locations           []sarifLocation    `json:"locations"`
	PartialFingerprints map[string]string  `json:"partialFingerprints"`
	Suppressions        []sarifSuppression `json:"suppressions,omitempty"`
	Properties          map[string]any     `json:"properties,omitempty"`
}

type sarifSuppression struct {
	Kind          string `json:"kind"`
	Status        string `json:"status"`
	Justification string `json:"justification,omitempty"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysical `json:"physicalLocation"`
	Message          *sarifText    `json:"message,omitempty"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtLoc  `json:"artifactLocation"`
	Region           *sarifRegion `json:"region,omitempty"`
}

type sarifArtLoc struct {
	URI       string `json:"uri"`
	URIBaseID string `json:"uriBaseId,omitempty"`
}

type sarifRegion struct {
	StartLine   int `json:"startLine"`
	StartColumn int `json:"startColumn,omitempty"`
}

// NewSARIFHandler returns the SARIF 2.1.0 format.
func NewSARIFHandler(w io.Writer) Handler {
	return Collect(func(r *Report) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(toSARIF(r))
	})
}

// toolInfo is what SARIF says about each scanner.
var toolInfo = map[string]string{
	"trivy":       "https://trivy.dev",
	"govulncheck": "https://pkg.go.dev/golang.org/x/vuln/cmd/govulncheck",
	"gosec":       "https://securego.io",
}

// primary is the scanner whose run a merged finding goes into: the one
// that can point at source code first.
var primary = []string{"gosec", "govulncheck", "trivy"}

func primaryScanner(f *Finding) string {
	for _, s := range primary {
		if slices.Contains(f.Scanners, s) {
			return s
		}
	}
	if len(f.Scanners) > 0 {
		return f.Scanners[0]
	}
	return "slipway"
}

func toSARIF(r *Report) sarifLog {
	names := sortedScanners(r)
	for _, f := range r.Findings {
		if p := primaryScanner(f); !slices.Contains(names, p) {
			names = append(names, p)
		}
	}
	runs := make([]sarifRun, 0, len(names))
	for _, name := range names {
		runs = append(runs, sarifRunFor(r, name))
	}
	return sarifLog{Version: sarifVersion, Schema: sarifSchema, Runs: runs}
}

func sarifRunFor(r *Report, tool string) sarifRun {
	run := sarifRun{
		Tool: sarifTool{Driver: sarifDriver{
			Name:           tool,
			InformationURI: toolInfo[tool],
			Rules:          []sarifReportingDescrip{},
		}},
		AutomationDetails: sarifAutomation{ID: "slipway-scan/" + tool + "/"},
		Results:           []sarifResult{},
	}
	if s := r.Scanner(tool); s != nil {
		run.Tool.Driver.Version = s.Version
	}
	rules := map[string]int{}
	for _, f := range r.Findings {
		if primaryScanner(f) != tool {
			continue
		}
		idx, ok := rules[f.ID]
		if !ok {
			idx = len(run.Tool.Driver.Rules)
			rules[f.ID] = idx
			run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, sarifRule(f))
		} else if d := &run.Tool.Driver.Rules[idx]; f.Severity.Rank() > levelRank(d.DefaultConfig.Level) {
			// One rule, several packages: grade the rule by its worst.
			*d = sarifRule(f)
		}
		run.Results = append(run.Results, sarifResultFor(r, f, idx))
	}
	return run
}

func levelRank(level string) int {
	switch level {
	case "error":
		return High.Rank()
	case "warning":
		return Medium.Rank()
	}
	return Low.Rank()
}

func sarifRule(f *Finding) sarifReportingDescrip {
	short := clean(f.Title, 200)
	if short == "" {
		short = f.ID
	}
	d := sarifReportingDescrip{
		ID:               f.ID,
		ShortDescription: sarifText{Text: short},
		HelpURI:          f.URL,
		DefaultConfig:    sarifConfig{Level: sarifLevel(f.Severity)},
		Properties: sarifRuleProps{
			Tags:             []string{"security", string(f.Kind)},
			SecuritySeverity: securitySeverity(f.Severity),
		},
	}
	if f.Description != "" {
		d.FullDescription = &sarifText{Text: f.Description}
	}
	help := f.Description
	if help == "" {
		help = short
	}
	if len(f.Aliases) > 0 {
		help += "\n\nAliases: " + strings.Join(f.Aliases, ", ")
	}
	if f.URL != "" {
		help += "\n\nMore: " + f.URL
	}
	d.Help = &sarifMultiformat{Text: help}
	for _, c := range f.CWEs {
		d.Properties.Tags = append(d.Properties.Tags, "external/cwe/"+strings.ToLower(c))
	}
	if f.Kind == Weakness {
		d.Properties.Precision = "medium"
	}
	return d
}

func sarifResultFor(r *Report, f *Finding, idx int) sarifResult {
	res := sarifResult{
		RuleID:    f.ID,
		RuleIndex: idx,
		Level:     sarifLevel(f.Severity),
		Message:   sarifText{Text: resultMessage(f)},
		PartialFingerprints: map[string]string{
			"slipwayFinding/v1": fingerprint(f),
		},
		Properties: map[string]any{
			"severity": string(f.Severity),
			"scanners": f.Scanners,
		},
	}
	if f.Package != "" {
		res.Properties["package"] = f.Package
	}
	if f.Version != "" {
		res.Properties["version"] = f.Version
	}
	if f.FixedVersion != "" {
		res.Properties["fixedVersion"] = f.FixedVersion
	}
	if f.Reachability != "" {
		res.Properties["reachability"] = string(f.Reachability)
	}
	if f.Analysis != "" {
		res.Properties["reachabilityAnalysis"] = f.Analysis
	}
	if f.SeveritySource != "" {
		res.Properties["severitySource"] = f.SeveritySource
	}
	if len(f.Aliases) > 0 {
		res.Properties["aliases"] = f.Aliases
	}
	for _, l := range f.Locations {
		res.Locations = append(res.Locations, sarifLoc(r, l))
	}
	if len(res.Locations) == 0 {
		// GitHub refuses a result without a location; point at the image.
		res.Locations = append(res.Locations, sarifLoc(r, Location{Path: imageName(r), Image: true}))
	}
	if f.Waiver != nil && !f.Waiver.Expired {
		res.Suppressions = []sarifSuppression{{Kind: "external", Status: "accepted", Justification: f.Waiver.Reason}}
	}
	return res
}

func sarifLoc(r *Report, l Location) sarifLocation {
	loc := sarifLocation{PhysicalLocation: sarifPhysical{ArtifactLocation: sarifArtLoc{URI: uriPath(l.Path)}}}
	if !l.Image {
		loc.PhysicalLocation.ArtifactLocation.URIBaseID = srcRoot
	}
	if l.Line > 0 {
		loc.PhysicalLocation.Region = &sarifRegion{StartLine: l.Line, StartColumn: l.Column}
	}
	switch {
	case l.Symbol != "" && !l.Image:
		loc.Message = &sarifText{Text: "calls " + l.Symbol}
	case l.Symbol != "":
		loc.Message = &sarifText{Text: "links " + l.Symbol + " in image " + imageName(r) + platformSuffix(l)}
	case l.Image:
		loc.Message = &sarifText{Text: "in image " + imageName(r) + platformSuffix(l)}
	}
	return loc
}

// uriPath escapes a path for a relative URI reference.
func uriPath(p string) string {
	p = strings.TrimPrefix(p, "/")
	var b strings.Builder
	for _, c := range []byte(p) {
		if c == '/' || c == '-' || c == '.' || c == '_' || c == '~' || c == '@' || c == '+' ||
			('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

func imageName(r *Report) string {
	if r.Scan.Image != nil {
		return r.Scan.Image.Name
	}
	return "image"
}

func resultMessage(f *Finding) string {
	if t := clean(f.Title, 200); t != "" {
		return f.ID + ": " + messageBody(f, t)
	}
	return messageBody(f, f.ID)
}

// messageBody says what and where: the title, the package and how far the
// code reaches it.
func messageBody(f *Finding, title string) string {
	var b strings.Builder
	b.WriteString(title)
	if f.Package != "" && f.Kind == Vulnerability {
		fmt.Fprintf(&b, " in %s", f.Package)
		if f.Version != "" {
			fmt.Fprintf(&b, "@%s", f.Version)
		}
		if f.FixedVersion != "" {
			fmt.Fprintf(&b, " (fixed in %s)", f.FixedVersion)
		}
	}
	b.WriteString(".")
	if s := reachSentence(f); s != "" {
		b.WriteString(" " + s)
	}
	return b.String()
}

// reachSentence says how far the code reaches a vulnerability and which
// analysis says so.
func reachSentence(f *Finding) string {
	var s string
	switch f.Reachability {
	case Called:
		s = "Vulnerable code is called"
	case Linked:
		s = "A vulnerable function is linked into a binary whose source is not here"
	case Imported:
		s = "The package is imported but no vulnerable function is called"
	case Required:
		s = "The module is required but the package is not imported"
	default:
		return ""
	}
	switch f.Analysis {
	case SourceAnalysis:
		s += " (source analysis)"
	case BinaryAnalysis:
		s += " (binary analysis)"
	}
	return s + "."
}

func platformSuffix(l Location) string {
	if l.Platform == "" {
		return ""
	}
	return " (" + l.Platform + ")"
}

// fingerprint identifies a finding across runs whatever its line: the
// rule, the package and the first path.
func fingerprint(f *Finding) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s", f.ID, f.Package, f.Version)
	if len(f.Locations) > 0 {
		fmt.Fprintf(h, "\x00%s", f.Locations[0].Path)
		if f.Kind == Weakness {
			fmt.Fprintf(h, ":%d", f.Locations[0].Line)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

func sarifLevel(s Severity) string {
	switch s {
	case Critical, High:
		return "error"
	case Medium:
		return "warning"
	}
	return "note"
}

// securitySeverity is the CVSS-like score GitHub grades alerts by:
// critical above 9, high from 7, medium from 4, low below.
func securitySeverity(s Severity) string {
	switch s {
	case Critical:
		return "9.5"
	case High:
		return "8.0"
	case Medium:
		return "5.5"
	case Low:
		return "2.0"
	}
	return ""
}
