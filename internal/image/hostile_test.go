package image

import (
	"bytes"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipwayci/slipway/internal/testkit"
)

// The attack: text the step does not control reaches its last error (an
// input a workflow filled from a pull request, a registry's error body)
// and would be read by GitHub's runner as a workflow command. On GitHub
// every error goes through the platform's stream, which defuses it, as
// push's errors do.
func TestGitHubHostileErrorCannotIssueWorkflowCommand(t *testing.T) {
	registry := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"errors":[{"code":"MANIFEST_INVALID","message":"##[error]pwned\n::set-output name=digest::sha256:evil"}]}`))
	}))
	defer registry.Close()
	host := strings.TrimPrefix(registry.URL, "http://")

	repo, dist := sampleDist(t)
	for _, tt := range []struct {
		name    string
		environ []string
		code    int
	}{
		{"a registry's error body", []string{"INPUT_BASE=" + host + "/app:1"}, 1},
		{"an error quoting an input", []string{"INPUT_CACHE_MAX_SIZE=##[error]pwned"}, 2},
		{"an input that is no value", []string{"INPUT_PARALLEL=##[error]pwned"}, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			environ := testEnviron(append([]string{"GITHUB_ACTIONS=true"}, tt.environ...)...)
			_, stderr, code := runMain(t, filepath.Dir(dist), environ, "--dist", "dist", "--dir", repo, "--cache", sharedCache())
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, stderr)
			}
			if !strings.Contains(stderr, "pwned") {
				t.Errorf("stderr does not show the error:\n%s", stderr)
			}
			if cmds := testkit.WorkflowCommands(stderr); len(cmds) > 0 {
				t.Errorf("stderr issues workflow commands: %q", cmds)
			}
		})
	}
}

// The attack: --source is given a clone URL with its token in it, as
// CI_REPOSITORY_URL and many checkouts hold one. The image, its SBOMs and
// the record name the repository without it.
func TestSourceURLCredentialsNotInImage(t *testing.T) {
	const token = "ghs_s3cr3tT0ken"
	o, err := buildImage(t, Options{Source: "https://x-access-token:" + token + "@github.com/example/hello.git"})
	if err != nil {
		t.Fatal(err)
	}
	idx := testkit.LayoutIndex(t, o.Layout)
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Annotations[annSource]; got != "https://github.com/example/hello.git" {
		t.Errorf("source annotation = %q, want the URL without its login", got)
	}
	err = filepath.WalkDir(filepath.Dir(o.Layout), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err == nil && bytes.Contains(data, []byte(token)) {
			t.Errorf("%s holds the token", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
