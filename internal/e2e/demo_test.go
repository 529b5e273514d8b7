package e2e

import (
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// demoTimeout bounds make demo, which builds slipway (make build) and the
// sample app for two platforms, then runs every step.
const demoTimeout = 25 * time.Minute

// TestDemo runs `make demo` in a fresh copy of the repository, as a new
// user would: the whole pipeline on the sample app, with nothing set up
// beforehand but Go and git.
func TestDemo(t *testing.T) {
	requireE2E(t, "git", "rsync", "make")
	budget(t, demoTimeout+5*time.Minute)
	// make build compiles with the flags of the run's shared builds: with
	// those done, it only links.
	must(t, slipwayBin)
	root := must(t, repoRoot)
	files := map[string]string{"Makefile": readFile(t, filepath.Join(root, "Makefile"))}
	err := filepath.WalkDir(filepath.Join(root, "testdata", "scan"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		files[filepath.ToSlash(rel)] = readFile(t, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := newRepo(t, files)

	out, err := runFor(t, demoTimeout, dir, toolEnv(t), "make", "demo")
	if err != nil {
		logOutput(t, "make demo", out)
		t.Fatalf("make demo: %v", err)
	}
	log := out.Stdout + out.Stderr
	for _, want := range []string{
		"Slipway build: example.com/hello",
		"Slipway image: example.com/hello",
		"Verdict: pass",
		"referrers by API",
		"gate from refused: the digest was never promoted to staging", // the dry run
		"Slipway promote: staging",
		"Slipway promote: production",
		"promoted from staging ← current",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("make demo's output lacks %q", want)
		}
	}
	if t.Failed() {
		logOutput(t, "make demo", out)
	}
}
