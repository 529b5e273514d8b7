// Package policy decides whether the pipeline may go on after a scan,
// whatever format the findings are shown in: it applies the waivers of
// .slipway/waivers.yaml and the --fail-on rule, and returns a verdict.
package policy

import (
	"fmt"
	"slices"
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
	v := &report.Verdict{FailOn: "none", ReachableOnly: rule.ReachableOnly}
	if rule.FailOn != "" {
		v.FailOn = strings.ToLower(string(rule.FailOn))
	}
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
		if fails(f, rule) && !slices.Contains(v.Failing, f.ID) {
			v.Failing = append(v.Failing, f.ID)
		}
	}
	if n := len(v.Failing); n > 0 {
		reach := ""
		if rule.ReachableOnly {
			reach = " not shown unreachable"
		}
		v.Reasons = append(v.Reasons, fmt.Sprintf("%d %s at or above %s%s: %s",
			n, text.Plural(n, "finding"), v.FailOn, reach, list(v.Failing, 10)))
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

func list(ids []string, max int) string {
	if len(ids) <= max {
		return strings.Join(ids, ", ")
	}
	return strings.Join(ids[:max], ", ") + fmt.Sprintf(" and %d more", len(ids)-max)
}
