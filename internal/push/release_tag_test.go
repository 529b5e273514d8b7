package push

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/testkit"
)

// A project released as 6.14.1 (no "v") after an old v1.8.0 gets the same
// tags in a terminal, on GitHub, under act and on GitLab, as
// docker/metadata-action gives it.
func TestReleaseTagWithoutVIsTaggedTheSameEverywhere(t *testing.T) {
	dir, rec := testDist(t)
	testkit.SampleRepo(t, "hello", dir)
	testkit.Git(t, dir, "tag", "v1.8.0")
	testkit.Commit(t, dir, "release")
	testkit.Git(t, dir, "tag", "6.14.1")
	head := testkit.Git(t, dir, "rev-parse", "HEAD")
	rec.Commit, rec.Version = head, "6.14.1"
	if err := rec.Save(filepath.Join(dir, "dist")); err != nil {
		t.Fatal(err)
	}
	short := head[:7]
	want := "6.14.1,6.14,6,sha-" + short + ",latest"
	github := []string{"GITHUB_ACTIONS=true", "GITHUB_SHA=" + head, "GITHUB_REF=refs/tags/6.14.1", "GITHUB_REF_TYPE=tag", "GITHUB_REF_NAME=6.14.1", "INPUT_TO=ghcr.io/o/app", "INPUT_DRY_RUN=true"}
	for _, tc := range []struct {
		name    string
		environ []string
		args    []string
	}{
		{"terminal", nil, []string{"--to", "ghcr.io/o/app", "--dry-run"}},
		{"github", github, nil},
		{"act", append([]string{"ACT=true"}, github...), nil},
		{"gitlab", []string{"GITLAB_CI=true", "CI_COMMIT_SHA=" + head, "CI_COMMIT_TAG=6.14.1", "SLIPWAY_TO=ghcr.io/o/app", "SLIPWAY_DRY_RUN=true"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			environ := append([]string{"GITHUB_OUTPUT=" + out}, tc.environ...)
			stdout, stderr, code := runMain(t, dir, environ, "", tc.args...)
			if code != 0 {
				t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
			}
			if !strings.Contains(stdout, "tags: "+strings.ReplaceAll(want, ",", ", ")+"\n") {
				t.Errorf("tags, want %s:\n%s", want, stdout)
			}
		})
	}
	// And the record a build of this tag would write is what image and
	// push read: no pseudo-version over an older v tag.
	if r, err := record.Load(filepath.Join(dir, "dist")); err != nil || r.Version != "6.14.1" {
		t.Errorf("record version %v %v", r, err)
	}
}

// A raw tag whose template has nothing behind it is a configuration that
// cannot work here: exit 2, not a push without the tag.
func TestRawTagTemplateWithNoTagIsUsage(t *testing.T) {
	dir, rec := testDist(t)
	rec.Version = "1.0.1-0.20260102030405-0123456789ab" // built from no tag
	if err := rec.Save(filepath.Join(dir, "dist")); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runMain(t, dir, nil, "", "--to", "ghcr.io/o/app", "--dry-run", "--tag", "type=raw,value={{tag}}")
	if code != 2 || !strings.Contains(stderr, "{{tag}} is empty in this run") {
		t.Errorf("exit %d, want 2 naming {{tag}}:\n%s", code, stderr)
	}
}
