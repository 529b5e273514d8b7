package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/slipwayci/slipway/bench/internal/benchkit"
)

// versionCmd is a binary and the arguments that make it print its
// version and exit.
type versionCmd struct {
	name string
	argv []string
}

// startup measures each step binary's size and the median time of
// --version, beside the peer that does the same job, if there is one.
func (b *bench) startup(ctx context.Context) ([]row, error) {
	peerOf := map[string]versionCmd{
		"slipway-image":   {"ko", []string{b.peers.ko, "version"}},
		"slipway-push":    {"crane", []string{b.peers.crane, "version"}},
		"slipway-promote": {"crane", []string{b.peers.crane, "version"}},
		"slipway-scan":    {"trivy", []string{filepath.Join(b.peers.clis, "trivy"), "--version"}},
	}
	var rows []row
	for _, name := range []string{"slipway", "slipway-build", "slipway-image", "slipway-scan", "slipway-push", "slipway-promote", "slipway-history", "slipway-sign"} {
		what := "size and start-up (--version): bin/" + name
		if why, ok := b.missing[name]; ok {
			rows = append(rows, notMeasured(what, why))
			continue
		}
		path := filepath.Join(b.bin, name)
		if _, err := os.Stat(path); os.IsNotExist(err) && (name == "slipway-history" || name == "slipway-sign") {
			continue // not every version of slipway has it
		}
		sides := []versionCmd{{name, []string{path, "--version"}}}
		if p, ok := peerOf[name]; ok {
			sides = append(sides, p)
		}
		series := map[string][]benchkit.Sample{}
		for i := range b.startupRuns {
			for _, s := range alternate(sides, i) {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				sm, err := benchkit.Timed(func() error { return exec.Command(s.argv[0], s.argv[1:]...).Run() })
				if err != nil {
					return nil, fmt.Errorf("%s: %w", s.argv[0], err)
				}
				series[s.name] = append(series[s.name], sm)
			}
		}
		cells := make([]string, len(sides))
		sizes := make([]int64, len(sides))
		for j, s := range sides {
			fi, err := os.Stat(s.argv[0])
			if err != nil {
				return nil, err
			}
			sizes[j] = fi.Size()
			cells[j] = fmt.Sprintf("%s · %s", byteSize(fi.Size()), duration(benchkit.Median(series[s.name]).Wall))
		}
		r := row{What: what, Slipway: cells[0], Peer: "—", Ratio: "—", Target: "—", Mark: "—"}
		if len(sides) == 2 {
			r.Peer = sides[1].name + ": " + cells[1]
			r.Ratio = fmt.Sprintf("%s · %s", ratioOf(float64(sizes[0]), float64(sizes[1])),
				ratioOf(float64(benchkit.Median(series[name]).Wall), float64(benchkit.Median(series[sides[1].name]).Wall)))
		}
		rows = append(rows, r)
	}
	return rows, nil
}
