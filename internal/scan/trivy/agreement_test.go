//go:build goexperiment.jsonv2

package trivy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/slipwayci/slipway/internal/report"
	"github.com/slipwayci/slipway/internal/scan"
	"github.com/slipwayci/slipway/internal/scan/scantest"
)

// clis is the directory holding the trivy, govulncheck and gosec commands
// at the versions slipway links (bench/scan/install-clis.sh puts them in
// one), or skips the test.
func clis(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("SLIPWAY_SCAN_CLIS")
	if dir == "" {
		if os.Getenv("SLIPWAY_E2E") != "" {
			t.Fatal("SLIPWAY_SCAN_CLIS is not set; make test sets it after make test-deps installs the CLIs")
		}
		t.Skip("SLIPWAY_SCAN_CLIS is not set; make test installs the three commands and runs this")
	}
	for _, c := range []string{"trivy", "govulncheck", "gosec"} {
		if _, err := os.Stat(filepath.Join(dir, c)); err != nil {
			t.Fatalf("SLIPWAY_SCAN_CLIS: %v", err)
		}
	}
	return dir
}

func command(t testing.TB, dir, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = scantest.Environ()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && len(out) > 0) {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, stderr.Bytes())
	}
	return out
}

// TestAgreesWithCLIs checks that on the same image, source and databases,
// slipway scan finds what `trivy image`, `govulncheck` (source and
// binary) and `gosec` find, each seen through its own part of the merged
// findings.
func TestAgreesWithCLIs(t *testing.T) {
	bin := clis(t)
	p := newPipeline(t)
	if _, stderr, code := p.scan(t); code != 3 {
		t.Fatalf("slipway scan: exit %d\n%s", code, stderr)
	}
	rep := scantest.ReadReport(t, filepath.Join(p.dir, "dist", scan.FindingsFile))
	ours := func(scanner string, key func(*report.Finding) string) []string {
		var keys []string
		for _, f := range rep.Findings {
			if slices.Contains(f.Scanners, scanner) {
				keys = append(keys, key(f))
			}
		}
		slices.Sort(keys)
		return keys
	}

	t.Run("trivy", func(t *testing.T) {
		out := command(t, p.dir, filepath.Join(bin, "trivy"), "image", "--input", p.layout, "--cache-dir", p.cache,
			"--skip-db-update", "--offline-scan", "--scanners", "vuln", "--format", "json", "--quiet")
		var tr struct {
			Metadata struct{ OS struct{ Family, Name string } }
			Results  []struct {
				Target, Class   string
				Vulnerabilities []struct {
					VulnerabilityID, PkgName, InstalledVersion, FixedVersion, Severity string
				}
			}
		}
		if err := json.Unmarshal(out, &tr); err != nil {
			t.Fatalf("trivy's JSON: %v", err)
		}
		var theirs []string
		for _, r := range tr.Results {
			for _, v := range r.Vulnerabilities {
				ver, fixed := v.InstalledVersion, v.FixedVersion
				if r.Class == "lang-pkgs" {
					ver, fixed = semver(ver), semver(fixed)
				}
				theirs = append(theirs, strings.Join([]string{v.VulnerabilityID, v.PkgName, ver, fixed, v.Severity}, " "))
			}
		}
		slices.Sort(theirs)
		got := ours("trivy", func(f *report.Finding) string {
			return strings.Join([]string{f.ID, f.Package, f.Version, f.FixedVersion, string(f.Severity)}, " ")
		})
		if diff := cmp.Diff(theirs, got); diff != "" || len(got) == 0 {
			t.Errorf("trivy CLI (-) vs slipway (+):\n%s", diff)
		}
		if os := tr.Metadata.OS.Family + " " + tr.Metadata.OS.Name; os != rep.Scan.Image.Platforms[0].OS {
			t.Errorf("trivy CLI sees %q, slipway %q", os, rep.Scan.Image.Platforms[0].OS)
		}
	})

	t.Run("govulncheck", func(t *testing.T) {
		agreeWithGovulncheck(t, bin, p, rep)
	})

	t.Run("gosec", func(t *testing.T) {
		out := command(t, p.dir, filepath.Join(bin, "gosec"), "-fmt", "json", "-quiet", "./...")
		var gs struct {
			Issues []struct {
				RuleID   string `json:"rule_id"`
				Severity string `json:"severity"`
				File     string `json:"file"`
				Line     string `json:"line"`
				Column   string `json:"column"`
			}
		}
		if err := json.Unmarshal(out, &gs); err != nil {
			t.Fatalf("gosec's JSON: %v", err)
		}
		var theirs []string
		for _, is := range gs.Issues {
			rel, _ := filepath.Rel(p.dir, is.File)
			theirs = append(theirs, fmt.Sprintf("%s %s %s:%s:%s", is.RuleID, is.Severity, rel, is.Line, is.Column))
		}
		slices.Sort(theirs)
		got := ours("gosec", func(f *report.Finding) string {
			return fmt.Sprintf("%s %s %s", f.ID, f.Severity, f.Locations[0])
		})
		if diff := cmp.Diff(theirs, got); diff != "" || len(got) == 0 {
			t.Errorf("gosec CLI (-) vs slipway (+):\n%s", diff)
		}
	})
}

