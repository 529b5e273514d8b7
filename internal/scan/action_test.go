package scan

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/slipwayci/slipway/internal/testkit"
)

// TestActionPassesEveryInputThroughEnv: each input of actions/scan
// reaches a flag of slipway scan as INPUT_<FLAG>, and no run: script holds
// an expression an input could be spliced into.
func TestActionPassesEveryInputThroughEnv(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testkit.RepoRoot(t), "actions", "scan", "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var action struct {
		Inputs  map[string]any `yaml:"inputs"`
		Outputs map[string]struct {
			Value string `yaml:"value"`
		} `yaml:"outputs"`
		Runs struct {
			Using string `yaml:"using"`
			Steps []struct {
				ID  string            `yaml:"id"`
				Run string            `yaml:"run"`
				Env map[string]string `yaml:"env"`
			} `yaml:"steps"`
		} `yaml:"runs"`
	}
	if err := yaml.Unmarshal(data, &action); err != nil {
		t.Fatal(err)
	}
	if action.Runs.Using != "composite" || len(action.Runs.Steps) != 2 {
		t.Fatalf("runs = %+v", action.Runs)
	}
	if !strings.Contains(action.Runs.Steps[0].Run, `"$GITHUB_ACTION_PATH/../../scripts/action-install.sh"`) {
		t.Errorf("first step does not install slipway: %q", action.Runs.Steps[0].Run)
	}
	for _, s := range action.Runs.Steps {
		if strings.Contains(s.Run, "${{") {
			t.Errorf("run: %q splices an expression into the script", s.Run)
		}
	}
	step := action.Runs.Steps[1]
	// The step may default the format (SARIF, as the slipway action
	// writes it) and then runs slipway scan.
	if lines := strings.Split(strings.TrimSpace(step.Run), "\n"); step.ID != "scan" || !slices.Contains([]string{"slipway scan", "exec slipway scan"}, lines[len(lines)-1]) {
		t.Errorf("scan step = %q %q", step.ID, step.Run)
	}

	// The flags slipway scan has, from its help.
	help, _, code := run(t, t.TempDir(), nil, "--help")
	if code != 0 {
		t.Fatal("--help failed")
	}
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z-]+)`).FindAllStringSubmatch(help, -1) {
		flags[m[1]] = true
	}
	// One input, or a renamed input before its new name.
	inputOf := regexp.MustCompile(`^\$\{\{ inputs\.([a-z-]+)(?: \|\| inputs\.([a-z-]+))? \}\}$`)
	var used []string
	for key, val := range step.Env {
		m := inputOf.FindStringSubmatch(val)
		if m == nil {
			t.Errorf("env %s = %q, not one input", key, val)
			continue
		}
		used = append(used, m[1])
		if m[2] != "" {
			used = append(used, m[2])
		}
		flagName := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(key, "INPUT_"), "_", "-"))
		if !flags[flagName] {
			t.Errorf("env %s names no flag of slipway scan (flags: %v)", key, flags)
		}
	}
	for in := range action.Inputs {
		if in != "slipway-version" && !slices.Contains(used, in) {
			t.Errorf("input %s never reaches slipway", in)
		}
	}
	for name, o := range action.Outputs {
		if o.Value != "${{ steps.scan.outputs."+name+" }}" {
			t.Errorf("output %s = %q", name, o.Value)
		}
	}
}
