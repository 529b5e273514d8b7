package image

import (
	"net/http"
	"net/http/httptest"
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
