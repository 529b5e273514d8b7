package e2e

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/slipwayci/slipway/internal/record"
)

// gitlabPipeline uses the template as a project would. The check job
// receives the build's outputs only through the dotenv report and dist/
// only as an artifact, and hands both to the test as its own artifact.
const gitlabPipeline = `include:
  - local: templates/slipway.gitlab-ci.yml

build:
  extends: .slipway-build
  variables:
    SLIPWAY_DIR: ` + sampleApp + `

check:
  stage: test
  needs: [build]
  script:
    - test -f "$SLIPWAY_BUILD_RECORD"
    - mkdir -p check
    - printf '%s' "$SLIPWAY_BUILD_RECORD" > check/record
    - printf '%s' "$SLIPWAY_BUILD_VERSION" > check/version
    - printf '%s' "$SLIPWAY_BUILD_ARTIFACTS" > check/artifacts
    - cp "$SLIPWAY_BUILD_RECORD" check/slipway.json
  artifacts:
    paths: [check/]
`

func TestGitLabTemplate(t *testing.T) {
	requireE2E(t, "gitlab-ci-local", "git", "rsync", "go")
	bin := must(t, slipwayBin)
	repo, head := newRepo(t, map[string]string{".gitlab-ci.yml": gitlabPipeline})

	o, err := run(t, repo, toolEnv(t, bin), "gitlab-ci-local",
		// The template names an image and there is no Docker: run every
		// job in a shell on this machine, with the slipway under test on
		// PATH. --shell-executor-no-image alone would only cover jobs
		// without an image.
		"--force-shell-executor",
		// Each job in its own copy of the project, so artifacts and the
		// dotenv report really travel from build to check.
		"--shell-isolation",
		// gitlab-ci-local sets GITLAB_CI=false; slipway needs the real
		// runner's value to act as on GitLab (inputs, dotenv outputs).
		"--variable", "GITLAB_CI=true",
		// Jobs' artifacts are copied back into the project for the test.
		"--artifacts-to-source",
		"--home", t.TempDir(),
	)
	logOutput(t, "gitlab-ci-local", o)
	if err != nil {
		t.Fatalf("gitlab-ci-local: %v", err)
	}
	for _, job := range []string{"build", "check"} {
		if !regexp.MustCompile(`PASS\s+` + job + `\b`).MatchString(o.Stdout) {
			t.Errorf("job %s did not pass", job)
		}
	}

	check := filepath.Join(repo, "check")
	version := readFile(t, filepath.Join(check, "version"))
	if want := wantVersion(head); version != want {
		t.Errorf("SLIPWAY_BUILD_VERSION = %q, want %q", version, want)
	}
	if got := readFile(t, filepath.Join(check, "record")); got != "dist/slipway.json" {
		t.Errorf("SLIPWAY_BUILD_RECORD = %q, want dist/slipway.json", got)
	}
	var arts []artifact
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(check, "artifacts"))), &arts); err != nil {
		t.Fatalf("SLIPWAY_BUILD_ARTIFACTS: %v", err)
	}
	if diff := cmp.Diff(wantArtifacts, arts, ignoreDigests); diff != "" {
		t.Errorf("SLIPWAY_BUILD_ARTIFACTS (-want +got):\n%s", diff)
	}

	// The record the check job got as an artifact agrees with the dotenv
	// values, and is the one the build wrote.
	rec, err := record.Load(check)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Version != version || rec.Commit != head {
		t.Errorf("record: version %s commit %s, want %s %s", rec.Version, rec.Commit, version, head)
	}
	var fromRecord []artifact
	for _, a := range rec.Artifacts {
		fromRecord = append(fromRecord, artifact{a.Name, "dist/" + a.Path, a.Platform, a.SHA256, a.Size})
	}
	if diff := cmp.Diff(arts, fromRecord); diff != "" {
		t.Errorf("record's artifacts differ from SLIPWAY_BUILD_ARTIFACTS (-dotenv +record):\n%s", diff)
	}
	if got, want := readFile(t, filepath.Join(check, "slipway.json")), readFile(t, filepath.Join(repo, "dist", "slipway.json")); got != want {
		t.Error("the record the check job received differs from the build job's dist/slipway.json")
	}

	checkDist(t, repo, arts, version, head)
	checkSummary(t, readFile(t, filepath.Join(repo, "dist", "summary.md")), version, arts)
}