// govulncheckLevels runs the govulncheck CLI with args and returns each
// vulnerability's reachability in each module, as its JSON gives it: a
// function in the trace is called (in a binary, linked), a package
// imported, else required.
func govulncheckLevels(t *testing.T, bin, dir string, args ...string) map[string]report.Reachability {
	t.Helper()
	out := command(t, dir, filepath.Join(bin, "govulncheck"), append([]string{"-db", scantest.VulnDB(t), "-format", "json"}, args...)...)
	binary := slices.Contains(args, "binary")
	levels := map[string]report.Reachability{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var m struct {
			Finding *struct {
				OSV   string `json:"osv"`
				Trace []struct{ Module, Package, Function string }
			} `json:"finding"`
		}
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("govulncheck's JSON: %v", err)
		}
		if m.Finding == nil {
			continue
		}
		top := m.Finding.Trace[0]
		r := report.Required
		switch {
		case top.Function != "" && binary:
			r = report.Linked
		case top.Function != "":
			r = report.Called
		case top.Package != "":
			r = report.Imported
		}
		if k := m.Finding.OSV + " " + top.Module; r.Rank() > levels[k].Rank() {
			levels[k] = r
		}
	}
	return levels
}

// agreeWithGovulncheck compares, vulnerability by vulnerability, the
// reachability slipway gave with govulncheck's: with the source at hand,
// the source analysis decides for the binary built from it, so every
// verdict is the govulncheck CLI's on the source; with the binary alone
// (--dir none), every verdict is the CLI's binary mode's, a function in
// the binary being linked, not called.
func agreeWithGovulncheck(t *testing.T, bin string, p pipeline, withSource *report.Report) {
	ours := func(rep *report.Report, analysis string) []string {
		var keys []string
		for _, f := range rep.Findings {
			if !slices.Contains(f.Scanners, "govulncheck") {
				continue
			}
			goID := f.ID
			for _, a := range f.IDs() {
				if strings.HasPrefix(a, "GO-") {
					goID = a
				}
			}
			if f.Analysis != analysis {
				t.Errorf("%s: reachability by the %s analysis, want %s", goID, f.Analysis, analysis)
			}
			keys = append(keys, fmt.Sprintf("%s %s %s", goID, f.Package, f.Reachability))
		}
		slices.Sort(keys)
		return keys
	}
	theirs := func(levels map[string]report.Reachability) []string {
		var keys []string
		for k, r := range levels {
			keys = append(keys, k+" "+string(r))
		}
		slices.Sort(keys)
		return keys
	}
	got := ours(withSource, report.SourceAnalysis)
	if diff := cmp.Diff(theirs(govulncheckLevels(t, bin, p.dir, "./...")), got); diff != "" || len(got) == 0 {
		t.Errorf("with the source: govulncheck CLI on the source (-) vs slipway (+):\n%s", diff)
	}
	if _, stderr, code := p.scan(t, "--dir", "none", "--fail-on", "none"); code != 0 {
		t.Fatalf("slipway scan --dir none: exit %d\n%s", code, stderr)
	}
	alone := scantest.ReadReport(t, filepath.Join(p.dir, "dist", scan.FindingsFile))
	got = ours(alone, report.BinaryAnalysis)
	if diff := cmp.Diff(theirs(govulncheckLevels(t, bin, p.dir, "-mode", "binary", p.bin)), got); diff != "" || len(got) == 0 {
		t.Errorf("the binary alone: govulncheck CLI -mode binary (-) vs slipway (+):\n%s", diff)
	}
}

// TestAgreesWithGovulncheckOnTheNonCallingSample: where the two modes
// disagree (ParseAcceptLanguage linked, never called), slipway agrees with
// each where it should: the source's verdict with the source, the
// binary's without.
func TestAgreesWithGovulncheckOnTheNonCallingSample(t *testing.T) {
	bin := clis(t)
	p := newPipelineOf(t, "nocall")
	if _, stderr, code := p.scan(t, "--fail-on", "none"); code != 0 {
		t.Fatalf("slipway scan: exit %d\n%s", code, stderr)
	}
	agreeWithGovulncheck(t, bin, p, scantest.ReadReport(t, filepath.Join(p.dir, "dist", scan.FindingsFile)))
}
