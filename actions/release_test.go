package actions

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/slipwayci/slipway/internal/promote"
)

// workflow is a GitHub workflow, as far as these tests read it.
type workflow struct {
	Jobs map[string]struct {
		Steps []struct {
			ID   string            `yaml:"id"`
			Uses string            `yaml:"uses"`
			With map[string]string `yaml:"with"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

func loadWorkflow(t *testing.T, name string) (workflow, string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", ".github", "workflows", name))
	if err != nil {
		t.Fatal(err)
	}
	var wf workflow
	if err := yaml.Unmarshal(data, &wf); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return wf, string(data)
}

// pinned is a third-party action pinned by commit, with the tag it was
// as a comment: OWNER/REPO[/PATH]@<40 hex> # vX.Y.Z.
var pinned = regexp.MustCompile(`^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40} # v\d+(\.\d+)*$`)

// TestWorkflowsPinActions: every action slipway's workflows use from
// another repository is pinned by a full commit SHA, not a tag that can be
// moved under them.
func TestWorkflowsPinActions(t *testing.T) {
	names, err := filepath.Glob(filepath.Join("..", ".github", "workflows", "*.yml"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no workflows: %v", err)
	}
	uses := regexp.MustCompile(`(?m)^\s*(?:-\s+)?uses:\s*(.+?)\s*$`)
	for _, path := range names {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range uses.FindAllStringSubmatch(string(data), -1) {
			u := m[1]
			if strings.HasPrefix(u, "./") {
				continue
			}
			if !pinned.MatchString(u) {
				t.Errorf("%s: uses: %s is not pinned by commit (OWNER/REPO@<40 hex> # vX.Y.Z)", filepath.Base(path), u)
			}
		}
	}
}

// TestBasesPinned: the bases of slipway's own images, in the Dockerfile
// and the release workflow, are pinned by digest (scripts/pin-images.sh
// --check, which the release runs, says the same).
func TestBasesPinned(t *testing.T) {
	digest := regexp.MustCompile(`@sha256:[0-9a-f]{64}$`)
	data, err := os.ReadFile(filepath.Join("..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	args := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^ARG (\w+_IMAGE)=(\S+)$`).FindAllStringSubmatch(string(data), -1) {
		args[m[1]] = m[2]
	}
	for _, m := range regexp.MustCompile(`(?m)^FROM (?:--platform=\S+ )?(\S+)`).FindAllStringSubmatch(string(data), -1) {
		ref := m[1]
		if arg, ok := strings.CutPrefix(ref, "${"); ok {
			ref = args[strings.TrimSuffix(arg, "}")]
		}
		if !digest.MatchString(ref) {
			t.Errorf("Dockerfile: FROM %s (%s) is not pinned by digest", m[1], ref)
		}
	}

	wf, _ := loadWorkflow(t, "release.yml")
	bases := 0
	for _, s := range wf.Jobs["release"].Steps {
		if b, ok := s.With["base"]; ok && s.Uses == "./actions/image" {
			bases++
			if !digest.MatchString(b) {
				t.Errorf("release.yml: step %s images on %s, not pinned by digest", s.ID, b)
			}
		}
	}
	if bases == 0 {
		t.Error("release.yml images nothing on a base")
	}
}

// TestReleaseGates: the release scans slipway with its own scan action
// before it pushes or publishes anything, and the environments it promotes
// to exist, the production image's gated on that scan.
func TestReleaseGates(t *testing.T) {
	wf, _ := loadWorkflow(t, "release.yml")
	steps := wf.Jobs["release"].Steps
	index := map[string]int{}
	for i, s := range steps {
		if s.ID != "" {
			index[s.ID] = i
		}
	}
	scan, ok := index["scan"]
	if !ok || steps[scan].Uses != "./actions/scan" {
		t.Fatal("release.yml's release job has no ./actions/scan step with id scan")
	}
	if f := steps[scan].With["fail-on"]; f == "none" {
		t.Error("the release's scan fails on nothing")
	}
	for _, later := range []string{"push", "push-go", "sign", "commit", "upload", "staging"} {
		if i, ok := index[later]; !ok || i < scan {
			t.Errorf("step %s is not after the scan", later)
		}
	}

	cfg, err := promote.LoadConfig(filepath.Join("..", ".slipway.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	_, text := loadWorkflow(t, "release.yml")
	for _, env := range regexp.MustCompile(`(?m)^\s+to: ([a-z][\w.-]*)$`).FindAllStringSubmatch(text, -1) {
		if _, err := cfg.Environment(env[1]); err != nil {
			t.Errorf("release.yml promotes to %s: %v", env[1], err)
		}
	}
	for _, name := range []string{"staging", "production"} {
		e, err := cfg.Environment(name)
		if err != nil {
			t.Fatal(err)
		}
		if e.Gates.Scan == nil {
			t.Errorf(".slipway.yaml: %s has no scan gate", name)
		}
	}
}
