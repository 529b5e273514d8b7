// Package benchkit holds what Slipway's benchmarks share: the peers they
// are compared with, quiet commands, sample repositories, medians, and
// counts taken at the registry. It never links trivy, so programs that
// use it build without GOEXPERIMENT=jsonv2.
package benchkit

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The peers' releases compared against.
const (
	// KoVersion is the ko release the image step is compared with.
	KoVersion = "v0.19.1"
	// CraneVersion is the crane release push and promote are compared
	// with: the go-containerregistry slipway itself builds on.
	CraneVersion = "v0.22.1"
)

// ModuleRoot is the root of the slipway module the command runs in.
func ModuleRoot() (string, error) {
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

// Sh runs a command quietly, showing its output only if it fails.
func Sh(dir string, env []string, name string, args ...string) error {
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

// gitEnv gives sample commits a fixed identity and date, so a sample's
// commit hash is the same on every run.
var gitEnv = []string{"GIT_CONFIG_GLOBAL=" + os.DevNull, "GIT_CONFIG_NOSYSTEM=1",
	"GIT_AUTHOR_NAME=bench", "GIT_AUTHOR_EMAIL=bench@slipway.invalid",
	"GIT_COMMITTER_NAME=bench", "GIT_COMMITTER_EMAIL=bench@slipway.invalid",
	"GIT_AUTHOR_DATE=2026-01-02T03:04:05Z", "GIT_COMMITTER_DATE=2026-01-02T03:04:05Z"}

// SampleRepo copies testdata/apps/APP of the slipway module at root into
// dir, with dist/ ignored, and commits it in a new git repository.
func SampleRepo(root, app, dir string) error {
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(root, "testdata", "apps", app))); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, ".gitignore"), []byte("dist/\n"), 0o644); err != nil {
		return err
	}
	if err := Sh(dir, gitEnv, "git", "init", "-q", "-b", "main"); err != nil {
		return err
	}
	return Commit(dir, "sample "+app)
}

// Commit commits everything in dir.
func Commit(dir, msg string) error {
	if err := Sh(dir, gitEnv, "git", "add", "-A"); err != nil {
		return err
	}
	return Sh(dir, gitEnv, "git", "commit", "-q", "--allow-empty", "-m", msg)
}

// SampleDist builds testdata/apps/hello for linux/amd64 and linux/arm64
// and images it on slipway's static base, with the slipway-build and
// slipway-image binaries in bin, in a repository under work. It returns
// the dist directory.
func SampleDist(root, work, bin string) (string, error) {
	dir := filepath.Join(work, "hello")
	if err := SampleRepo(root, "hello", dir); err != nil {
		return "", err
	}
	for _, c := range [][]string{
		{filepath.Join(bin, "slipway-build"), "--platforms", "linux/amd64,linux/arm64"},
		{filepath.Join(bin, "slipway-image"), "--cache", "off"},
	} {
		if err := Sh(dir, nil, c[0], c[1:]...); err != nil {
			return "", err
		}
	}
	return filepath.Join(dir, "dist"), nil
}
