package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/slipwayci/slipway/internal/report"
)

var now = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

func findings() []*report.Finding {
	return []*report.Finding{
		{ID: "CVE-2021-38561", Aliases: []string{"GO-2021-0113"}, Kind: report.Vulnerability, Severity: report.High,
			Package: "golang.org/x/text", Reachability: report.Called,
			Locations: []report.Location{{Path: "app/main.go", Line: 21}, {Path: "app/server", Image: true}}},
		{ID: "CVE-2022-32149", Aliases: []string{"GO-2022-1059"}, Kind: report.Vulnerability, Severity: report.High,
			Package: "golang.org/x/text", Reachability: report.Imported,
			Locations: []report.Location{{Path: "app/go.mod", Line: 6}, {Path: "app/server", Image: true}}},
		{ID: "CVE-2019-18276", Kind: report.Vulnerability, Severity: report.Critical, Package: "bash",
			Locations: []report.Location{{Path: "var/lib/dpkg/status", Image: true}}},
		{ID: "G404", Kind: report.Weakness, Severity: report.High, Package: "example.com/app/internal/jitter",
			Locations: []report.Location{{Path: "internal/jitter/jitter.go", Line: 9}}},
		{ID: "GO-2024-9999", Kind: report.Vulnerability, Severity: report.Unknown, Package: "example.com/lib",
			Reachability: report.Called, Locations: []report.Location{{Path: "app/main.go", Line: 40}}},
	}
}

