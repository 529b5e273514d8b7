package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// templateImages are the images templates/slipway.gitlab-ci.yml names on a
// branch, pinned as a release pins them.
var templateImages = []string{
	"ghcr.io/slipwayci/slipway=ghcr.io/slipwayci/slipway:1.2.3@sha256:" + strings.Repeat("a", 64),
	"ghcr.io/slipwayci/slipway:go=ghcr.io/slipwayci/slipway:1.2.3-go@sha256:" + strings.Repeat("b", 64),
}

// TestReleaseCommit runs scripts/release-commit.sh in a copy of the
// repository: the commit a release's tags name records the release for the
// actions and pins the GitLab template, and only the newest release of a
// series gets its floating tags.
func TestReleaseCommit(t *testing.T) {
	requireE2E(t, "bash", "git", "rsync")
	sums := strings.Repeat("1", 64) + "  slipway_1.2.3_darwin_arm64.tar.gz\n" +
		strings.Repeat("2", 64) + "  slipway_1.2.3_linux_amd64.tar.gz\n"
	// One copy of the repository, cloned for each case: a clone is cheap.
	base, built := newRepo(t, nil)

	t.Run("commit and tags", func(t *testing.T) {
		t.Parallel()
		repo := cloneRepo(t, base)
		git(t, repo, "tag", "v1.2.3") // as the release job tags the build
		sumsFile := filepath.Join(t.TempDir(), "SHA256SUMS")
		writeFile(t, sumsFile, sums)

		o, err := releaseCommit(t, repo, append([]string{"v1.2.3", sumsFile}, templateImages...)...)
		if err != nil {
			t.Fatalf("release-commit.sh: %v", err)
		}
		if got, want := strings.Fields(o.Stdout), []string{"v1.2", "v1"}; !cmp.Equal(got, want) {
			t.Errorf("floating tags %q, want %q", got, want)
		}
		head := gitOut(t, repo, "rev-parse", "HEAD")
		if got := gitOut(t, repo, "rev-parse", "HEAD^"); got != built {
			t.Errorf("the release commit's parent is %s, want the built commit %s", got, built)
		}
		if got := gitOut(t, repo, "rev-parse", "v1.2.3^{commit}"); got != head {
			t.Errorf("v1.2.3 names %s, want the release commit %s", got, head)
		}
		if got := gitOut(t, repo, "cat-file", "-t", "v1.2.3"); got != "tag" {
			t.Errorf("v1.2.3 is a %s, want an annotated tag", got)
		}
		changed := strings.Fields(gitOut(t, repo, "diff", "--name-only", built, head))
		if diff := cmp.Diff([]string{"actions/RELEASE", "templates/slipway.gitlab-ci.yml"}, changed); diff != "" {
			t.Errorf("files the release commit changes (-want +got):\n%s", diff)
		}
		if got := readFile(t, filepath.Join(repo, "actions", "RELEASE")); got != "v1.2.3\n"+sums {
			t.Errorf("actions/RELEASE = %q", got)
		}
		tmpl := readFile(t, filepath.Join(repo, "templates", "slipway.gitlab-ci.yml"))
		for _, pin := range templateImages {
			_, pinned, _ := strings.Cut(pin, "=")
			if !strings.Contains(tmpl, "    name: "+pinned+"\n") {
				t.Errorf("the template does not name %s", pinned)
			}
		}
		if strings.Contains(tmpl, "name: ghcr.io/slipwayci/slipway\n") || strings.Contains(tmpl, "slipway:go\n") {
			t.Error("the template still names an image by tag")
		}
	})

	t.Run("floating tags", func(t *testing.T) {
		t.Parallel()
		repo := cloneRepo(t, base)
		for _, tag := range []string{"v1.2.9", "v1.10.0", "v2.0.0-rc.1"} {
			git(t, repo, "tag", tag)
		}
		for _, tt := range []struct{ tag, want string }{
			{"v1.2.10", "v1.2"},     // v1.10.0 is newer in v1
			{"v1.11.0", "v1.11 v1"}, // the newest of both
			{"v1.2.4", ""},          // v1.2.9 is newer
			{"v2.0.0-rc.2", ""},     // a pre-release moves nothing
			{"v2.0.0", "v2.0 v2"},   // pre-releases do not count
		} {
			t.Run(tt.tag, func(t *testing.T) {
				clone := cloneRepo(t, repo)
				sumsFile := filepath.Join(t.TempDir(), "SHA256SUMS")
				writeFile(t, sumsFile, strings.Repeat("3", 64)+"  slipway_"+strings.TrimPrefix(tt.tag, "v")+"_linux_amd64.tar.gz\n")
				o, err := releaseCommit(t, clone, append([]string{tt.tag, sumsFile}, templateImages...)...)
				if err != nil {
					t.Fatalf("release-commit.sh: %v", err)
				}
				if got := strings.Join(strings.Fields(o.Stdout), " "); got != tt.want {
					t.Errorf("floating tags %q, want %q", got, tt.want)
				}
			})
		}
	})

	t.Run("refusals", func(t *testing.T) {
		t.Parallel()
		sumsFile := filepath.Join(t.TempDir(), "SHA256SUMS")
		writeFile(t, sumsFile, sums)
		other := filepath.Join(t.TempDir(), "SHA256SUMS")
		writeFile(t, other, strings.Repeat("4", 64)+"  slipway_9.9.9_linux_amd64.tar.gz\n")
		notSums := filepath.Join(t.TempDir(), "SHA256SUMS")
		writeFile(t, notSums, "hello\n")
		for _, tt := range []struct {
			name  string
			setup func(t *testing.T, repo string)
			args  []string
			want  string
		}{
			{"not a release tag", nil, []string{"v1", sumsFile}, "v1 is not a release tag"},
			{"sums of another release", nil, []string{"v1.2.3", other}, "lists no tarball of 1.2.3"},
			{"not a SHA256SUMS", nil, []string{"v1.2.3", notSums}, "is not a SHA256SUMS"},
			{"tag elsewhere", func(t *testing.T, repo string) {
				id := []string{"-c", "user.name=E2E", "-c", "user.email=e2e@slipway.invalid"}
				git(t, repo, append(id, "commit", "-q", "--allow-empty", "-m", "old")...)
				git(t, repo, "tag", "v1.2.3")
				git(t, repo, append(id, "commit", "-q", "--allow-empty", "-m", "new")...)
			}, []string{"v1.2.3", sumsFile}, "a release tag is never moved"},
			{"dirty tree", func(t *testing.T, repo string) {
				writeFile(t, filepath.Join(repo, "go.mod"), "module x\n")
			}, []string{"v1.2.3", sumsFile}, "not clean"},
			{"an image the template does not name", nil,
				[]string{"v1.2.3", sumsFile, templateImages[0], "ghcr.io/slipwayci/other=ghcr.io/x@sha256:" + strings.Repeat("c", 64)},
				"names no image ghcr.io/slipwayci/other"},
			{"a pin without a digest", nil, []string{"v1.2.3", sumsFile, "ghcr.io/slipwayci/slipway=ghcr.io/slipwayci/slipway:1.2.3"},
				"is not IMAGE=REFERENCE@sha256:DIGEST"},
			{"an image left unpinned", nil, []string{"v1.2.3", sumsFile, templateImages[0]}, "still names images by tag"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				repo := cloneRepo(t, base)
				if tt.setup != nil {
					tt.setup(t, repo)
				}
				before := gitOut(t, repo, "rev-parse", "HEAD")
				o, err := releaseCommit(t, repo, tt.args...)
				if err == nil {
					t.Fatal("release-commit.sh succeeded")
				}
				if !strings.Contains(o.Stderr, tt.want) {
					t.Errorf("stderr %q lacks %q", o.Stderr, tt.want)
				}
				if after := gitOut(t, repo, "rev-parse", "HEAD"); after != before {
					t.Error("a refused release made a commit")
				}
				if _, err := os.Stat(filepath.Join(repo, "actions", "RELEASE")); err == nil {
					t.Error("a refused release wrote actions/RELEASE")
				}
			})
		}
	})
}

// cloneRepo clones repo, tags and all, into a new directory.
func cloneRepo(t *testing.T, repo string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("git", "clone", "-q", repo, dir).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	return dir
}

// releaseCommit runs scripts/release-commit.sh (the repository's own, so
// what is tested is what releases run) in repo.
func releaseCommit(t *testing.T, repo string, args ...string) (output, error) {
	t.Helper()
	env := append(toolEnv(t), "GIT_CONFIG_GLOBAL="+os.DevNull, "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Slipway Release", "GIT_AUTHOR_EMAIL=release@slipway.invalid",
		"GIT_COMMITTER_NAME=Slipway Release", "GIT_COMMITTER_EMAIL=release@slipway.invalid")
	script := filepath.Join(must(t, repoRoot), "scripts", "release-commit.sh")
	o, err := run(t, repo, env, "bash", append([]string{script}, args...)...)
	logOutput(t, "release-commit.sh", o)
	return o, err
}

// gitOut runs git in dir and returns its output, trimmed.
func gitOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL="+os.DevNull, "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}
