package main

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/slipwayci/slipway/bench/internal/benchkit"
)

// actionSteps are the step actions of one job, in order, each running
// scripts/action-install.sh before its command.
var actionSteps = []string{"build", "image", "scan", "push"}

// benchRelease is the tag the actions section releases slipway as, at
// @v0: a stable release (a pre-release holds no floating tag) that no
// real one will be for a while.
const benchRelease = "v0.99.0"

// actions measures what the four step actions of one job spend putting
// slipway on PATH, run as the runner runs them (each step's install sees
// what the steps before it added to GITHUB_PATH, each job starts with an
// empty RUNNER_TEMP and tool cache): at a release's floating tag, where
// the first step downloads the release from a local HTTP server and the
// others find it; and at a branch, where the first builds slipway from
// source. The peer is what a user adds to a job instead: go install of ko
// and crane. "Cold" is an empty GOCACHE, a fresh runner's; the module
// cache stays warm on both sides, so no row waits on the network.
func (b *bench) actions(ctx context.Context) ([]row, error) {
	dir := filepath.Join(b.work, "actions")
	step("actions: building and packaging a release of slipway for this machine")
	rel, err := b.benchRelease(dir)
	if err != nil {
		return nil, err
	}
	defer rel.srv.Close()

	coldCache := func(round int, side string) string {
		return filepath.Join(dir, "gocache", fmt.Sprintf("%s-%d", side, round))
	}
	job := func(tree, ref, gocache string) func(ctx context.Context, _ string) error {
		return func(ctx context.Context, _ string) error {
			return runJob(ctx, tree, ref, rel.srv.URL, gocache, filepath.Join(dir, "job"))
		}
	}
	peer := func(gocache string) func(ctx context.Context, _ string) error {
		return func(ctx context.Context, _ string) error {
			gobin := filepath.Join(dir, "gobin")
			defer os.RemoveAll(gobin)
			env := []string{"GOBIN=" + gobin}
			if gocache != "" {
				env = append(env, "GOCACHE="+gocache)
			}
			for _, pkg := range []string{"github.com/google/ko@" + benchkit.KoVersion,
				"github.com/google/go-containerregistry/cmd/crane@" + benchkit.CraneVersion} {
				if err := benchkit.Sh(dir, env, "go", "install", pkg); err != nil {
					return err
				}
			}
			return nil
		}
	}

	series := map[string][]benchkit.Sample{}
	measure := func(name string, rounds int, sides []contender) error {
		for i := range rounds {
			for _, s := range alternate(sides, i) {
				if err := ctx.Err(); err != nil {
					return err
				}
				sm, err := benchkit.Timed(func() error { return s.run(ctx, "") })
				if err != nil {
					return fmt.Errorf("%s (round %d): %w", s.name, i+1, err)
				}
				series[s.name] = append(series[s.name], sm)
			}
			step(fmt.Sprintf("actions %s: round %d of %d done", name, i+1, rounds))
		}
		return nil
	}

	// Warm: the Go build cache is this machine's, as on a developer's
	// machine or a runner that keeps it.
	if err := measure("warm", b.rounds, []contender{
		{"tag", job(rel.tree, "v0", "")},
		{"branch-warm", job(b.root, "main", "")},
		{"peer-warm", peer("")},
	}); err != nil {
		return nil, err
	}
	// Cold: a fresh runner's empty GOCACHE, for the branch and the peer.
	var cold []contender
	for _, side := range []string{"branch-cold", "peer-cold"} {
		cold = append(cold, contender{side, func(ctx context.Context, _ string) error {
			gocache := coldCache(len(series[side]), side) // a new one each round
			defer os.RemoveAll(gocache)
			if side == "peer-cold" {
				return peer(gocache)(ctx, "")
			}
			return job(b.root, "main", gocache)(ctx, "")
		}})
	}
	if err := measure("cold", b.coldRounds, cold); err != nil {
		return nil, err
	}

	const what = "actions: install per job of the build, image, scan and push actions"
	peerName := fmt.Sprintf("go install ko %s + crane %s", benchkit.KoVersion, benchkit.CraneVersion)
	return []row{
		timeRow(what+", at a release tag (one download, three found on PATH), vs "+peerName+", empty GOCACHE",
			series["tag"], series["peer-cold"], "go install ×2, cold", 0),
		timeRow(what+", at a branch (one build from source), empty GOCACHE, vs "+peerName+", empty GOCACHE",
			series["branch-cold"], series["peer-cold"], "go install ×2, cold", 0),
		timeRow(what+", at a branch, warm GOCACHE, vs "+peerName+", warm GOCACHE",
			series["branch-warm"], series["peer-warm"], "go install ×2, warm", 0),
	}, nil
}

