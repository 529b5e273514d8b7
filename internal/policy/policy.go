// Package policy decides whether the pipeline may go on after a scan,
// whatever format the findings are shown in: it applies the waivers of
// .slipway/waivers.yaml and the --fail-on rule, and returns a verdict.
package policy

import (
	"fmt"
	"strings"
	"time"

	"github.com/slipwayci/slipway/internal/report"
	"github.com/slipwayci/slipway/internal/text"
)

// Rule is when a scan fails.
type Rule struct {
	// FailOn is the lowest severity that fails; "" fails on nothing.
	FailOn report.Severity
	// ReachableOnly lets findings pass that the analysis shows are not
	// reached (imported or required only). Findings that were not
	// analysed, such as OS packages, still count.
	ReachableOnly bool
	// Unknown is what a vulnerability that no database grades does; the
	// zero value is UnknownCalled.
	Unknown Unknown
}

// Unknown is the rule for vulnerabilities of unknown severity. The Go
// vulnerability database grades nothing, so most Go findings are
// UNKNOWN unless trivy's database knows them by an alias; ranked below
// low, a called one would pass any --fail-on but unknown, where
// govulncheck itself fails on it.
type Unknown string

const (
	// UnknownCalled fails, under any --fail-on, an ungraded
	// vulnerability that the code calls (or that is linked into a
	// binary with no source here) and that has a fixed version: there is
	// something to do about it. The default.
	UnknownCalled Unknown = "called"
	// UnknownNever ranks it below low: it fails only --fail-on unknown.
	UnknownNever Unknown = "never"
)

// ParseUnknown reads --fail-unknown.
func ParseUnknown(s string) (Unknown, error) {
	switch u := Unknown(strings.ToLower(strings.TrimSpace(s))); u {
	case UnknownCalled, UnknownNever:
		return u, nil
	}
	return "", fmt.Errorf("--fail-unknown: %q is not called or never", s)
}

// ParseFailOn reads --fail-on: a severity, or "none".
func ParseFailOn(s string) (report.Severity, error) {
	if strings.EqualFold(strings.TrimSpace(s), "none") || strings.TrimSpace(s) == "" {
		return "", nil
	}
	sev, err := report.ParseSeverity(s)
	if err != nil {
		return "", fmt.Errorf("--fail-on: %w, or none", err)
	}
	return sev, nil
}

// Target is what the scan looked at, for waiver scopes.
type Target struct {
	// Image is the scanned image's name (a reference or oci:DIR).
	Image string
}

// Evaluate applies the waivers to the findings (setting each matched
// finding's Waiver) and the rule to what is left, and returns the verdict.
// An expired waiver waives nothing and fails the scan on its own, so that
// it is renewed or removed rather than forgotten.
func Evaluate(findings []*report.Finding, waivers []Waiver, rule Rule, target Target, now time.Time) *report.Verdict {
	if rule.Unknown == "" {
		rule.Unknown = UnknownCalled
	}
	v := &report.Verdict{FailOn: "none", ReachableOnly: rule.ReachableOnly}
	if rule.FailOn != "" {
		v.FailOn = strings.ToLower(string(rule.FailOn))
		v.UnknownFails = string(rule.Unknown)
	}
	// One entry per failing finding: the reasons count what the counts
	// count. An ID that two findings share (one CVE in an OS package and
	// a Go module) is told apart by its package.
	var bySeverity, ungraded []*report.Finding
	uses := make([]report.WaiverUse, len(waivers))
	for i, w := range waivers {
		uses[i] = report.WaiverUse{ID: w.ID, Reason: w.Reason, Expires: w.Expires.String(), Expired: w.Expired(now)}
	}
	for _, f := range findings {
		f.Waiver = nil
		for i, w := range waivers {
			if !w.Matches(f, target) {
				continue
			}
			uses[i].Findings = append(uses[i].Findings, f.ID)
			if f.Waiver == nil || f.Waiver.Expired {
				f.Waiver = &report.Waiver{ID: w.ID, Reason: w.Reason, Expires: w.Expires.String(), Expired: uses[i].Expired}
			}
		}
		v.Counts.Add(f)
		switch {
		case fails(f, rule):
			bySeverity = append(bySeverity, f)
		case failsUngraded(f, rule):
			ungraded = append(ungraded, f)
		}
	}
	if n := len(bySeverity); n > 0 {
		reach := ""
		if rule.ReachableOnly {
			reach = " not shown unreachable"
		}
		names := names(bySeverity, findings)
		v.Reasons = append(v.Reasons, fmt.Sprintf("%d %s at or above %s%s: %s",
			n, text.Plural(n, "finding"), v.FailOn, reach, list(names, 10)))
		v.Failing = append(v.Failing, names...)
	}
	if n := len(ungraded); n > 0 {
		names := names(ungraded, findings)
		v.Reasons = append(v.Reasons, fmt.Sprintf("%d %s of unknown severity, reachable and fixed upstream (--fail-unknown %s): %s",
			n, text.Plural(n, "vulnerability", "vulnerabilities"), rule.Unknown, list(names, 10)))
		v.Failing = append(v.Failing, names...)
	}
	for _, u := range uses {
		if u.Expired {
			v.Reasons = append(v.Reasons, fmt.Sprintf("waiver %s expired on %s", u.ID, u.Expires))
		}
	}
	v.Waivers = uses
	v.Pass = len(v.Reasons) == 0
	return v
}

func fails(f *report.Finding, rule Rule) bool {
	switch {
	case rule.FailOn == "", f.Waived():
		return false
	case rule.ReachableOnly && f.Reachability.Unreachable():
		return false
	}
	return f.Severity.Rank() >= rule.FailOn.Rank()
}

// failsUngraded is the Unknown rule: a vulnerability nobody graded that
// is reached, with a fix to take.
func failsUngraded(f *report.Finding, rule Rule) bool {
	return rule.FailOn != "" && rule.Unknown == UnknownCalled && !f.Waived() &&
		f.Kind == report.Vulnerability && f.Severity == report.Unknown && f.FixedVersion != "" &&
		(f.Reachability == report.Called || f.Reachability == report.Linked)
}

// names names each finding by its ID and, where another finding has the
// same ID, by its package (a vulnerability) or place (a weakness).
func names(fs, all []*report.Finding) []string {
	ids := map[string]int{}
	for _, f := range all {
		ids[f.ID]++
	}
	out := make([]string, 0, len(fs))
	for _, f := range fs {
		switch {
		case ids[f.ID] < 2:
			out = append(out, f.ID)
		case f.Kind == report.Weakness && len(f.Locations) > 0:
			out = append(out, f.ID+" at "+f.Locations[0].String())
		case f.Package != "":
			out = append(out, f.ID+" in "+f.Package)
		default:
			out = append(out, f.ID)
		}
	}
	return out
}

func list(ids []string, max int) string {
	if len(ids) <= max {
		return strings.Join(ids, ", ")
	}
	return strings.Join(ids[:max], ", ") + fmt.Sprintf(" and %d more", len(ids)-max)
}
