package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/slipwayci/slipway/bench/internal/benchkit"
	"github.com/slipwayci/slipway/internal/ci"
	"github.com/slipwayci/slipway/internal/provenance"
	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/sigstoretest"
)

// sign compares slipway push --sign with what a pipeline does today:
// push, then cosign sign and cosign attest of the same statements (the
// image for the index and its manifests, SLSA provenance, each SBOM). Both
// sign with a key cosign made and no timestamp authority or log, so that
// only the signing and attaching are measured, not a service. A third
// side, push without signing, gives signing's own CPU per statement.
func (b *bench) sign(ctx context.Context) ([]row, error) {
	whats := []string{
		"push with signing (key; image ×3, provenance, 4 SBOMs): slipway push --sign KEY vs slipway push, then cosign sign -r, cosign attest ×3 (provenance, one per manifest) and ×4 (SBOMs)",
		"signing and attaching, CPU per statement: (push --sign KEY − push) ÷ statements signed (provenance built, bundles signed and attached to each manifest they name)",
	}
	cosign, err := sigstoretest.Bin("cosign")
	if err != nil {
		return []row{notMeasured(whats[0], err.Error()), notMeasured(whats[1], err.Error())}, nil
	}
	dist, rec, err := b.sampleDist()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(b.work, "sign")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	env := []string{"COSIGN_PASSWORD=bench", "HOME=" + dir, "TUF_ROOT=" + filepath.Join(dir, "tuf")}
	key := filepath.Join(dir, "cosign.key")
	if err := benchkit.Sh(dir, env, cosign, "generate-key-pair", "--output-key-prefix", filepath.Join(dir, "cosign")); err != nil {
		return nil, err
	}
	// The predicate cosign attests is the one slipway builds.
	prov, err := provenance.New(provenance.Input{Record: rec, Dir: dist, Info: ci.Info{Platform: "local"}})
	if err != nil {
		return nil, err
	}
	provFile := filepath.Join(dir, "provenance.json")
	data, err := json.Marshal(prov)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(provFile, data, 0o644); err != nil {
		return nil, err
	}

	push := filepath.Join(b.bin, "slipway-push")
	repo := func(side string, i int) string { return fmt.Sprintf("%s/bench/sign-%s-%d", b.reg.Host, side, i+1) }
	statements := 1 + len(rec.Image.Platforms) + 1 // the image per manifest, provenance
	cosignRuns := func(r string) [][]string {
		cmds := [][]string{
			{push, "--dist", dist, "--to", r, "--tag", "v1", "--sign", "off"},
			{cosign, "sign", "--key", key, "--tlog-upload=false", "--use-signing-config=false", "--yes", "--recursive", r + "@" + rec.Image.Digest},
		}
		// cosign attest has no --recursive: once per manifest.
		for _, d := range append([]string{rec.Image.Digest}, platformDigests(rec)...) {
			cmds = append(cmds, []string{cosign, "attest", "--key", key, "--tlog-upload=false", "--use-signing-config=false", "--yes",
				"--type", "slsaprovenance1", "--predicate", provFile, r + "@" + d})
		}
		for _, p := range rec.Image.Platforms {
			for _, sb := range p.SBOMs {
				typ := "spdxjson"
				if strings.HasPrefix(sb.Format, "cyclonedx") {
					typ = "cyclonedx"
				}
				cmds = append(cmds, []string{cosign, "attest", "--key", key, "--tlog-upload=false", "--use-signing-config=false", "--yes",
					"--type", typ, "--predicate", filepath.Join(dist, filepath.FromSlash(sb.Path)), r + "@" + p.Digest})
			}
		}
		return cmds
	}
	sbomCount := 0
	for _, p := range rec.Image.Platforms {
		sbomCount += len(p.SBOMs)
	}
	statements += sbomCount

	type side struct {
		name string
		cmds func(r string) [][]string
	}
	sides := []side{
		{"slipway", func(r string) [][]string {
			return [][]string{{push, "--dist", dist, "--to", r, "--tag", "v1", "--sign", key, "--tsa-url", "none", "--rekor-url", "none"}}
		}},
		{"plain", func(r string) [][]string {
			return [][]string{{push, "--dist", dist, "--to", r, "--tag", "v1", "--sign", "off"}}
		}},
		{"cosign", cosignRuns},
	}
	run := func(s side, i int) (benchkit.Sample, error) {
		var peak int64
		sm, err := benchkit.Counted(func() error {
			for _, c := range s.cmds(repo(s.name, i)) {
				rss, err := runRSS(dir, env, c)
				if err != nil {
					return err
				}
				peak = max(peak, rss)
			}
			return nil
		}, b.reg.Proxy)
		sm.PeakRSS = peak
		return sm, err
	}
	for _, s := range sides { // warm up
		if _, err := run(s, -1); err != nil {
			return nil, fmt.Errorf("%s (warm-up): %w", s.name, err)
		}
	}
	series := map[string][]benchkit.Sample{}
	for i := range b.rounds {
		for _, s := range alternate(sides, i) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			sm, err := run(s, i)
			if err != nil {
				return nil, fmt.Errorf("%s (round %d): %w", s.name, i+1, err)
			}
			series[s.name] = append(series[s.name], sm)
		}
		step(fmt.Sprintf("sign: round %d of %d done", i+1, b.rounds))
	}

	ms, mp, mc := benchkit.Median(series["slipway"]), benchkit.Median(series["plain"]), benchkit.Median(series["cosign"])
	cell := func(m benchkit.Sample) string {
		return fmt.Sprintf("%s (CPU %s) · %d req · peak %s", duration(m.Wall), duration(m.CPU), m.Requests, byteSize(m.PeakRSS))
	}
	first := row{
		What: whats[0], Slipway: cell(ms), Peer: "push + cosign: " + cell(mc),
		Ratio: fmt.Sprintf("%s (CPU %s) · %s req · %s peak", ratioOf(float64(ms.Wall), float64(mc.Wall)), ratioOf(float64(ms.CPU), float64(mc.CPU)),
			ratioOf(float64(ms.Requests), float64(mc.Requests)), ratioOf(float64(ms.PeakRSS), float64(mc.PeakRSS))),
		Target: "report time, CPU, requests, memory", Mark: "—",
	}
	perStatement := (ms.CPU - mp.CPU) / sampleDivisor(statements)
	cosignPer := (mc.CPU - mp.CPU) / sampleDivisor(statements)
	second := row{
		What:    fmt.Sprintf("%s (%d statements)", whats[1], statements),
		Slipway: duration(perStatement), Peer: "cosign: " + duration(cosignPer),
		Ratio:  ratioOf(float64(perStatement), float64(cosignPer)),
		Target: "≤ 50ms", Mark: "miss",
	}
	if perStatement <= 50_000_000 {
		second.Mark = "pass"
	}
	return []row{first, second}, nil
}

// platformDigests are the record's platform manifests.
func platformDigests(rec *record.Record) []string {
	var out []string
	for _, p := range rec.Image.Platforms {
		out = append(out, p.Digest)
	}
	return out
}

// sampleDivisor divides a duration among n statements.
func sampleDivisor(n int) time.Duration { return time.Duration(max(n, 1)) }

// runRSS runs argv in dir and returns the peak resident memory of its
// process, in bytes.
func runRSS(dir string, env, argv []string) (int64, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var rss int64
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			rss = ru.Maxrss * 1024 // kilobytes on Linux
		}
	}
	if err != nil {
		return rss, fmt.Errorf("%s %s: %v\n%s", filepath.Base(argv[0]), strings.Join(argv[1:], " "), err, out.String())
	}
	return rss, nil
}
