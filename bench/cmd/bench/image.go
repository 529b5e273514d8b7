package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/slipwayci/slipway/bench/internal/benchkit"
)

// imagePlatforms are what the warm image build makes: the platforms
// slipway build makes by default, and images both sides can make.
var imagePlatforms = []string{"linux/amd64", "linux/arm64"}

// coldPlatforms are the cold build's matrix.
var coldPlatforms = []string{"linux/amd64", "linux/arm64", "darwin/arm64", "windows/amd64"}

// contender is one side of a build comparison. run does one timed run
// and adds its times to the series it keeps.
type contender struct {
	name string
	run  func(ctx context.Context, phase string) error
}

// image compares warm image builds of the sample app: slipway build +
// image against ko build, after a source change and unchanged, with bare
// go build as the floor.
func (b *bench) image(ctx context.Context) ([]row, error) {
	dir := filepath.Join(b.work, "image")
	repo := filepath.Join(dir, "hello")
	if err := benchkit.SampleRepo(b.root, "hello", repo); err != nil {
		return nil, err
	}
	base := b.reg.Host + "/base/static:1"
	if err := benchkit.PushStaticBase(ctx, base, filepath.Join(dir, "base-cache")); err != nil {
		return nil, err
	}
	platforms := strings.Join(imagePlatforms, ",")
	koLayout, koSBOM := filepath.Join(dir, "ko-layout"), filepath.Join(dir, "ko-sbom")
	slipwayBuild := []string{filepath.Join(b.bin, "slipway-build"), "--platforms", platforms, "./cmd/hello"}
	slipwayImage := []string{filepath.Join(b.bin, "slipway-image"), "--base", base, "--cache", filepath.Join(dir, "slipway-cache")}
	ko := []string{b.peers.ko, "build", "./cmd/hello", "--bare", "--push=false", "--platform=" + platforms,
		"--oci-layout-path", koLayout, "--sbom-dir", koSBOM}
	koEnv := []string{"KO_DOCKER_REPO=" + b.reg.Host + "/ko", "KO_DEFAULTBASEIMAGE=" + base}

	// series holds the samples by phase and name.
	series := map[string][]benchkit.Sample{}
	add := func(phase, name string, s benchkit.Sample) {
		series[phase+" "+name] = append(series[phase+" "+name], s)
	}
	sh := func(env []string, argv []string) (benchkit.Sample, error) {
		return benchkit.Timed(func() error { return benchkit.Sh(repo, env, argv[0], argv[1:]...) })
	}
	sides := []contender{
		{"slipway", func(ctx context.Context, phase string) error {
			if err := os.RemoveAll(filepath.Join(repo, "dist", "image")); err != nil {
				return err
			}
			build, err := sh(nil, slipwayBuild)
			if err != nil {
				return err
			}
			image, err := sh(nil, slipwayImage)
			if err != nil {
				return err
			}
			add(phase, "slipway", benchkit.Sample{Wall: build.Wall + image.Wall, CPU: build.CPU + image.CPU})
			add(phase, "image step", image)
			return nil
		}},
		{"ko", func(ctx context.Context, phase string) error {
			if err := os.RemoveAll(koLayout); err != nil {
				return err
			}
			d, err := sh(koEnv, ko)
			add(phase, "ko", d)
			return err
		}},
		{"go build", func(ctx context.Context, phase string) error {
			out := filepath.Join(dir, "floor")
			if err := os.RemoveAll(out); err != nil {
				return err
			}
			d, err := benchkit.Timed(func() error { return goBuild(ctx, repo, out, imagePlatforms, len(imagePlatforms), nil) })
			add(phase, "go build", d)
			return err
		}},
	}

	// Warm every cache, untimed.
	for _, s := range sides {
		if err := s.run(ctx, "warm-up"); err != nil {
			return nil, fmt.Errorf("%s, warming up: %w", s.name, err)
		}
	}
	change := 0
	for i := range b.rounds {
		for _, s := range alternate(sides, i) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			change++
			if err := changeSource(repo, change); err != nil {
				return nil, err
			}
			for _, phase := range []string{"changed", "unchanged"} {
				if err := s.run(ctx, phase); err != nil {
					return nil, fmt.Errorf("%s (%s source, round %d): %w", s.name, phase, i+1, err)
				}
			}
		}
		step(fmt.Sprintf("image: round %d of %d done", i+1, b.rounds))
	}

	var rows []row
	for _, phase := range []string{"changed", "unchanged"} {
		what := "warm image build, " + phase + " source: slipway build + image vs ko build"
		rows = append(rows, timeRow(what, series[phase+" slipway"], series[phase+" ko"], "ko build", 0))
	}
	for _, phase := range []string{"changed", "unchanged"} {
		what := "warm image build, " + phase + " source: the image step alone (slipway image) vs ko build"
		rows = append(rows, timeRow(what, series[phase+" image step"], series[phase+" ko"], "ko build", 0.3))
	}
	for _, phase := range []string{"changed", "unchanged"} {
		what := "warm image build, " + phase + " source: slipway build + image vs the floor, bare go build"
		rows = append(rows, timeRow(what, series[phase+" slipway"], series[phase+" go build"], "go build", 0))
	}
	return rows, nil
}

