// Command push compares slipway push with crane push of the same OCI layout
// against a local docker-registry: wall time, requests and bytes, counted at
// the registry by the proxy in front of it. Runs alternate between the two
// tools, and the medians are reported with their ratio.
//
//	go run ./bench/push [-rounds 7] [-dist DIR] [-out results.md]
//
// It builds the sample app (testdata/apps/hello) with slipway build and
// slipway image unless -dist names a dist directory, and installs crane
// (CraneVersion) into a temporary GOBIN through the Go module proxy.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/registrytest"
)

// CraneVersion is the crane release compared against: the go-containerregistry
// slipway itself builds on.
const CraneVersion = "v0.22.1"

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

// sample is one measured push.
type sample struct {
	wall     time.Duration
	requests int
	// blobBytes reached the registry in blob uploads; allBytes in any
	// request body (manifests included).
	blobBytes, allBytes int64
}

// tool pushes the layout to repo and returns when it is done.
type tool struct {
	name string
	push func(ctx context.Context, repo string) error
}

func run(rounds int, dist, out string) error {
	ctx := context.Background()
	root, err := moduleRoot()
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
	if err := sh(root, nil, "go", "build", "-o", bin+"/", "./cmd/slipway-build", "./cmd/slipway-image", "./cmd/slipway-push"); err != nil {
		return err
	}
	step("installing crane " + CraneVersion)
	if err := sh(root, []string{"GOBIN=" + bin}, "go", "install", "github.com/google/go-containerregistry/cmd/crane@"+CraneVersion); err != nil {
		return err
	}
	if dist == "" {
		step("building and imaging testdata/apps/hello")
		if dist, err = sampleDist(root, work, bin); err != nil {
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
	layout := filepath.Join(dist, rec.Image.Layout)

	reg, err := registrytest.Start(registrytest.Options{})
	if err != nil {
		return err
	}
	defer reg.Close()

	tools := []tool{
		{"crane push", func(ctx context.Context, repo string) error {
			return sh(work, nil, filepath.Join(bin, "crane"), "push", layout, repo+":v1")
		}},
		{"slipway push --sbom=false", func(ctx context.Context, repo string) error {
			return sh(work, nil, filepath.Join(bin, "slipway-push"), "--dist", dist, "--to", repo, "--tag", "v1", "--sbom=false")
		}},
		{"slipway push (with SBOM referrers)", func(ctx context.Context, repo string) error {
			return sh(work, nil, filepath.Join(bin, "slipway-push"), "--dist", dist, "--to", repo, "--tag", "v1")
		}},
	}
	// cold: a new repository each run; warm: the same one again, unchanged.
	results := map[string]map[string][]sample{"cold": {}, "warm": {}}
	for i := range rounds {
		order := slices.Clone(tools)
		if i%2 == 1 {
			slices.Reverse(order)
		}
		for _, t := range order {
			repo := fmt.Sprintf("%s/bench/%s-%d", reg.Host, strings.Fields(t.name)[0], i)
			if strings.Contains(t.name, "SBOM") {
				repo += "-sbom"
			} else if strings.Contains(t.name, "slipway") {
				repo += "-nosbom"
			}
			for _, phase := range []string{"cold", "warm"} {
				s, err := measure(ctx, reg, func() error { return t.push(ctx, repo) })
				if err != nil {
					return fmt.Errorf("%s (%s, round %d): %w", t.name, phase, i+1, err)
				}
				results[phase][t.name] = append(results[phase][t.name], s)
			}
		}
		step(fmt.Sprintf("round %d of %d done", i+1, rounds))
	}

	var b strings.Builder
	fmt.Fprintf(&b, "Layout: %s (%s, %d platforms), %d rounds, medians; counted at the registry.\n\n", rec.Module, rec.Image.Digest[:19]+"…", len(rec.Image.Platforms), rounds)
	for _, phase := range []string{"cold", "warm"} {
		title := map[string]string{"cold": "Push to a new repository", "warm": "Re-push, unchanged"}[phase]
		fmt.Fprintf(&b, "### %s\n\n| tool | time | requests | blob bytes | all bytes | time vs crane | requests vs crane |\n|---|---|---|---|---|---|---|\n", title)
		base := median(results[phase]["crane push"])
		for _, t := range tools {
			m := median(results[phase][t.name])
			fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %.2f× | %.2f× |\n", t.name, m.wall.Round(time.Millisecond), m.requests, m.blobBytes, m.allBytes,
				float64(m.wall)/float64(base.wall), float64(m.requests)/float64(base.requests))
		}
		b.WriteString("\n")
	}
	fmt.Print(b.String())
	if out != "" {
		return os.WriteFile(out, []byte(b.String()), 0o644)
	}
	return nil
}

// measure runs push and counts what reached the registry meanwhile.
func measure(ctx context.Context, reg *registrytest.Registry, push func() error) (sample, error) {
	reg.Proxy.Reset()
	start := time.Now()
	if err := push(); err != nil {
		return sample{}, err
	}
	s := sample{wall: time.Since(start)}
	for _, q := range reg.Proxy.Requests() {
		s.requests++
		s.allBytes += q.Sent
		if q.Upload() {
			s.blobBytes += q.Sent
		}
	}
	return s, ctx.Err()
}

// median takes each measure's median on its own.
func median(ss []sample) sample {
	if len(ss) == 0 {
		return sample{}
	}
	mid := func(vals []int64) int64 {
		slices.Sort(vals)
		return vals[len(vals)/2]
	}
	var wall, req, blob, all []int64
	for _, s := range ss {
		wall = append(wall, int64(s.wall))
		req = append(req, int64(s.requests))
		blob = append(blob, s.blobBytes)
		all = append(all, s.allBytes)
	}
	return sample{wall: time.Duration(mid(wall)), requests: int(mid(req)), blobBytes: mid(blob), allBytes: mid(all)}
}

// sampleDist copies the sample app into a git repository, builds and
// images it, and returns its dist directory.
func sampleDist(root, work, bin string) (string, error) {
	dir := filepath.Join(work, "hello")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(root, "testdata", "apps", "hello"))); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, ".gitignore"), []byte("dist/\n"), 0o644); err != nil {
		return "", err
	}
	env := []string{"GIT_CONFIG_GLOBAL=" + os.DevNull, "GIT_AUTHOR_NAME=bench", "GIT_AUTHOR_EMAIL=bench@slipway.invalid",
		"GIT_COMMITTER_NAME=bench", "GIT_COMMITTER_EMAIL=bench@slipway.invalid",
		"GIT_AUTHOR_DATE=2026-01-02T03:04:05Z", "GIT_COMMITTER_DATE=2026-01-02T03:04:05Z"}
	for _, c := range [][]string{
		{"git", "init", "-q", "-b", "main"}, {"git", "add", "-A"}, {"git", "commit", "-q", "-m", "bench"},
		{filepath.Join(bin, "slipway-build"), "--platforms", "linux/amd64,linux/arm64"},
		{filepath.Join(bin, "slipway-image"), "--cache", "off"},
	} {
		if err := sh(dir, env, c[0], c[1:]...); err != nil {
			return "", err
		}
	}
	return filepath.Join(dir, "dist"), nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run from inside the slipway module")
	}
	return filepath.Dir(gomod), nil
}

// sh runs a command quietly, showing its output only if it fails.
func sh(dir string, env []string, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var buf strings.Builder
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, buf.String())
	}
	return nil
}

func step(msg string) { fmt.Fprintln(os.Stderr, "bench/push:", msg) }
