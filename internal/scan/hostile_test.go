package scan

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipwayci/slipway/internal/testkit"
)

// The attack: a waiver file in the repository (which a pull request may
// change) gives an id the step's last error quotes, and GitHub's runner
// would read it as a workflow command. On GitHub every error goes through
// the platform's stream, which defuses it, as push's errors do.
func TestGitHubHostileWaiverIDCannotIssueWorkflowCommand(t *testing.T) {
	fixture := filepath.Join(testkit.RepoRoot(t), "internal", "report", "testdata", "sample.json")
	dir := t.TempDir()
	waivers := filepath.Join(dir, "waivers.yaml")
	if err := os.WriteFile(waivers, []byte("waivers:\n  - id: \"##[error]pwned\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		environ []string
	}{
		{"a waiver id", []string{"INPUT_WAIVERS=" + waivers}},
		{"an input that is no value", []string{"INPUT_OFFLINE=##[error]pwned"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := run(t, dir, append([]string{"GITHUB_ACTIONS=true", "INPUT_FAIL_ON=none"}, tt.environ...), "--from", fixture)
			if code != 2 {
				t.Errorf("exit %d, want 2; stderr:\n%s", code, stderr)
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
