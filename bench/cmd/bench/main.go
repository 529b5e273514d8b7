// Command bench compares every Slipway step with the tools it replaces, in
// one run, and writes the results as Markdown (bench/RESULTS.md):
//
//	make bench [BENCH_ROUNDS=5] [BENCH_COLD_ROUNDS=2]
//	go run ./bench/cmd/bench [-rounds 5] [-cold-rounds 2] [-only image,push] [-out FILE]
//
// It installs the peers where missing (ko and crane with go install, the
// trivy, govulncheck and gosec CLIs with bench/scan/install-clis.sh),
// builds slipway's binaries as make build does, starts Debian's
// docker-registry behind the counting proxy of internal/registrytest, and
// measures, alternating which side goes first from round to round:
//
//   - image: a warm build and image of testdata/apps/hello for two
//     platforms on the same base, slipway build + image against ko build,
//     after a source change and unchanged, with bare go build as the floor;
//   - cold: slipway build for four platforms against a loop of go build,
//     each with an empty GOCACHE;
//   - push: slipway push against crane push, and again unchanged
//     (benchkit.PushRounds, as bench/push);
//   - promote: slipway promote against crane copy, inside one registry
//     and across two;
//   - scan: slipway scan against trivy, govulncheck and gosec in sequence
//     (the inputs and commands of bench/scan);
//   - startup: each binary's size and the median time of --version;
//   - actions: the four step actions' install per job, at a release tag
//     (one download) and at a branch (one build from source), against go
//     install of ko and crane, with an empty and a warm GOCACHE.
//
// The program itself never links trivy: it runs built binaries.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/slipwayci/slipway/bench/internal/benchkit"
	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/registrytest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := realMain(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// section is one group of rows in the table.
type section struct {
	name string
	run  func(b *bench, ctx context.Context) ([]row, error)
	// rows name what the section measures, for the table when it fails.
	rows []string
}

var sections = []section{
	{"image", (*bench).image, []string{"warm image build"}},
	{"cold", (*bench).cold, []string{"cold build, four platforms"}},
	{"push", (*bench).push, []string{"push to a local docker-registry"}},
	{"promote", (*bench).promote, []string{"promotion"}},
	{"sign", (*bench).sign, []string{"push with signing vs push then cosign sign and cosign attest"}},
	{"scan", (*bench).scan, []string{"scan"}},
	{"startup", (*bench).startup, []string{"binary size and start-up"}},
	{"actions", (*bench).actions, []string{"actions: install per job of the build, image, scan and push actions"}},
}

// bench is one run's setup, shared by the sections.
type bench struct {
	root, work string
	// bin holds slipway's binaries; missing names the step binaries that
	// did not build, with the reason.
	bin     string
	missing map[string]string
	peers   peers
	reg     *registrytest.Registry
	// dist is the sample app built and imaged for push and promote.
	dist string
	rec  *record.Record

	rounds, coldRounds, startupRuns, serviceRounds int
}

func realMain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	rounds := fs.Int("rounds", 5, "`runs` of each side per measure")
	coldRounds := fs.Int("cold-rounds", 2, "`runs` of each side of the cold four-platform build (minutes each)")
	startupRuns := fs.Int("startup-runs", 21, "`runs` of --version per binary")
	serviceRounds := fs.Int("service-rounds", 3, "at most this many `runs` of each side of the scan of a real service (minutes each)")
	only := fs.String("only", "", "comma-separated `sections` to run (default all): "+sectionNames())
	out := fs.String("out", "", "Markdown `file` to write (default bench/RESULTS.md in the module)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rounds < 1 || *coldRounds < 1 || *startupRuns < 1 || *serviceRounds < 1 {
		return errors.New("-rounds, -cold-rounds, -startup-runs and -service-rounds must be at least 1")
	}
	want := map[string]bool{}
	for s := range strings.SplitSeq(*only, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !slices.ContainsFunc(sections, func(x section) bool { return x.name == s }) {
			return fmt.Errorf("-only %s: no such section; have %s", s, sectionNames())
		}
		want[s] = true
	}

	root, err := benchkit.ModuleRoot()
	if err != nil {
		return err
	}
	if *out == "" {
		*out = filepath.Join(root, "bench", "RESULTS.md")
	}
	// ko takes the layout path for a repository name, which must be lower
	// case: MkdirTemp's random part is digits.
	work, err := os.MkdirTemp("", "slipway-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	b := &bench{root: root, work: work, bin: filepath.Join(work, "bin"),
		rounds: *rounds, coldRounds: *coldRounds, startupRuns: *startupRuns, serviceRounds: *serviceRounds}
	m := readMachine()
	start := time.Now()

	// The actions section installs and builds what it measures itself;
	// run alone, it needs none of the others' setup.
	if len(want) != 1 || !want["actions"] {
		step("installing the peers where missing")
		if b.peers, err = installPeers(root); err != nil {
			return err
		}
		step("building slipway's binaries")
		if b.missing, err = buildSlipway(root, b.bin); err != nil {
			return err
		}
		if b.reg, err = registrytest.Start(registrytest.Options{}); err != nil {
			return err
		}
		defer b.reg.Close()
	}

	var rows []row
	var failed []string
	for _, s := range sections {
		if len(want) > 0 && !want[s.name] {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		step(s.name)
		r, err := s.run(b, ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			fmt.Fprintf(os.Stderr, "bench: %s: %v\n", s.name, err)
			failed = append(failed, s.name)
			for _, what := range s.rows {
				r = append(r, notMeasured(what, "the run failed: "+firstLine(err.Error())))
			}
		}
		rows = append(rows, r...)
	}
	m.LoadEnd = loadAverage()
	m.Took = time.Since(start).Round(time.Second)

	report, err := render(b, m, rows)
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, []byte(report), 0o644); err != nil {
		return err
	}
	fmt.Print(report)
	step("wrote " + *out)
	if len(failed) > 0 {
		return fmt.Errorf("sections failed: %s (their rows say not measured)", strings.Join(failed, ", "))
	}
	return nil
}

func sectionNames() string {
	names := make([]string, len(sections))
	for i, s := range sections {
		names[i] = s.name
	}
	return strings.Join(names, ", ")
}

// alternate returns sides in order on even rounds and reversed on odd
// ones, so that no side always goes first.
func alternate[T any](sides []T, round int) []T {
	order := slices.Clone(sides)
	if round%2 == 1 {
		slices.Reverse(order)
	}
	return order
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

// commandError is the first line a failed command printed, less go
// build's package headers; else the error's first line.
func commandError(err error) string {
	lines := strings.Split(err.Error(), "\n")
	for _, l := range lines[1:] {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			return l
		}
	}
	return lines[0]
}

func step(msg string) { fmt.Fprintln(os.Stderr, "bench:", msg) }
