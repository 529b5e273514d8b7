//go:build goexperiment.jsonv2

// Package scan benchmarks one `slipway scan` against the three commands it
// replaces, run one after the other on the same image, source and
// databases, offline: trivy image, govulncheck on the source and on the
// binary, gosec. bench.sh runs it and prints the ratio; make bench times
// the same commands from the inputs it keeps.
package scan

import (
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/slipwayci/slipway/bench/internal/benchkit"
	"github.com/slipwayci/slipway/internal/scan/scantest"
	"github.com/slipwayci/slipway/internal/testkit"
)

// apps are the services scanned: the vulnerable sample, which calls into
// a vulnerable package (so govulncheck must follow calls), the hello
// service, a clean one (net/http and no vulnerable import), the common
// case, and a real service fetched through the Go proxy
// (benchkit.RealService), scanned with the real Go vulnerability
// database.
var apps = []struct{ name, pkg string }{
	{"vulnerable", "."},
	{"hello", "./cmd/hello"},
	{"service", "."},
}

func setup(b *testing.B, app, pkg string) benchkit.ScanInputs {
	b.Helper()
	clis := os.Getenv("SLIPWAY_SCAN_CLIS")
	if clis == "" {
		b.Skip("SLIPWAY_SCAN_CLIS is not set; bench/scan/install-clis.sh installs the three commands")
	}
	// SLIPWAY_BENCH_INPUTS keeps the inputs in a directory, one folder per
	// app, described by benchkit.ScanInputsFile there, to time the
	// commands by hand.
	keep := os.Getenv("SLIPWAY_BENCH_INPUTS")
	base := b.TempDir()
	if keep != "" {
		base = filepath.Join(keep, app)
	}
	dir := func(name string) string {
		d := filepath.Join(base, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.Fatal(err)
		}
		return d
	}
	var in benchkit.ScanInputs
	if app == "service" {
		in = service(b, dir("repo"))
	} else {
		in = benchkit.ScanInputs{Dir: testkit.SampleRepo(b, app, dir("repo")), VulnDB: scantest.VulnDB(b), Env: scantest.Environ()}
	}
	in.Cache, in.CLIs = dir("trivy-cache"), clis
	in.Bin = filepath.Join(dir("bin"), app)
	build := exec.Command("go", "build", "-trimpath", "-o", in.Bin, pkg)
	build.Dir = in.Dir
	build.Env = append(slices.Clone(in.Env), "GOOS=linux", "GOARCH=amd64", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building %s: %v\n%s", app, err, out)
	}
	files := scantest.ImageFiles(b, in.Bin) // the binary as /app/vulnerable
	if bin := files["app/vulnerable"]; app != "vulnerable" {
		delete(files, "app/vulnerable")
		files["app/"+app] = bin
	}
	in.Layout = filepath.Join(in.Dir, "dist", "image")
	scantest.Layout(b, in.Layout, scantest.Image(b, files))
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
		if err := in.Save(base); err != nil {
			b.Fatal(err)
		}
	}
	return in
}

// service fetches benchkit.RealService into dir, with the whole of the
// pinned Go vulnerability database: the inputs but the binary and image.
func service(b *testing.B, dir string) benchkit.ScanInputs {
	b.Helper()
	s, err := benchkit.FetchService(benchkit.RealService, dir)
	if err != nil {
		b.Fatal(err)
	}
	vulndb, err := benchkit.ModuleDir(benchkit.VulnDBModule)
	if err != nil {
		b.Fatal(err)
	}
	// Offline like the samples, but from the module cache, not vendor/.
	env := slices.DeleteFunc(scantest.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "GOFLAGS=") })
	return benchkit.ScanInputs{Dir: dir, Service: &s, Env: append(env, "GOFLAGS=-buildvcs=false"),
		VulnDB: (&url.URL{Scheme: "file", Path: filepath.ToSlash(filepath.Join(vulndb, "data", "osv"))}).String()}
}

func BenchmarkScan(b *testing.B) {
	for _, app := range apps {
		b.Run(app.name, func(b *testing.B) {
			in := setup(b, app.name, app.pkg)
			if app.name == "service" && os.Getenv("SLIPWAY_BENCH_INPUTS") != "" {
				// make bench times the real service itself; its inputs
				// are all it needs from here.
				return
			}
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
		})
	}
}
