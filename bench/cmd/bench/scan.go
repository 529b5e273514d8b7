package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/slipwayci/slipway/bench/internal/benchkit"
)

// scanApps are bench/scan's two services, with what each row says of it.
var scanApps = []struct{ name, what string }{
	{"vulnerable", "the vulnerable sample (calls must be followed)"},
	{"hello", "the clean hello service (nothing vulnerable imported)"},
}

// scan compares one slipway scan with trivy, govulncheck (source and
// binary) and gosec run one after the other, on bench/scan's inputs: one
// row per sample service.
func (b *bench) scan(ctx context.Context) ([]row, error) {
	const what = "scan: slipway scan vs trivy + govulncheck ×2 + gosec in sequence"
	if why, ok := b.missing["slipway-scan"]; ok {
		return []row{notMeasured(what, why)}, nil
	}
	// bench/scan's benchmark, run once, makes the inputs, keeps them and
	// warms both sides up. It links trivy, hence the experiment.
	dir := filepath.Join(b.work, "scan")
	step("scan: making the inputs with bench/scan's benchmark (its first build compiles trivy)")
	err := benchkit.Sh(b.root, []string{"GOEXPERIMENT=jsonv2", "SLIPWAY_BENCH_INPUTS=" + dir,
		"SLIPWAY_SCAN_BIN=" + filepath.Join(b.bin, "slipway-scan"), "SLIPWAY_SCAN_CLIS=" + b.peers.clis},
		"go", "test", "-run", "^$", "-bench", "^BenchmarkScan$", "-benchtime", "1x", "./bench/scan")
	if err != nil {
		return nil, err
	}
	var rows []row
	for _, app := range scanApps {
		in, err := benchkit.LoadScanInputs(filepath.Join(dir, app.name))
		if err != nil {
			return nil, err
		}
		sides := []contender{
			{"slipway", func(ctx context.Context, _ string) error { return in.RunScan(in.SlipwayScan()) }},
			{"clis", func(ctx context.Context, _ string) error {
				for _, argv := range in.CLIScans() {
					if err := in.RunScan(argv); err != nil {
						return err
					}
				}
				return nil
			}},
		}
		series := map[string][]benchkit.Sample{}
		for i := range b.rounds {
			for _, s := range alternate(sides, i) {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				sm, err := benchkit.Timed(func() error { return s.run(ctx, "") })
				if err != nil {
					return nil, fmt.Errorf("%s on %s (round %d): %w", s.name, app.name, i+1, err)
				}
				series[s.name] = append(series[s.name], sm)
			}
			step(fmt.Sprintf("scan %s: round %d of %d done", app.name, i+1, b.rounds))
		}
		rows = append(rows, timeRow(what+", "+app.what, series["slipway"], series["clis"], "the 4 commands", 0.6))
	}
	return rows, nil
}
