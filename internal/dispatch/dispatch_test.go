package dispatch

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/testkit"
)

func writeStep(t *testing.T, dir, name, script string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "slipway-"+name), []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestDispatch(t *testing.T) {
	self, onPath := t.TempDir(), t.TempDir()
	writeStep(t, self, "echo", `echo "self: $*"; echo "to stderr" >&2; exit 3`)
	writeStep(t, onPath, "echo", `echo "path: $*"`)
	writeStep(t, onPath, "other", `echo "other in $PWD"`)
	os.WriteFile(filepath.Join(onPath, "slipway-notexec"), []byte("x"), 0o644)
	f := Finder{Self: filepath.Join(self, "slipway"), Path: onPath}
	work := t.TempDir()

	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{name: "next to slipway wins over PATH, args and exit code pass through", args: []string{"echo", "--flag", "a b"}, code: 3, stdout: "self: --flag a b\n", stderr: "to stderr\n"},
		{name: "found on PATH, runs in the working directory", args: []string{"other"}, stdout: "other in " + work + "\n"},
		{name: "unknown step lists the installed ones", args: []string{"nope"}, code: 2, stderr: `slipway: "nope" is not a slipway step; available: echo, notexec, other` + "\n"},
		{name: "a file that is not executable is not a step", args: []string{"notexec"}, code: 2, stderr: `slipway: "notexec" is not a slipway step`},
		{name: "no step", args: nil, code: 2, stderr: "slipway: no step given; installed steps: echo, notexec, other\n"},
		{name: "flag before step", args: []string{"--platforms", "x"}, code: 2, stderr: "slipway: flag --platforms given before a step; use slipway <step> --platforms\n"},
		{name: "version", args: []string{"--version"}, stdout: "slipway devel\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			env := cli.Env{Args: tt.args, Environ: []string{"PATH=/usr/bin:/bin"}, Stdout: &stdout, Stderr: &stderr, Dir: work}
			code := cli.ExitCode(&stderr, "slipway", Main(context.Background(), env, f))
			if code != tt.code {
				t.Errorf("exit %d, want %d", code, tt.code)
			}
			if tt.stdout != "" && stdout.String() != tt.stdout {
				t.Errorf("stdout = %q, want %q", stdout.String(), tt.stdout)
			}
			if tt.stderr != "" && !strings.HasSuffix(stderr.String(), tt.stderr) && !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr = %q, want %q", stderr.String(), tt.stderr)
			}
		})
	}
}

// TestRealBinaries builds slipway and slipway-build and checks that the
// dispatcher finds the step next to itself with an empty PATH.
func TestRealBinaries(t *testing.T) {
	bin := t.TempDir()
	cmd := exec.Command("go", "build", "-o", bin+string(filepath.Separator), "./cmd/slipway", "./cmd/slipway-build")
	cmd.Dir = testkit.RepoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building: %v\n%s", err, out)
	}
	run := exec.Command(filepath.Join(bin, "slipway"), "build", "--platforms", "linux/amd65")
	run.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	run.Dir = t.TempDir()
	out, err := run.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("err = %v, want exit 2\n%s", err, out)
	}
	if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], `slipway build: --platforms: unknown platform "linux/amd65"`) {
		t.Errorf("output is not the one-line error:\n%s", out)
	}
}
