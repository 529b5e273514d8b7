// Package dispatch runs slipway's steps git-style: `slipway build …` runs
// the slipway-build program found next to slipway or on PATH.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/version"
)

const prefix = "slipway-"

// Finder locates step programs.
type Finder struct {
	// Self is the path of the running slipway program; its directory is
	// searched first, so a release unpacked anywhere works without PATH.
	Self string
	// Path is the PATH list to search after it.
	Path string
}

// Find returns the program for step.
func (f Finder) Find(step string) (string, error) {
	for _, dir := range f.dirs() {
		p := filepath.Join(dir, prefix+step+exeSuffix())
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%q is not a slipway step; available: %s", step, strings.Join(f.Steps(), ", "))
}

// Steps lists the steps installed next to slipway or on PATH.
func (f Finder) Steps() []string {
	seen := map[string]bool{}
	for _, dir := range f.dirs() {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			name := strings.TrimSuffix(e.Name(), exeSuffix())
			if strings.HasPrefix(name, prefix) && !e.IsDir() && len(name) > len(prefix) {
				seen[strings.TrimPrefix(name, prefix)] = true
			}
		}
	}
	steps := make([]string, 0, len(seen))
	for s := range seen {
		steps = append(steps, s)
	}
	sort.Strings(steps)
	if len(steps) == 0 {
		return []string{"(none found; install slipway-<step> next to slipway)"}
	}
	return steps
}

func (f Finder) dirs() []string {
	var dirs []string
	if f.Self != "" {
		dirs = append(dirs, filepath.Dir(f.Self))
	}
	for _, d := range filepath.SplitList(f.Path) {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

func exeSuffix() string {
	if runtime.GOOS == "windows" {
		return ".exe"
	}
	return ""
}

const usage = `usage: slipway <step> [flags]

Slipway ships a Go service from source to production:
  build     cross-compile a GOOS/GOARCH matrix, reproducibly
  image     layer the binaries onto a base image (OCI layout, SBOMs)
  scan      trivy, govulncheck and gosec with one policy
  push      publish to any registry, signed, tags last
  sign      sign an image something else pushed (keyless or with a key)
  promote   move a digest between environments, gated by evidence
  history   list an environment's promotions
  verify    check an image's signature and evidence, as promote would

'slipway <step> --help' shows a step's flags.
`

// Main runs `slipway <step> args…`. The step's own exit code is passed
// through unchanged.
func Main(ctx context.Context, env cli.Env, f Finder) error {
	if len(env.Args) == 0 {
		fmt.Fprint(env.Stderr, usage)
		return cli.Usagef("no step given; installed steps: %s", strings.Join(f.Steps(), ", "))
	}
	step, args := env.Args[0], env.Args[1:]
	switch step {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(env.Stdout, usage)
		fmt.Fprintf(env.Stdout, "\ninstalled steps: %s\n", strings.Join(f.Steps(), ", "))
		return nil
	case "-version", "--version", "version":
		fmt.Fprintf(env.Stdout, "slipway %s\n", version.String())
		return nil
	}
	if strings.HasPrefix(step, "-") {
		return cli.Usagef("flag %s given before a step; use slipway <step> %s", step, step)
	}
	prog, err := f.Find(step)
	if err != nil {
		return cli.Usage(err)
	}
	return run(ctx, prog, args, env)
}

func run(ctx context.Context, prog string, args []string, env cli.Env) error {
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = env.Environ
	cmd.Dir = env.Dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = orEmpty(env.Stdin), env.Stdout, env.Stderr
	// On cancellation the step gets SIGTERM-like treatment from its own
	// signal handling; it shares our process group and saw the signal too.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code := ee.ExitCode()
		if code < 0 {
			code = cli.ExitFailure
		}
		// The step has printed its own error.
		return &cli.Silent{Code: code}
	}
	if err != nil {
		return fmt.Errorf("running %s: %w", filepath.Base(prog), err)
	}
	return nil
}

func orEmpty(r io.Reader) io.Reader {
	if r == nil {
		return strings.NewReader("")
	}
	return r
}
