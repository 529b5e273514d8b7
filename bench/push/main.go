// Command push compares slipway push with crane push of the same OCI layout
// against a local docker-registry: wall time, requests and bytes, counted at
// the registry by the proxy in front of it. Runs alternate between the two
// tools, and the medians are reported with their ratio.
//
//	go run ./bench/push [-rounds 7] [-dist DIR] [-out results.md]
//
// It builds the sample app (testdata/apps/hello) with slipway build and
// slipway image unless -dist names a dist directory, and installs crane
// (benchkit.CraneVersion) into a temporary GOBIN through the Go module
// proxy. make bench runs the same comparison among the others.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/slipwayci/slipway/bench/internal/benchkit"
	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/registrytest"
)

func main() {
	rounds := flag.Int("rounds", 7, "runs of each case per tool")
	dist := flag.String("dist", "", "dist directory with an image section (default: build the sample app)")
	out := flag.String("out", "", "also write the results as Markdown to this file")
	flag.Parse()
	if err := run(*rounds, *dist, *out); err != nil {
		fmt.Fprintln(os.Stderr, "bench/push:", err)
		os.Exit(1)
	}
}

func run(rounds int, dist, out string) error {
	root, err := benchkit.ModuleRoot()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "bench-push-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	bin := filepath.Join(work, "bin")
	step("building slipway")
	if err := benchkit.Sh(root, nil, "go", "build", "-o", bin+"/", "./cmd/slipway-build", "./cmd/slipway-image", "./cmd/slipway-push"); err != nil {
		return err
	}
	step("installing crane " + benchkit.CraneVersion)
	if err := benchkit.Sh(root, []string{"GOBIN=" + bin}, "go", "install", "github.com/google/go-containerregistry/cmd/crane@"+benchkit.CraneVersion); err != nil {
		return err
	}
	if dist == "" {
		step("building and imaging testdata/apps/hello")
		if dist, err = benchkit.SampleDist(root, work, bin); err != nil {
			return err
		}
	}
	rec, err := record.Load(dist)
	if err != nil {
		return err
	}
	if rec.Image == nil {
		return fmt.Errorf("%s has no image section", dist)
	}

	reg, err := registrytest.Start(registrytest.Options{})
	if err != nil {
		return err
	}
	defer reg.Close()

	tools := benchkit.PushTools(filepath.Join(bin, "crane"), filepath.Join(bin, "slipway-push"), dist, filepath.Join(dist, rec.Image.Layout))
	results, err := benchkit.PushRounds(reg, work, tools, rounds, func(i int) { step(fmt.Sprintf("round %d of %d done", i, rounds)) })
	if err != nil {
		return err
	}

	var b strings.Builder
	fmt.Fprintf(&b, "Layout: %s (%s, %d platforms), %d rounds, medians; counted at the registry.\n\n", rec.Module, rec.Image.Digest[:19]+"…", len(rec.Image.Platforms), rounds)
	for _, phase := range []string{benchkit.PushNew, benchkit.PushUnchanged} {
		title := map[string]string{benchkit.PushNew: "Push to a new repository", benchkit.PushUnchanged: "Re-push, unchanged"}[phase]
		fmt.Fprintf(&b, "### %s\n\n| tool | time | requests | blob bytes | all bytes | time vs crane | requests vs crane |\n|---|---|---|---|---|---|---|\n", title)
		base := benchkit.Median(results[phase][benchkit.CranePush])
		for _, t := range tools {
			m := benchkit.Median(results[phase][t.Name])
			fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %.2f× | %.2f× |\n", t.Name, m.Wall.Round(time.Millisecond), m.Requests, m.BlobBytes, m.AllBytes,
				float64(m.Wall)/float64(base.Wall), float64(m.Requests)/float64(base.Requests))
		}
		b.WriteString("\n")
	}
	fmt.Print(b.String())
	if out != "" {
		return os.WriteFile(out, []byte(b.String()), 0o644)
	}
	return nil
}

func step(msg string) { fmt.Fprintln(os.Stderr, "bench/push:", msg) }