func TestEvaluate(t *testing.T) {
	day := func(s string) Date { d, _ := time.Parse(time.DateOnly, s); return Date{d} }
	for _, tc := range []struct {
		name    string
		rule    Rule
		waivers []Waiver
		pass    bool
		failing []string
		waived  []string
		reasons []string
	}{
		{
			name:    "fail on high counts high and critical",
			rule:    Rule{FailOn: report.High},
			failing: []string{"CVE-2021-38561", "CVE-2022-32149", "CVE-2019-18276", "G404"},
			reasons: []string{"4 findings at or above high: CVE-2021-38561, CVE-2022-32149, CVE-2019-18276, G404"},
		},
		{
			name:    "critical only",
			rule:    Rule{FailOn: report.Critical},
			failing: []string{"CVE-2019-18276"},
			reasons: []string{"1 finding at or above critical: CVE-2019-18276"},
		},
		{
			name: "none passes everything",
			rule: Rule{},
			pass: true,
		},
		{
			name:    "unknown fails on everything, ungraded Go findings included",
			rule:    Rule{FailOn: report.Unknown},
			failing: []string{"CVE-2021-38561", "CVE-2022-32149", "CVE-2019-18276", "G404", "GO-2024-9999"},
			reasons: []string{"5 findings at or above unknown: CVE-2021-38561, CVE-2022-32149, CVE-2019-18276, G404, GO-2024-9999"},
		},
		{
			name:    "reachable only lets imported pass, not unanalysed OS packages or code",
			rule:    Rule{FailOn: report.High, ReachableOnly: true},
			failing: []string{"CVE-2021-38561", "CVE-2019-18276", "G404"},
			reasons: []string{"3 findings at or above high not shown unreachable: CVE-2021-38561, CVE-2019-18276, G404"},
		},
		{
			name: "waivers by alias, package and path scope",
			rule: Rule{FailOn: report.High},
			waivers: []Waiver{
				{ID: "GO-2021-0113", Scope: Scope{Package: "golang.org/x/*"}, Reason: "input is a constant"},
				{ID: "cve-2022-32149", Reason: "not called", Expires: day("2026-11-02")},
				{ID: "G404", Scope: Scope{Path: "internal/jitter/**"}, Reason: "jitter needs no crypto"},
				{ID: "CVE-2019-18276", Scope: Scope{Image: "ghcr.io/acme/app"}, Reason: "no setuid binaries"},
			},
			pass:    true,
			waived:  []string{"CVE-2021-38561", "CVE-2022-32149", "CVE-2019-18276", "G404"},
			failing: nil,
		},
		{
			name: "a scope that does not match waives nothing",
			rule: Rule{FailOn: report.Critical},
			waivers: []Waiver{
				{ID: "CVE-2019-18276", Scope: Scope{Image: "ghcr.io/other/*"}, Reason: "r"},
				{ID: "G404", Scope: Scope{Path: "cmd/**"}, Reason: "r"},
				{ID: "CVE-2021-38561", Scope: Scope{Package: "golang.org/x/net"}, Reason: "r"},
			},
			failing: []string{"CVE-2019-18276"},
			reasons: []string{"1 finding at or above critical: CVE-2019-18276"},
		},
		{
			name: "an expired waiver waives nothing and fails even with nothing to fail on",
			rule: Rule{},
			waivers: []Waiver{
				{ID: "CVE-2022-32149", Reason: "not called", Expires: day("2026-11-01")},
			},
			reasons: []string{"waiver CVE-2022-32149 expired on 2026-11-01"},
		},
		{
			name: "an expired waiver that matches nothing still fails",
			rule: Rule{FailOn: report.Critical},
			waivers: []Waiver{
				{ID: "CVE-2019-18276", Scope: Scope{Image: "*"}, Reason: "r"},
				{ID: "CVE-1999-0001", Reason: "long gone", Expires: day("2025-01-01")},
			},
			waived:  []string{"CVE-2019-18276"},
			reasons: []string{"waiver CVE-1999-0001 expired on 2025-01-01"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := findings()
			v := Evaluate(fs, tc.waivers, tc.rule, Target{Image: "ghcr.io/acme/app:1.2.3"}, now)
			if v.Pass != tc.pass {
				t.Errorf("Pass = %v, want %v (reasons %q)", v.Pass, tc.pass, v.Reasons)
			}
			if diff := cmp.Diff(tc.failing, v.Failing); diff != "" {
				t.Errorf("Failing (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.reasons, v.Reasons); diff != "" {
				t.Errorf("Reasons (-want +got):\n%s", diff)
			}
			var waived []string
			for _, f := range fs {
				if f.Waived() {
					waived = append(waived, f.ID)
				}
			}
			if diff := cmp.Diff(tc.waived, waived); diff != "" {
				t.Errorf("waived (-want +got):\n%s", diff)
			}
			if got := v.Counts.Waived + v.Counts.Total(); got != len(fs) {
				t.Errorf("counts add up to %d, want %d", got, len(fs))
			}
			if len(v.Waivers) != len(tc.waivers) {
				t.Errorf("verdict lists %d waivers, want %d", len(v.Waivers), len(tc.waivers))
			}
		})
	}
}

func TestParseFailOn(t *testing.T) {
	for in, want := range map[string]report.Severity{"none": "", "": "", "HIGH": report.High, "low": report.Low} {
		if got, err := ParseFailOn(in); err != nil || got != want {
			t.Errorf("ParseFailOn(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseFailOn("urgent"); err == nil || !strings.Contains(err.Error(), "--fail-on") {
		t.Errorf("ParseFailOn(urgent) = %v", err)
	}
}

func TestParseWaivers(t *testing.T) {
	good := `
waivers:
  - id: GO-2022-1059
    scope:
      package: golang.org/x/text
      path: app/**
    reason: ParseAcceptLanguage is never called
    expires: 2027-03-31
  - id: G404
    reason: "jitter"
`
	ws, err := ParseWaivers([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	want := []Waiver{
		{ID: "GO-2022-1059", Scope: Scope{Package: "golang.org/x/text", Path: "app/**"}, Reason: "ParseAcceptLanguage is never called",
			Expires: Date{time.Date(2027, 3, 31, 0, 0, 0, 0, time.UTC)}, Line: 3},
		{ID: "G404", Reason: "jitter", Line: 9},
	}
	if diff := cmp.Diff(want, ws); diff != "" {
		t.Errorf("ParseWaivers (-want +got):\n%s", diff)
	}
	if ws, err := ParseWaivers(nil); err != nil || len(ws) != 0 {
		t.Errorf("empty file = %v, %v", ws, err)
	}

	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown top-level key", "waiver:\n  - id: X\n", "field waiver not found"},
		{"unknown waiver key", "waivers:\n  - id: X\n    reason: r\n    expiry: 2027-01-01\n", "line 4: field expiry not found"},
		{"unknown scope key", "waivers:\n  - id: X\n    reason: r\n    scope:\n      file: a.go\n", "line 5: field file not found"},
		{"no reason", "waivers:\n  - id: CVE-2024-1\n    expires: 2027-01-01\n", "line 2: waiver CVE-2024-1 has no reason"},
		{"blank reason", "waivers:\n  - id: CVE-2024-1\n    reason: '  '\n", "has no reason"},
		{"no id", "waivers:\n  - reason: because\n", "line 2: waiver has no id"},
		{"bad date", "waivers:\n  - id: X\n    reason: r\n    expires: next week\n", `line 4: expires "next week" is not a date`},
		{"datetime is not a date", "waivers:\n  - id: X\n    reason: r\n    expires: 2027-01-01T00:00:00Z\n", "not a date written YYYY-MM-DD"},
		{"the zero date", "waivers:\n  - id: X\n    reason: r\n    expires: 0001-01-01\n", `line 4: expires "0001-01-01" is before 1970`},
		{"bad pattern", "waivers:\n  - id: X\n    reason: r\n    scope:\n      path: 'a[/b'\n", `bad pattern "a[/b"`},
		{"not a list", "waivers: yes\n", "cannot unmarshal"},
		{"a value with a line break", "waivers: \"a\\nb\"\n", "cannot unmarshal !!str `a\\nb`"},
		{"id of two words", "waivers:\n  - id: \"CVE-2024-1\\nCVE-2024-2\"\n    reason: r\n", `line 2: waiver id "CVE-2024-1\nCVE-2024-2" is not one word`},
		{"empty waiver", "waivers:\n  - id: X\n    reason: r\n  -\n  - id: Y\n", "line 4: empty waiver"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseWaivers([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want it to contain %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "policy.Waiver") {
				t.Errorf("error = %v, names a Go type", err)
			}
		})
	}
}

func TestLoadWaivers(t *testing.T) {
	dir := t.TempDir()
	if ws, err := LoadWaivers(filepath.Join(dir, "missing.yaml"), false); err != nil || ws != nil {
		t.Errorf("missing optional file = %v, %v", ws, err)
	}
	if _, err := LoadWaivers(filepath.Join(dir, "missing.yaml"), true); err == nil {
		t.Error("missing required file: no error")
	}
	file := filepath.Join(dir, "waivers.yaml")
	os.WriteFile(file, []byte("waivers:\n  - id: X\n    reasn: typo\n"), 0o644)
	if _, err := LoadWaivers(file, false); err == nil || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), "reasn") {
		t.Errorf("bad file error = %v, want the file and the key", err)
	}
}

func TestExpiryIsInclusive(t *testing.T) {
	w := Waiver{Expires: Date{time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)}}
	if w.Expired(time.Date(2026, 11, 2, 23, 59, 59, 0, time.UTC)) {
		t.Error("expired during its last day")
	}
	if !w.Expired(time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)) {
		t.Error("not expired the day after")
	}
	if (Waiver{}).Expired(now) {
		t.Error("a waiver without expiry expired")
	}
}

