//go:build goexperiment.jsonv2

package trivy

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
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
	p := pipeline{dir: testkit.SampleRepo(t, "vulnerable", t.TempDir()), cache: fixtureDB(t)}
	p.bin = scantest.BuildApp(t, t.TempDir())
	p.layout = filepath.Join(p.dir, "dist", "image")
	scantest.Layout(t, p.layout, scantest.Image(t, scantest.ImageFiles(t, p.bin)))
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
	// severities, govulncheck's reachability.
	want := []string{
		"HIGH | CVE-2021-38561 | GHSA-ppp9-7jff-5vj2,GO-2021-0113 | golang.org/x/text | v0.3.6 | v0.3.7 | called | main.go:22:28 image:/app/vulnerable | govulncheck+trivy",
		"HIGH | G404 |  | example.com/vulnerable |  |  |  | main.go:32:38 | gosec",
		"HIGH | CVE-2022-32149 | GHSA-69ch-w2m2-3vjp,GO-2022-1059 | golang.org/x/text | v0.3.6 | v0.3.8 | imported | go.mod:6 image:/app/vulnerable | govulncheck+trivy",
		"MEDIUM | G401 |  | example.com/vulnerable |  |  |  | main.go:31:9 | gosec",
		"MEDIUM | G501 |  | example.com/vulnerable |  |  |  | main.go:12:2 | gosec",
		"MEDIUM | CVE-2019-11254 | GHSA-wxc4-f4m6-wwqv,GO-2020-0036 | gopkg.in/yaml.v2 | v2.2.7 | v2.2.8 | imported | go.mod:7 image:/app/vulnerable | govulncheck+trivy",
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

// normalize fixes what changes from run to run (times, the temporary
// layout path, slipway's version) so a real scan can serve as a fixture.
func normalize(t *testing.T, rep *report.Report) []byte {
	t.Helper()
	rep.Scan.Slipway = "v0.4.0"
	rep.Scan.Commit = "4f2c1e9a0b7d3c5e8f1a2b4c6d8e0f1a3b5c7d9e"
	rep.Scan.Started, rep.Scan.Finished = "2026-11-02T10:00:00Z", "2026-11-02T10:00:09Z"
	rep.Scan.Image.Name = "oci:dist/image"
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
