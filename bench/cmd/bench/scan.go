package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/slipwayci/slipway/bench/internal/benchkit"
	"github.com/slipwayci/slipway/internal/report"
)

// scanApps are bench/scan's services, with what each row says of it.
var scanApps = []struct{ name, what string }{
	{"vulnerable", "the vulnerable sample (calls must be followed)"},
	{"hello", "the clean hello service (nothing vulnerable imported)"},
	{"service", "a real service"},
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
		if in.Service != nil {
			r, err := b.scanService(ctx, in)
			if err != nil {
				return nil, err
			}
			rows = append(rows, r...)
			continue
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

// scanService times slipway scan against the four commands on the real
// service, as many rounds as for the samples but at most serviceRounds
// (each is minutes), and compares peak memory with the govulncheck CLI's
// on the source. It checks first, untimed, that both find the same
// vulnerabilities and weaknesses.
func (b *bench) scanService(ctx context.Context, in benchkit.ScanInputs) ([]row, error) {
	s := in.Service
	what := fmt.Sprintf("scan: slipway scan vs trivy + govulncheck ×2 + gosec in sequence, a real service: %s %s (%dk lines of Go, %d modules; the whole Go vulnerability database)",
		s.Module, s.Version, s.Lines/1000, s.Modules)
	same, err := sameFindings(in)
	if err != nil {
		return nil, err
	}
	rounds := min(b.rounds, b.serviceRounds)
	var slipway, clis, govulncheck []benchkit.Sample
	for i := range rounds {
		sides := []func() error{
			func() error {
				var rss int64
				sm, err := benchkit.Timed(func() (err error) {
					_, rss, err = in.RunScanOutput(in.SlipwayScan())
					return err
				})
				sm.PeakRSS = rss
				slipway = append(slipway, sm)
				return err
			},
			func() error {
				var peak, source int64
				sm, err := benchkit.Timed(func() error {
					for k, argv := range in.CLIScans() {
						_, rss, err := in.RunScanOutput(argv)
						if err != nil {
							return err
						}
						peak = max(peak, rss)
						if k == 1 { // govulncheck on the source
							source = rss
						}
					}
					return nil
				})
				sm.PeakRSS = peak
				clis = append(clis, sm)
				govulncheck = append(govulncheck, benchkit.Sample{PeakRSS: source})
				return err
			},
		}
		for _, side := range alternate(sides, i) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if err := side(); err != nil {
				return nil, fmt.Errorf("%s (round %d): %w", s.Module, i+1, err)
			}
		}
		step(fmt.Sprintf("scan %s: round %d of %d done", s.Module, i+1, rounds))
	}
	timing := timeRow(what+"; "+same, slipway, clis, "the 4 commands", 0.8)
	ms, mg := benchkit.Median(slipway), benchkit.Median(govulncheck)
	ratio := float64(ms.PeakRSS) / float64(mg.PeakRSS)
	memory := row{
		What:    fmt.Sprintf("scan, peak memory: slipway scan vs the govulncheck CLI on the same source, %s %s", s.Module, s.Version),
		Slipway: byteSize(ms.PeakRSS), Peer: "govulncheck ./...: " + byteSize(mg.PeakRSS),
		Ratio: fmt.Sprintf("%.2f×", ratio), Target: "≤ 1.2×", Mark: "miss",
	}
	if ratio <= 1.2 {
		memory.Mark = "pass"
	}
	return []row{timing, memory}, nil
}

// sameFindings runs slipway scan and the four commands once and compares
// what they find: the vulnerabilities' IDs for trivy and govulncheck (the
// source and the binary together), the rules and places for gosec. It
// returns a phrase for the row.
func sameFindings(in benchkit.ScanInputs) (string, error) {
	if _, _, err := in.RunScanOutput(append(in.SlipwayScan(), "--fail-on", "none")); err != nil {
		return "", err
	}
	f, err := os.Open(filepath.Join(in.Dir, "dist", "findings.json"))
	if err != nil {
		return "", err
	}
	defer f.Close()
	rep, err := report.Read(f)
	if err != nil {
		return "", err
	}
	ours := map[string]map[string]bool{"trivy": {}, "govulncheck": {}, "gosec": {}}
	for _, fd := range rep.Findings {
		for _, sc := range fd.Scanners {
			for _, id := range fd.IDs() {
				if sc != "gosec" {
					ours[sc][id] = true
				}
			}
			if sc == "gosec" && len(fd.Locations) > 0 {
				ours[sc][fmt.Sprintf("%s %s:%d", fd.ID, fd.Locations[0].Path, fd.Locations[0].Line)] = true
			}
		}
	}
	theirs := map[string]map[string]bool{"trivy": {}, "govulncheck": {}, "gosec": {}}
	for k, argv := range in.CLIScans() {
		out, _, err := in.RunScanOutput(argv)
		if err != nil {
			return "", err
		}
		switch k {
		case 0:
			var tr struct {
				Results []struct {
					Vulnerabilities []struct{ VulnerabilityID string }
				}
			}
			if err := json.Unmarshal(out, &tr); err != nil {
				return "", fmt.Errorf("trivy's JSON: %w", err)
			}
			for _, r := range tr.Results {
				for _, v := range r.Vulnerabilities {
					theirs["trivy"][v.VulnerabilityID] = true
				}
			}
		case 1, 2:
			dec := json.NewDecoder(bytes.NewReader(out))
			for {
				var m struct {
					Finding *struct {
						OSV string `json:"osv"`
					} `json:"finding"`
				}
				if err := dec.Decode(&m); err == io.EOF {
					break
				} else if err != nil {
					return "", fmt.Errorf("govulncheck's JSON: %w", err)
				}
				if m.Finding != nil {
					theirs["govulncheck"][m.Finding.OSV] = true
				}
			}
		case 3:
			var gs struct {
				Issues []struct {
					RuleID string `json:"rule_id"`
					File   string `json:"file"`
					Line   string `json:"line"`
				}
			}
			if err := json.Unmarshal(out, &gs); err != nil {
				return "", fmt.Errorf("gosec's JSON: %w", err)
			}
			for _, is := range gs.Issues {
				rel, _ := filepath.Rel(in.Dir, is.File)
				line, _, _ := strings.Cut(is.Line, "-")
				theirs["gosec"][fmt.Sprintf("%s %s:%s", is.RuleID, filepath.ToSlash(rel), line)] = true
			}
		}
	}
	var diffs, counts []string
	for _, sc := range []string{"govulncheck", "trivy", "gosec"} {
		n := 0
		for id := range theirs[sc] {
			if !ours[sc][id] {
				diffs = append(diffs, sc+" CLI only: "+id)
			}
			if sc != "govulncheck" || strings.HasPrefix(id, "GO-") {
				n++
			}
		}
		for id := range ours[sc] {
			// slipway's findings carry aliases the CLIs name differently.
			if sc == "gosec" && !theirs[sc][id] || sc == "govulncheck" && strings.HasPrefix(id, "GO-") && !theirs[sc][id] {
				diffs = append(diffs, "slipway only: "+sc+" "+id)
			}
		}
		counts = append(counts, fmt.Sprintf("%d %s", n, sc))
	}
	if len(diffs) > 0 {
		slices.Sort(diffs)
		return "", fmt.Errorf("slipway and the CLIs find different things on %s: %s", in.Service.Module, strings.Join(diffs, "; "))
	}
	return "same findings (" + strings.Join(counts, ", ") + ")", nil
}
