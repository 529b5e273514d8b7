package report

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMerge(t *testing.T) {
	trivyText := &Finding{
		ID: "CVE-2021-38561", Aliases: []string{"GHSA-ppp9-7jff-5vj2"}, Kind: Vulnerability,
		Title: "golang: out-of-bounds read in golang.org/x/text/language leads to DoS", Description: "NVD text",
		Severity: High, Package: "golang.org/x/text", Version: "0.3.6", FixedVersion: "0.3.7", Ecosystem: "go",
		Locations: []Location{{Path: "app/server", Image: true}}, URL: "https://avd.aquasec.com/nvd/cve-2021-38561",
		Scanners: []string{"trivy"},
	}
	govulnSource := &Finding{
		ID: "GO-2021-0113", Aliases: []string{"CVE-2021-38561", "GHSA-ppp9-7jff-5vj2"}, Kind: Vulnerability,
		Description: "Go text", Severity: Unknown, Package: "golang.org/x/text", Version: "v0.3.6", FixedVersion: "v0.3.7",
		Ecosystem: "go", Reachability: Called,
		Locations: []Location{{Path: "main.go", Line: 21, Column: 29, Symbol: "golang.org/x/text/language.Parse"}},
		URL:       "https://pkg.go.dev/vuln/GO-2021-0113", Scanners: []string{"govulncheck"},
	}
	govulnBinary := &Finding{
		ID: "GO-2021-0113", Aliases: []string{"CVE-2021-38561", "GHSA-ppp9-7jff-5vj2"}, Kind: Vulnerability,
		Severity: Unknown, Package: "golang.org/x/text", Version: "v0.3.6", FixedVersion: "v0.3.7", Ecosystem: "go",
		Reachability: Imported, Locations: []Location{{Path: "app/server", Image: true}},
		URL: "https://pkg.go.dev/vuln/GO-2021-0113", Scanners: []string{"govulncheck"},
	}
	merged := &Finding{
		ID: "CVE-2021-38561", Aliases: []string{"GHSA-ppp9-7jff-5vj2", "GO-2021-0113"}, Kind: Vulnerability,
		Title: "golang: out-of-bounds read in golang.org/x/text/language leads to DoS", Description: "NVD text",
		Severity: High, Package: "golang.org/x/text", Version: "v0.3.6", FixedVersion: "v0.3.7", Ecosystem: "go",
		Reachability: Called,
		Locations: []Location{
			{Path: "main.go", Line: 21, Column: 29, Symbol: "golang.org/x/text/language.Parse"},
			{Path: "app/server", Image: true},
		},
		URL: "https://pkg.go.dev/vuln/GO-2021-0113", Scanners: []string{"govulncheck", "trivy"},
	}
	weak := func(line int, scanner string) *Finding {
		return &Finding{ID: "G404", Kind: Weakness, Severity: High, Locations: []Location{{Path: "main.go", Line: line}}, Scanners: []string{scanner}}
	}

	for _, tc := range []struct {
		name string
		in   []*Finding
		want []*Finding
	}{
		{
			name: "trivy and govulncheck on source and binary are one finding",
			in:   []*Finding{trivyText, govulnSource, govulnBinary},
			want: []*Finding{merged},
		},
		{
			name: "order of scanners does not matter",
			in:   []*Finding{govulnBinary, govulnSource, trivyText},
			want: []*Finding{merged},
		},
		{
			name: "one CVE in two packages is two findings",
			in: []*Finding{
				{ID: "CVE-2024-1", Kind: Vulnerability, Severity: Low, Package: "libssl3", Version: "3.0.1", Ecosystem: "debian", Scanners: []string{"trivy"}},
				{ID: "CVE-2024-1", Kind: Vulnerability, Severity: Medium, Package: "openssl", Version: "3.0.1", Ecosystem: "debian", Scanners: []string{"trivy"}},
			},
			want: []*Finding{
				{ID: "CVE-2024-1", Kind: Vulnerability, Severity: Medium, Package: "openssl", Version: "3.0.1", Ecosystem: "debian", Scanners: []string{"trivy"}},
				{ID: "CVE-2024-1", Kind: Vulnerability, Severity: Low, Package: "libssl3", Version: "3.0.1", Ecosystem: "debian", Scanners: []string{"trivy"}},
			},
		},
		{
			name: "a third finding joins two groups through its aliases",
			in: []*Finding{
				{ID: "GHSA-aaaa-bbbb-cccc", Kind: Vulnerability, Severity: Medium, Package: "m", Version: "v1.0.0", Ecosystem: "go", Scanners: []string{"trivy"}},
				{ID: "GO-2024-0001", Kind: Vulnerability, Package: "m", Version: "v1.0.0", Ecosystem: "go", Reachability: Required, Scanners: []string{"govulncheck"}},
				{ID: "CVE-2024-2", Aliases: []string{"GO-2024-0001", "GHSA-aaaa-bbbb-cccc"}, Kind: Vulnerability, Severity: Critical, Package: "m", Version: "1.0.0", Ecosystem: "go", Scanners: []string{"trivy"}},
			},
			want: []*Finding{
				{ID: "CVE-2024-2", Aliases: []string{"GHSA-aaaa-bbbb-cccc", "GO-2024-0001"}, Kind: Vulnerability, Severity: Critical, Package: "m", Version: "v1.0.0", Ecosystem: "go", Reachability: Required, Scanners: []string{"govulncheck", "trivy"}},
			},
		},
		{
			name: "a weakness at one place is one finding, at two places two",
			in:   []*Finding{weak(30, "gosec"), weak(30, "gosec"), weak(12, "gosec")},
			want: []*Finding{weak(12, "gosec"), weak(30, "gosec")},
		},
		{
			name: "sorted by severity, then called before unanalysed before imported",
			in: []*Finding{
				{ID: "CVE-3", Kind: Vulnerability, Severity: High, Package: "a", Reachability: Imported, Scanners: []string{"govulncheck"}},
				{ID: "CVE-4", Kind: Vulnerability, Severity: Low, Package: "b", Reachability: Called, Scanners: []string{"govulncheck"}},
				{ID: "CVE-5", Kind: Vulnerability, Severity: High, Package: "c", Scanners: []string{"trivy"}},
				{ID: "CVE-6", Kind: Vulnerability, Severity: High, Package: "d", Reachability: Called, Scanners: []string{"govulncheck"}},
			},
			want: []*Finding{
				{ID: "CVE-6", Kind: Vulnerability, Severity: High, Package: "d", Reachability: Called, Scanners: []string{"govulncheck"}},
				{ID: "CVE-5", Kind: Vulnerability, Severity: High, Package: "c", Scanners: []string{"trivy"}},
				{ID: "CVE-3", Kind: Vulnerability, Severity: High, Package: "a", Reachability: Imported, Scanners: []string{"govulncheck"}},
				{ID: "CVE-4", Kind: Vulnerability, Severity: Low, Package: "b", Reachability: Called, Scanners: []string{"govulncheck"}},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := cmp.Diff(nil, tc.in)
			got := Merge(tc.in)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Merge (-want +got):\n%s", diff)
			}
			if after := cmp.Diff(nil, tc.in); after != before {
				t.Errorf("Merge modified its input")
			}
		})
	}
}

func TestParseSeverity(t *testing.T) {
	for in, want := range map[string]Severity{"high": High, " Critical ": Critical, "UNKNOWN": Unknown, "low": Low} {
		if got, err := ParseSeverity(in); err != nil || got != want {
			t.Errorf("ParseSeverity(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "none", "severe"} {
		if _, err := ParseSeverity(in); err == nil {
			t.Errorf("ParseSeverity(%q) succeeded", in)
		}
	}
}
