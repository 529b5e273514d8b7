// Package testkit holds helpers shared by slipway's tests: sample
// repositories with fixed commit dates, so two copies of one commit have
// the same hash wherever they live.
package testkit

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// CommitDate is the fixed author and committer date of sample commits.
const CommitDate = "2026-01-02T03:04:05Z"

// RepoRoot returns the root of the slipway repository: the directory
// above the test's own (go test runs a test in its package's directory)
// whose go.mod is slipway's. It does not use the source file's path,
// which -trimpath (make test builds with it) turns into an import path.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("finding the repository: %v", err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(data), "module github.com/slipwayci/slipway\n") {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("finding the repository: no slipway go.mod above the test's directory")
		}
		dir = parent
	}
}

// CopyDir copies the tree src into dst.
func CopyDir(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			if d.Name() == "dist" || d.Name() == ".git" {
				return filepath.SkipDir
			}
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, info.Mode().Perm())
	})
	if err != nil {
		t.Fatalf("copying %s: %v", src, err)
	}
}

// SampleRepo copies testdata/apps/<app> into dir, makes it a git
// repository and commits it at CommitDate. It returns dir.
func SampleRepo(t testing.TB, app, dir string) string {
	t.Helper()
	CopyDir(t, filepath.Join(RepoRoot(t), "testdata", "apps", app), dir)
	Git(t, dir, "init", "-q", "-b", "main")
	Commit(t, dir, "sample "+app)
	return dir
}

// Commit stages everything in dir and commits it at CommitDate.
func Commit(t testing.TB, dir, msg string) {
	t.Helper()
	Git(t, dir, "add", "-A")
	Git(t, dir, "commit", "-q", "--allow-empty", "-m", msg)
}

// Git runs git in dir with a fixed identity and dates, and returns its
// trimmed output.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=Slipway Test", "GIT_AUTHOR_EMAIL=test@slipway.invalid",
		"GIT_COMMITTER_NAME=Slipway Test", "GIT_COMMITTER_EMAIL=test@slipway.invalid",
		"GIT_AUTHOR_DATE="+CommitDate, "GIT_COMMITTER_DATE="+CommitDate,
		"GIT_CONFIG_NOSYSTEM=1", "HOME="+dir,
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}
