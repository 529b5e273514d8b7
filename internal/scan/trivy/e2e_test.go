//go:build goexperiment.jsonv2

package trivy

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/report"
	"github.com/slipwayci/slipway/internal/scan"
	"github.com/slipwayci/slipway/internal/scan/scantest"
	"github.com/slipwayci/slipway/internal/testkit"
)

var update = flag.Bool("update", false, "rewrite internal/report/testdata/vulnerable.json from a real scan")

// pipeline is the sample app committed in a repository, its image in
// dist/image, and the fixture databases: what the scan step sees in CI.
type pipeline struct {
	dir, cache, bin, layout string
}

func newPipeline(t *testing.T) pipeline {
	t.Helper()
	return newPipelineOf(t, "vulnerable")
}

// newPipelineOf is the pipeline of testdata/apps/APP, its binary at
// app/APP in a Debian 12 image.
func newPipelineOf(t *testing.T, app string) pipeline {
	t.Helper()
	p := pipeline{dir: testkit.SampleRepo(t, app, t.TempDir()), cache: fixtureDB(t)}
	p.bin = scantest.Build(t, scantest.AppDir(t, app), filepath.Join(t.TempDir(), app), "amd64")
	p.layout = filepath.Join(p.dir, "dist", "image")
	files := scantest.ImageFiles(t, p.bin)
	if app != "vulnerable" {
		files["app/"+app] = files["app/vulnerable"]
		delete(files, "app/vulnerable")
	}
	scantest.Layout(t, p.layout, scantest.Image(t, files))
	return p
}

