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
		if os := tr.Metadata.OS.Family + " " + tr.Metadata.OS.Name; os != rep.Scan.Image.OS {
			t.Errorf("trivy CLI sees %q, slipway %q", os, rep.Scan.Image.OS)
		}
	})

	t.Run("govulncheck", func(t *testing.T) {
		db := scantest.VulnDB(t)
		levels := map[string]report.Reachability{}
		note := func(out []byte) {
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
				case top.Function != "":
					r = report.Called
				case top.Package != "":
					r = report.Imported
				}
				if k := m.Finding.OSV + " " + top.Module; r.Rank() > levels[k].Rank() {
					levels[k] = r
				}
			}
		}
		gv := filepath.Join(bin, "govulncheck")
		note(command(t, p.dir, gv, "-db", db, "-format", "json", "./..."))
		note(command(t, p.dir, gv, "-db", db, "-format", "json", "-mode", "binary", p.bin))
		var theirs []string
		for k, r := range levels {
			theirs = append(theirs, k+" "+string(r))
		}
		slices.Sort(theirs)
		got := ours("govulncheck", func(f *report.Finding) string {
			goID := f.ID
			for _, a := range f.IDs() {
				if strings.HasPrefix(a, "GO-") {
					goID = a
				}
			}
			return fmt.Sprintf("%s %s %s", goID, f.Package, f.Reachability)
		})
		if diff := cmp.Diff(theirs, got); diff != "" || len(got) == 0 {
			t.Errorf("govulncheck CLI (-) vs slipway (+):\n%s", diff)
		}
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
