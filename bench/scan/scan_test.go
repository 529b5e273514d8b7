//go:build goexperiment.jsonv2

// Package scan benchmarks one `slipway scan` against the three commands it
// replaces, run one after the other on the same image, source and
// databases, offline: trivy image, govulncheck on the source and on the
// binary, gosec. bench.sh runs it and prints the ratio.
package scan

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/slipwayci/slipway/internal/scan/scantest"
	"github.com/slipwayci/slipway/internal/scan/trivy/trivytest"
	"github.com/slipwayci/slipway/internal/testkit"
)

// inputs are the sample app in a repository, its image as an OCI layout,
// both databases and the slipway-scan binary.
type inputs struct {
	dir, layout, bin, cache, vulndb, slipway, clis string
}

func setup(b *testing.B) inputs {
	b.Helper()
	clis := os.Getenv("SLIPWAY_SCAN_CLIS")
	if clis == "" {
		b.Skip("SLIPWAY_SCAN_CLIS is not set; bench/scan/install-clis.sh installs the three commands")
	}
	// SLIPWAY_BENCH_INPUTS keeps the inputs in a directory, to time the
	// commands by hand.
	base := os.Getenv("SLIPWAY_BENCH_INPUTS")
	if base == "" {
		base = b.TempDir()
	}
	dir := func(name string) string {
		d := filepath.Join(base, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.Fatal(err)
		}
		return d
	}
	in := inputs{dir: testkit.SampleRepo(b, "vulnerable", dir("repo")), cache: dir("trivy-cache"), vulndb: scantest.VulnDB(b), clis: clis}
	in.bin = scantest.BuildApp(b, dir("bin"))
	in.layout = filepath.Join(in.dir, "dist", "image")
	scantest.Layout(b, in.layout, scantest.Image(b, scantest.ImageFiles(b, in.bin)))
	if err := trivytest.BuildDB(in.cache, scantest.TrivyFixtures(b)); err != nil {
		b.Fatal(err)
	}
	in.slipway = os.Getenv("SLIPWAY_SCAN_BIN")
	if in.slipway == "" {
		in.slipway = filepath.Join(b.TempDir(), "slipway-scan")
		build := exec.Command("go", "build", "-o", in.slipway, "./cmd/slipway-scan")
		build.Dir = testkit.RepoRoot(b)
		build.Env = append(os.Environ(), "GOEXPERIMENT=jsonv2")
		if out, err := build.CombinedOutput(); err != nil {
			b.Fatalf("building slipway-scan: %v\n%s", err, out)
		}
	}
	return in
}

// run runs a command in the sample repository; exit status 3 (slipway's
// policy) and 1 (gosec's findings) are results, not failures.
func (in inputs) run(b *testing.B, name string, args ...string) {
	b.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = in.dir
	cmd.Env = scantest.Environ()
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok && (ee.ExitCode() == 3 || ee.ExitCode() == 1) {
		return
	}
	if err != nil {
		b.Fatalf("%s: %v\n%s", filepath.Base(name), err, out)
	}
}

func BenchmarkScan(b *testing.B) {
	in := setup(b)
	b.Run("slipway", func(b *testing.B) {
		for b.Loop() {
			in.run(b, in.slipway, "--offline", "--cache-dir", in.cache, "--vulndb", in.vulndb)
		}
	})
	b.Run("clis", func(b *testing.B) {
		for b.Loop() {
			in.run(b, filepath.Join(in.clis, "trivy"), "image", "--input", in.layout, "--cache-dir", in.cache,
				"--skip-db-update", "--offline-scan", "--scanners", "vuln", "--format", "json", "--quiet")
			in.run(b, filepath.Join(in.clis, "govulncheck"), "-db", in.vulndb, "-format", "json", "./...")
			in.run(b, filepath.Join(in.clis, "govulncheck"), "-db", in.vulndb, "-format", "json", "-mode", "binary", in.bin)
			in.run(b, filepath.Join(in.clis, "gosec"), "-fmt", "json", "-quiet", "./...")
		}
	})
}