func (p pipeline) scan(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	env := cli.Env{
		Args:    append([]string{"--offline", "--cache-dir", p.cache, "--vulndb", scantest.VulnDB(t)}, args...),
		Environ: scantest.Environ(), Stdout: &out, Stderr: &errb, Dir: p.dir,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	code = cli.ExitCode(&errb, "slipway scan", scan.Main(ctx, env))
	return out.String(), errb.String(), code
}

// TestPipeline runs slipway scan with the real trivy, govulncheck and gosec
// on the sample app and its image, offline.
func TestPipeline(t *testing.T) {
	p := newPipeline(t)
	stdout, stderr, code := p.scan(t, "--format", "text")
	if code != cli.ExitPolicy {
		t.Fatalf("exit %d, want 3\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	rep := scantest.ReadReport(t, filepath.Join(p.dir, "dist", scan.FindingsFile))
	got := scantest.Lines(rep.Findings)
	// One finding per vulnerability, whichever scanners saw it; trivy's
	// severities, the source analysis's reachability (the binary in the
	// image is built from the source).
	want := []string{
		"HIGH | CVE-2021-38561 | GHSA-ppp9-7jff-5vj2,GO-2021-0113 | golang.org/x/text | v0.3.6 | v0.3.7 | called (source) | main.go:22:28 image:/app/vulnerable | govulncheck+trivy",
		"HIGH | G404 |  | example.com/vulnerable |  |  |  | main.go:32:38 | gosec",
		"HIGH | CVE-2022-32149 | GHSA-69ch-w2m2-3vjp,GO-2022-1059 | golang.org/x/text | v0.3.6 | v0.3.8 | imported (source) | go.mod:6 image:/app/vulnerable | govulncheck+trivy",
		"MEDIUM | G401 |  | example.com/vulnerable |  |  |  | main.go:31:9 | gosec",
		"MEDIUM | G501 |  | example.com/vulnerable |  |  |  | main.go:12:2 | gosec",
		"MEDIUM | CVE-2019-11254 | GHSA-wxc4-f4m6-wwqv,GO-2020-0036 | gopkg.in/yaml.v2 | v2.2.7 | v2.2.8 | imported (source) | go.mod:7 image:/app/vulnerable | govulncheck+trivy",
		"LOW | CVE-2019-18276 |  | bash | 5.2.15-2+b2 |  |  | image:/var/lib/dpkg/status | trivy",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	if !strings.Contains(stderr, "policy refuses: 3 findings at or above high: CVE-2021-38561, G404, CVE-2022-32149") {
		t.Errorf("stderr:\n%s", stderr)
	}

	// Reachable only: the imported x/text vulnerability no longer fails.
	if _, stderr, code := p.scan(t, "--reachable-only"); code != 3 || !strings.Contains(stderr, "2 findings at or above high not shown unreachable: CVE-2021-38561, G404") {
		t.Errorf("--reachable-only: exit %d\n%s", code, stderr)
	}

	if *update {
		if err := os.WriteFile(filepath.Join(testkit.RepoRoot(t), "internal", "report", "testdata", "vulnerable.json"), normalize(t, rep), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCallingSampleFails: the calling sample, which calls language.Parse
// (GO-2021-0113, fixed in v0.3.7), fails --fail-on high because of that
// call, whichever scanners run: with all three (trivy grades it HIGH);
// with govulncheck and gosec alone and trivy's database in the cache
// (graded from it by its CVE alias); and with govulncheck and gosec alone
// and no database at all (ungraded, called and fixed upstream).
func TestCallingSampleFails(t *testing.T) {
	p := newPipeline(t)
	for _, tc := range []struct {
		name     string
		args     []string
		severity report.Severity
		source   string
		reason   string
	}{
		{"all three scanners", nil, report.High, "ghsa", "findings at or above high: CVE-2021-38561"},
		{"govulncheck and gosec, trivy's database at hand", []string{"--scanners", "govulncheck,gosec"}, report.High, "ghsa", "findings at or above high: CVE-2021-38561"},
		{"govulncheck and gosec, no database", []string{"--scanners", "govulncheck,gosec", "--cache-dir", t.TempDir()}, report.Unknown, "",
			"1 vulnerability of unknown severity, reachable and fixed upstream (--fail-unknown called): CVE-2021-38561"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := p.scan(t, append(slices.Clone(tc.args), "--fail-on", "high")...)
			if code != cli.ExitPolicy || !strings.Contains(stderr, tc.reason) {
				t.Errorf("exit %d, want 3 with %q\n%s", code, tc.reason, stderr)
			}
			rep := scantest.ReadReport(t, filepath.Join(p.dir, "dist", scan.FindingsFile))
			i := slices.IndexFunc(rep.Findings, func(f *report.Finding) bool { return f.ID == "CVE-2021-38561" })
			if i < 0 {
				t.Fatalf("no CVE-2021-38561 in\n%s", strings.Join(scantest.Lines(rep.Findings), "\n"))
			}
			f := rep.Findings[i]
			if f.Severity != tc.severity || f.SeveritySource != tc.source || f.Reachability != report.Called || f.Analysis != report.SourceAnalysis {
				t.Errorf("CVE-2021-38561: %s from %q, %s by %s; want %s from %q, called by source", f.Severity, f.SeveritySource, f.Reachability, f.Analysis, tc.severity, tc.source)
			}
			if !slices.Contains(rep.Verdict.Failing, "CVE-2021-38561") {
				t.Errorf("failing %v lacks CVE-2021-38561", rep.Verdict.Failing)
			}
		})
	}
}

// TestNonCallingSample: with trivy, the non-calling sample's
// ParseAcceptLanguage stays imported (the source analysis's verdict),
// however much of x/text the binary links, so --reachable-only lets it
// through; without the source, its binary says linked.
func TestNonCallingSample(t *testing.T) {
	p := newPipelineOf(t, "nocall")
	_, stderr, code := p.scan(t, "--reachable-only")
	if code != 0 {
		t.Errorf("--reachable-only: exit %d, want 0\n%s", code, stderr)
	}
	rep := scantest.ReadReport(t, filepath.Join(p.dir, "dist", scan.FindingsFile))
	want := []string{"HIGH | CVE-2022-32149 | GHSA-69ch-w2m2-3vjp,GO-2022-1059 | golang.org/x/text | v0.3.7 | v0.3.8 | imported (source) | go.mod:5 image:/app/nocall | govulncheck+trivy"}
	if diff := cmp.Diff(want, goFindings(rep)); diff != "" {
		t.Errorf("with the source (-want +got):\n%s", diff)
	}
	if _, stderr, code := p.scan(t, "--reachable-only", "--dir", "none"); code != cli.ExitPolicy {
		t.Errorf("without the source: exit %d, want 3: linked is not shown unreachable\n%s", code, stderr)
	}
	rep = scantest.ReadReport(t, filepath.Join(p.dir, "dist", scan.FindingsFile))
	want = []string{"HIGH | CVE-2022-32149 | GHSA-69ch-w2m2-3vjp,GO-2022-1059 | golang.org/x/text | v0.3.7 | v0.3.8 | linked (binary) | image:/app/nocall | govulncheck+trivy"}
	if diff := cmp.Diff(want, goFindings(rep)); diff != "" {
		t.Errorf("without the source (-want +got):\n%s", diff)
	}
}

func goFindings(rep *report.Report) []string {
	var fs []*report.Finding
	for _, f := range rep.Findings {
		if f.Ecosystem == "go" {
			fs = append(fs, f)
		}
	}
	return scantest.Lines(fs)
}

// TestMissingDatabaseFailsAtOnce: offline with no database in the cache,
// the scan fails before any analysis, within a second, in one line naming
// trivy's database, where it was looked for and the flags that fix it.
func TestMissingDatabaseFailsAtOnce(t *testing.T) {
	p := newPipeline(t)
	empty := t.TempDir()
	start := time.Now()
	_, stderr, code := p.scan(t, "--cache-dir", empty)
	took := time.Since(start)
	if code != cli.ExitUsage || strings.Count(stderr, "\n") != 1 {
		t.Errorf("exit %d, stderr %q; want 2 and one line", code, stderr)
	}
	for _, w := range []string{"trivy's database", filepath.Join(empty, "db", "trivy.db"), "without --offline", "--cache-dir"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr %q lacks %q", stderr, w)
		}
	}
	if took > time.Second {
		t.Errorf("took %s to fail; want under a second", took)
	}
}

// normalize fixes what changes from run to run (times, the temporary
// layout path, slipway's version) so a real scan can serve as a fixture.
func normalize(t *testing.T, rep *report.Report) []byte {
	t.Helper()
	rep.Scan.Slipway = "v0.4.0"
	rep.Scan.Commit = "4f2c1e9a0b7d3c5e8f1a2b4c6d8e0f1a3b5c7d9e"
	rep.Scan.Started, rep.Scan.Finished = "2026-11-02T10:00:00Z", "2026-11-02T10:00:09Z"
	rep.Scan.Image.Name = "oci:dist/image"
	if rep.Scan.Grades != nil {
		rep.Scan.Grades.Source = "offline, ~/.cache/trivy/db"
	}
	for _, s := range rep.Scanners {
		if s.DB != nil && strings.HasPrefix(s.DB.Source, "offline, ") {
			s.DB.Source = "offline, ~/.cache/trivy/db"
		}
		if s.DB != nil && strings.HasPrefix(s.DB.Source, "file://") {
			s.DB.Source = "file:///work/testdata/scan/vulndb"
		}
	}
	var buf bytes.Buffer
	if err := report.Send(rep, report.NewJSONHandler(&buf)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