// runJob runs the install of each step action of one job at ref, from the
// action tree at tree, as the runner runs them: GITHUB_PATH gathered by
// the steps before first on PATH, one RUNNER_TEMP and tool cache for the
// job, removed after it.
func runJob(ctx context.Context, tree, ref, url, gocache, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	temp, err := os.MkdirTemp(dir, "job-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(temp)
	ghPath := filepath.Join(temp, "github_path")
	for _, s := range actionSteps {
		data, _ := os.ReadFile(ghPath)
		added := strings.Fields(string(data))
		slices.Reverse(added)
		env := []string{
			"PATH=" + strings.Join(append(added, os.Getenv("PATH")), string(os.PathListSeparator)),
			"SLIPWAY_ACTION_REF=" + ref, "SLIPWAY_STEPS=" + s, "SLIPWAY_RELEASE_URL=" + url,
			"RUNNER_TEMP=" + temp, "RUNNER_TOOL_CACHE=" + filepath.Join(temp, "toolcache"), "GITHUB_PATH=" + ghPath,
		}
		if gocache != "" {
			env = append(env, "GOCACHE="+gocache)
		}
		if err := benchkit.Sh(temp, env, "bash", filepath.Join(tree, "scripts", "action-install.sh")); err != nil {
			return fmt.Errorf("the %s action's install: %w", s, err)
		}
	}
	return nil
}

// served is a release of slipway served over local HTTP, with the action
// tree that names it.
type served struct {
	tree string
	srv  *httptest.Server
}

// benchRelease builds slipway as a release is built (static, stamped,
// GOEXPERIMENT=jsonv2), packs this machine's binaries as the release's
// tarball, serves it, and writes an action tree naming it with its sums,
// as scripts/release-commit.sh does.
func (b *bench) benchRelease(dir string) (*served, error) {
	bin := filepath.Join(dir, "release-bin")
	err := benchkit.Sh(b.root, []string{"CGO_ENABLED=0", "GOEXPERIMENT=jsonv2"}, "go", "build", "-trimpath",
		"-ldflags", "-s -w -X github.com/slipwayci/slipway/internal/version.stamped="+strings.TrimPrefix(benchRelease, "v"),
		"-o", bin+string(filepath.Separator), "./cmd/...")
	if err != nil {
		return nil, err
	}
	assets := filepath.Join(dir, "assets", benchRelease)
	if err := os.MkdirAll(assets, 0o755); err != nil {
		return nil, err
	}
	name := fmt.Sprintf("slipway_%s_%s_%s.tar.gz", strings.TrimPrefix(benchRelease, "v"), runtime.GOOS, runtime.GOARCH)
	sum, err := packTarball(bin, filepath.Join(assets, name))
	if err != nil {
		return nil, err
	}
	tree := filepath.Join(dir, "tree")
	for _, d := range []string{"scripts", "actions"} {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
			return nil, err
		}
	}
	script, err := os.ReadFile(filepath.Join(b.root, "scripts", "action-install.sh"))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tree, "scripts", "action-install.sh"), script, 0o755); err != nil {
		return nil, err
	}
	release := benchRelease + "\n" + sum + "  " + name + "\n"
	if err := os.WriteFile(filepath.Join(tree, "actions", "RELEASE"), []byte(release), 0o644); err != nil {
		return nil, err
	}
	return &served{tree: tree, srv: httptest.NewServer(http.FileServer(http.Dir(filepath.Join(dir, "assets"))))}, nil
}

// packTarball writes the binaries in dir as a release tarball (files at
// the top level, best gzip, as scripts/package-release.sh makes it) and
// returns its sha256.
func packTarball(dir, path string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	gz, err := gzip.NewWriterLevel(io.MultiWriter(f, h), gzip.BestCompression)
	if err != nil {
		return "", err
	}
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return "", err
		}
		if err := tw.WriteHeader(&tar.Header{Name: e.Name(), Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			return "", err
		}
		if _, err := tw.Write(data); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	if err := gz.Close(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), f.Close()
}
