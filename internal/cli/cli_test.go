package cli

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/slipwayci/slipway/internal/testkit"
)

// The attack: an error raised before a step knows its platform quotes the
// command line (a flag's value, a step's name) and on GitHub would be read
// as a workflow command. Run prints it through a platform stream too.
func TestRunDefusesAnEarlyErrorOnGitHub(t *testing.T) {
	for _, environ := range [][]string{{"GITHUB_ACTIONS=true"}, nil} {
		var stderr bytes.Buffer
		code := run(context.Background(), Env{Environ: environ}, &stderr, "slipway build", func(context.Context, Env) error {
			return Usagef(`invalid value "##[error]pwned" for flag -platforms`)
		})
		if code != ExitUsage {
			t.Errorf("%v: exit %d, want %d", environ, code, ExitUsage)
		}
		if !strings.Contains(stderr.String(), "pwned") || strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("%v: stderr = %q, want the error on one line", environ, stderr.String())
		}
		if cmds := testkit.WorkflowCommands(stderr.String()); len(cmds) > 0 && environ != nil {
			t.Errorf("stderr issues workflow commands on GitHub: %q", cmds)
		}
	}
	// An error already printed by the step is not printed again.
	var stderr bytes.Buffer
	if code := run(context.Background(), Env{}, &stderr, "slipway scan", func(context.Context, Env) error {
		return Reported(&bytes.Buffer{}, "slipway scan", Policy(errors.New("policy refuses")))
	}); code != ExitPolicy || stderr.Len() != 0 {
		t.Errorf("exit %d, stderr %q; want 3 and nothing printed twice", code, stderr.String())
	}
}