// TestUnknownSeverity: a Go vulnerability nobody grades fails by default
// when the code reaches it and a fix exists, as govulncheck fails on it;
// --fail-unknown never ranks it below low.
func TestUnknownSeverity(t *testing.T) {
	ungraded := func(id string, r report.Reachability, fixed string) *report.Finding {
		return &report.Finding{ID: id, Kind: report.Vulnerability, Severity: report.Unknown, Package: "golang.org/x/text",
			FixedVersion: fixed, Reachability: r, Ecosystem: "go"}
	}
	all := func() []*report.Finding {
		return []*report.Finding{
			ungraded("GO-2021-0113", report.Called, "v0.3.7"),
			ungraded("GO-2023-2102", report.Linked, "v0.17.0"),
			ungraded("GO-2022-1059", report.Imported, "v0.3.8"),
			ungraded("GO-2020-0036", report.Required, "v2.2.8"),
			ungraded("GO-2024-9999", report.Called, ""), // no fix to take
		}
	}
	for _, tc := range []struct {
		name    string
		rule    Rule
		waivers []Waiver
		failing []string
		reasons []string
	}{
		{
			name:    "by default a reached one with a fix fails whatever --fail-on",
			rule:    Rule{FailOn: report.Critical},
			failing: []string{"GO-2021-0113", "GO-2023-2102"},
			reasons: []string{"2 vulnerabilities of unknown severity, reachable and fixed upstream (--fail-unknown called): GO-2021-0113, GO-2023-2102"},
		},
		{
			name:    "unless waived",
			rule:    Rule{FailOn: report.High},
			waivers: []Waiver{{ID: "GO-2021-0113", Reason: "input is trusted"}},
			failing: []string{"GO-2023-2102"},
			reasons: []string{"1 vulnerability of unknown severity, reachable and fixed upstream (--fail-unknown called): GO-2023-2102"},
		},
		{
			name: "never ranks it below low",
			rule: Rule{FailOn: report.Low, Unknown: UnknownNever},
		},
		{
			name:    "--fail-on unknown fails every one, counted once",
			rule:    Rule{FailOn: report.Unknown},
			failing: []string{"GO-2021-0113", "GO-2023-2102", "GO-2022-1059", "GO-2020-0036", "GO-2024-9999"},
			reasons: []string{"5 findings at or above unknown: GO-2021-0113, GO-2023-2102, GO-2022-1059, GO-2020-0036, GO-2024-9999"},
		},
		{
			name: "--fail-on none fails nothing",
			rule: Rule{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := Evaluate(all(), tc.waivers, tc.rule, Target{}, now)
			if diff := cmp.Diff(tc.failing, v.Failing); diff != "" {
				t.Errorf("Failing (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.reasons, v.Reasons); diff != "" {
				t.Errorf("Reasons (-want +got):\n%s", diff)
			}
			if v.Pass != (len(tc.failing) == 0) {
				t.Errorf("Pass = %v with failing %v", v.Pass, v.Failing)
			}
		})
	}
}

// TestFailingCountsFindings: the verdict counts findings, as the totals
// do, even where two share an ID.
func TestFailingCountsFindings(t *testing.T) {
	fs := []*report.Finding{
		{ID: "CVE-2024-0001", Kind: report.Vulnerability, Severity: report.High, Package: "openssl", Ecosystem: "debian"},
		{ID: "CVE-2024-0001", Kind: report.Vulnerability, Severity: report.High, Package: "github.com/acme/tls", Ecosystem: "go"},
		{ID: "G404", Kind: report.Weakness, Severity: report.High, Locations: []report.Location{{Path: "a.go", Line: 1}}},
		{ID: "G404", Kind: report.Weakness, Severity: report.High, Locations: []report.Location{{Path: "b.go", Line: 2}}},
	}
	v := Evaluate(fs, nil, Rule{FailOn: report.High}, Target{}, now)
	want := []string{"4 findings at or above high: CVE-2024-0001 in openssl, CVE-2024-0001 in github.com/acme/tls, G404 at a.go:1, G404 at b.go:2"}
	if diff := cmp.Diff(want, v.Reasons); diff != "" {
		t.Errorf("Reasons (-want +got):\n%s", diff)
	}
	if len(v.Failing) != v.Counts.High {
		t.Errorf("%d failing, %d high", len(v.Failing), v.Counts.High)
	}
}
