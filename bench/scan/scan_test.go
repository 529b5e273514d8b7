//go:build goexperiment.jsonv2

// Package scan benchmarks one `slipway scan` against the three commands it
// replaces, run one after the other on the same image, source and
// databases, offline: trivy image, govulncheck on the source and on the
// binary, gosec. bench.sh runs it and prints the ratio; make bench times
// the same commands from the inputs it keeps.
package scan

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/slipwayci/slipway/bench/internal/benchkit"
	"github.com/slipwayci/slipway/internal/scan/scantest"
	"github.com/slipwayci/slipway/internal/testkit"
)

func setup(b *testing.B) benchkit.ScanInputs {
	b.Helper()
	clis := os.Getenv("SLIPWAY_SCAN_CLIS")
	if clis == "" {
		b.Skip("SLIPWAY_SCAN_CLIS is not set; bench/scan/install-clis.sh installs the three commands")
	}
	// SLIPWAY_BENCH_INPUTS keeps the inputs in a directory, described by
	// benchkit.ScanInputsFile there, to time the commands by hand.
	keep := os.Getenv("SLIPWAY_BENCH_INPUTS")
	base := keep
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
	in := benchkit.ScanInputs{Dir: testkit.SampleRepo(b, "vulnerable", dir("repo")), Cache: dir("trivy-cache"),
		VulnDB: scantest.VulnDB(b), CLIs: clis, Env: scantest.Environ()}
	in.Bin = scantest.BuildApp(b, dir("bin"))
	in.Layout = filepath.Join(in.Dir, "dist", "image")
	scantest.Layout(b, in.Layout, scantest.Image(b, scantest.ImageFiles(b, in.Bin)))
	if err := scantest.BuildTrivyDB(in.Cache, scantest.TrivyFixtures(b)); err != nil {
		b.Fatal(err)
	}
	in.Slipway = os.Getenv("SLIPWAY_SCAN_BIN")
	if in.Slipway == "" {
		in.Slipway = filepath.Join(dir("slipway"), "slipway-scan")
		build := exec.Command("go", "build", "-o", in.Slipway, "./cmd/slipway-scan")
		build.Dir = testkit.RepoRoot(b)
		build.Env = append(os.Environ(), "GOEXPERIMENT=jsonv2")
		if out, err := build.CombinedOutput(); err != nil {
			b.Fatalf("building slipway-scan: %v\n%s", err, out)
		}
	}
	if keep != "" {
		if err := in.Save(keep); err != nil {
			b.Fatal(err)
		}
	}
	return in
}

func BenchmarkScan(b *testing.B) {
	in := setup(b)
	run := func(b *testing.B, argv []string) {
		if err := in.RunScan(argv); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("slipway", func(b *testing.B) {
		for b.Loop() {
			run(b, in.SlipwayScan())
		}
	})
	b.Run("clis", func(b *testing.B) {
		for b.Loop() {
			for _, argv := range in.CLIScans() {
				run(b, argv)
			}
		}
	})
}