// changeSource rewrites a file of the sample's main package with a string
// that reaches the binary, and commits it, as a new commit in CI would.
func changeSource(repo string, n int) error {
	src := fmt.Sprintf(`package main

import "os"

// Written by make bench: each change gives a new binary.
func init() {
	if len(os.Args) > 1<<20 {
		println("bench change %d")
	}
}
`, n)
	if err := os.WriteFile(filepath.Join(repo, "cmd", "hello", "bench_change.go"), []byte(src), 0o644); err != nil {
		return err
	}
	return benchkit.Commit(repo, fmt.Sprintf("bench change %d", n))
}

// cold compares cold builds for four platforms, each side with an empty
// GOCACHE: slipway build against a loop of go build.
func (b *bench) cold(ctx context.Context) ([]row, error) {
	dir := filepath.Join(b.work, "cold")
	repo := filepath.Join(dir, "hello")
	if err := benchkit.SampleRepo(b.root, "hello", repo); err != nil {
		return nil, err
	}
	slipwayBuild := []string{filepath.Join(b.bin, "slipway-build"), "--platforms", strings.Join(coldPlatforms, ","), "./cmd/hello"}
	series := map[string][]benchkit.Sample{}
	sides := []contender{
		{"slipway", func(ctx context.Context, _ string) error {
			return withEmptyCache(dir, func(env []string) error {
				s, err := benchkit.Timed(func() error { return benchkit.Sh(repo, env, slipwayBuild[0], slipwayBuild[1:]...) })
				series["slipway"] = append(series["slipway"], s)
				return err
			})
		}},
		{"go build loop", func(ctx context.Context, _ string) error {
			return withEmptyCache(dir, func(env []string) error {
				s, err := benchkit.Timed(func() error { return goBuild(ctx, repo, filepath.Join(dir, "loop"), coldPlatforms, 1, env) })
				series["loop"] = append(series["loop"], s)
				return err
			})
		}},
	}
	for i := range b.coldRounds {
		for _, s := range alternate(sides, i) {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if err := s.run(ctx, "cold"); err != nil {
				return nil, fmt.Errorf("%s (round %d): %w", s.name, i+1, err)
			}
			step(fmt.Sprintf("cold: %s, round %d of %d done", s.name, i+1, b.coldRounds))
		}
	}
	return []row{timeRow("cold build, empty GOCACHE, four platforms: slipway build vs a loop of go build",
		series["slipway"], series["loop"], "go build loop", 0)}, nil
}

// withEmptyCache runs f with GOCACHE set to a new empty directory, and
// removes it after.
func withEmptyCache(dir string, f func(env []string) error) error {
	cache, err := os.MkdirTemp(dir, "gocache-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(cache)
	return f([]string{"GOCACHE=" + cache})
}

// goBuild runs bare go build of the sample's ./cmd/hello for each
// platform, parallel at a time, into out/<os>_<arch>.
func goBuild(ctx context.Context, repo, out string, platforms []string, parallel int, env []string) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for _, p := range platforms {
		goos, goarch, _ := strings.Cut(p, "/")
		g.Go(func() error {
			cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w",
				"-o", filepath.Join(out, goos+"_"+goarch)+string(filepath.Separator), "./cmd/hello")
			cmd.Dir = repo
			cmd.Env = append(append(os.Environ(), env...), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0")
			if msg, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("go build for %s: %v\n%s", p, err, msg)
			}
			return nil
		})
	}
	return g.Wait()
}
