package build

import (
	"strings"
	"testing"

	"github.com/slipwayci/slipway/internal/testkit"
)

// The attack: a workflow hands the step untrusted text (a branch name, a
// pull request's title) as an input, and the error that quotes it would be
// read by the runner as a workflow command. On GitHub the step's last
// error goes through the platform's stream, which defuses it, as push's
// does.
func TestGitHubHostileInputInErrorCannotIssueWorkflowCommand(t *testing.T) {
	sample := testkit.SampleRepo(t, "hello", t.TempDir())
	for _, tt := range []struct {
		name    string
		environ []string
	}{
		{"an error quoting an input", []string{"INPUT_PLATFORMS=linux/amd64,##[error]pwned"}},
		{"an input that is no value", []string{"INPUT_PARALLEL=##[error]pwned"}},
		{"an error quoting a package", []string{"INPUT_PACKAGES=./##[error]pwned"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := run(t, sample, append([]string{"GITHUB_ACTIONS=true"}, tt.environ...))
			if code != 2 {
				t.Errorf("exit %d, want 2; stderr:\n%s", code, stderr)
			}
			if !strings.Contains(stderr, "pwned") {
				t.Errorf("stderr does not show the bad value:\n%s", stderr)
			}
			if cmds := testkit.WorkflowCommands(stderr); len(cmds) > 0 {
				t.Errorf("stderr issues workflow commands: %q", cmds)
			}
		})
	}
}
