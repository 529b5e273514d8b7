package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/slipwayci/slipway/bench/internal/benchkit"
	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/registrytest"
)

// sampleDist builds and images the sample app, once, for the push and
// promote sections, and returns its dist and record.
func (b *bench) sampleDist() (string, *record.Record, error) {
	if b.rec != nil {
		return b.dist, b.rec, nil
	}
	dir := filepath.Join(b.work, "registry")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, err
	}
	dist, err := benchkit.SampleDist(b.root, dir, b.bin)
	if err != nil {
		return "", nil, err
	}
	rec, err := record.Load(dist)
	if err != nil {
		return "", nil, err
	}
	if rec.Image == nil {
		return "", nil, fmt.Errorf("%s has no image section", dist)
	}
	b.dist, b.rec = dist, rec
	return dist, rec, nil
}

// push compares slipway push with crane push, to a new repository and
// again unchanged, as bench/push does.
func (b *bench) push(ctx context.Context) ([]row, error) {
	dist, rec, err := b.sampleDist()
	if err != nil {
		return nil, err
	}
	tools := benchkit.PushTools(b.peers.crane, filepath.Join(b.bin, "slipway-push"), dist, filepath.Join(dist, rec.Image.Layout))
	res, err := benchkit.PushRounds(b.reg, b.work, tools, b.rounds, func(i int) {
		step(fmt.Sprintf("push: round %d of %d done", i, b.rounds))
	})
	if err != nil {
		return nil, err
	}
	var rows []row
	for _, phase := range []struct{ key, what string }{
		{benchkit.PushNew, "push to a new repository"},
		{benchkit.PushUnchanged, "re-push of an unchanged image"},
	} {
		crane := res[phase.key][benchkit.CranePush]
		rows = append(rows,
			registryRow(phase.what+": slipway push --sbom=false vs crane push", res[phase.key][benchkit.SlipwayPush], crane, "crane push"),
			registryRow(phase.what+": slipway push with its 4 SBOM referrers vs crane push (none)", res[phase.key][benchkit.SlipwayPushSBOMs], crane, "crane push"))
	}
	return rows, nil
}

// promote compares slipway promote with crane copy, inside one registry
// and across two.
func (b *bench) promote(ctx context.Context) ([]row, error) {
	whats := []string{
		"promotion inside one registry: slipway promote vs crane copy",
		"promotion across two registries: slipway promote vs crane copy",
	}
	if why, ok := b.missing["slipway-promote"]; ok {
		return []row{notMeasured(whats[0], why), notMeasured(whats[1], why)}, nil
	}
	dist, rec, err := b.sampleDist()
	if err != nil {
		return nil, err
	}
	src := b.reg.Host + "/bench/promote-src"
	if err := benchkit.Sh(b.work, nil, filepath.Join(b.bin, "slipway-push"), "--dist", dist, "--to", src, "--tag", "v1"); err != nil {
		return nil, err
	}
	digest := src + "@" + rec.Image.Digest
	other, err := registrytest.Start(registrytest.Options{})
	if err != nil {
		return nil, err
	}
	defer other.Close()

	// One environment per registry and round (and the warm-up's), each
	// a repository the image is not in yet.
	dir := filepath.Join(b.work, "promote")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	config := filepath.Join(dir, ".slipway.yaml")
	hosts := []string{b.reg.Host, other.Host}
	envs := map[string]any{}
	for i := -1; i < b.rounds; i++ {
		for r, host := range hosts {
			envs[envName(r, i)] = map[string]any{"repository": fmt.Sprintf("%s/promote/slipway-%d-%d", host, r, i+1), "tags": []string{"current"}}
		}
	}
	// JSON is YAML.
	data, err := json.MarshalIndent(map[string]any{"environments": envs}, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(config, data, 0o644); err != nil {
		return nil, err
	}

	proxies := []*registrytest.Proxy{b.reg.Proxy, other.Proxy}
	series := map[string][]benchkit.Sample{}
	type side struct {
		name    string
		command func(r, i int) []string
	}
	sides := []side{
		{"slipway", func(r, i int) []string {
			return []string{filepath.Join(b.bin, "slipway-promote"), "--config", config, "--digest", digest, "--to", envName(r, i)}
		}},
		{"crane", func(r, i int) []string {
			return []string{b.peers.crane, "copy", digest, fmt.Sprintf("%s/promote/crane-%d-%d:current", hosts[r], r, i+1)}
		}},
	}
	run := func(s side, r, i int) (benchkit.Sample, error) {
		c := s.command(r, i)
		return benchkit.Counted(func() error { return benchkit.Sh(dir, nil, c[0], c[1:]...) }, proxies...)
	}
	// Warm up, and find out whether slipway promote works yet.
	for _, s := range sides {
		for r := range hosts {
			if _, err := run(s, r, -1); err != nil {
				if s.name == "slipway" {
					why := "slipway promote failed: " + commandError(err)
					return []row{notMeasured(whats[0], why), notMeasured(whats[1], why)}, nil
				}
				return nil, err
			}
		}
	}
	for i := range b.rounds {
		for _, s := range alternate(sides, i) {
			for r := range hosts {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				sm, err := run(s, r, i)
				if err != nil {
					return nil, fmt.Errorf("%s (round %d): %w", s.name, i+1, err)
				}
				key := fmt.Sprintf("%s %d", s.name, r)
				series[key] = append(series[key], sm)
			}
		}
		step(fmt.Sprintf("promote: round %d of %d done", i+1, b.rounds))
	}
	return []row{
		registryRow(whats[0], series["slipway 0"], series["crane 0"], "crane copy"),
		registryRow(whats[1], series["slipway 1"], series["crane 1"], "crane copy"),
	}, nil
}

// envName names the environment on registry r (0 the first, 1 the other)
// for round i (-1 the warm-up).
func envName(r, i int) string {
	return fmt.Sprintf("bench-%d-%d", r, i+1)
}
