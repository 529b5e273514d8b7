package e2e

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/registrytest"
)

// promoteGitLabPipeline builds, images, pushes and promotes the sample app
// with the template's jobs, to a registry that wants a password: the
// promote job gets the digest from the push job's dotenv report only.
func promoteGitLabPipeline(host string) string {
	return `include:
  - local: templates/slipway.gitlab-ci.yml

build:
  extends: .slipway-build
  variables:
    SLIPWAY_DIR: ` + sampleApp + `

# Not "image": that top-level key is the pipeline's default image.
oci:
  extends: .slipway
  stage: test
  needs: [build]
  variables:
    SLIPWAY_DIR: ` + sampleApp + `
  script:
    - slipway image
  artifacts:
    paths: [dist/]

push:
  extends: .slipway-push
  needs: [oci]
  variables:
    SLIPWAY_TO: ` + host + `/gl/ci
    SLIPWAY_TAG: type=raw,value=main
    SLIPWAY_USERNAME: ci

promote:
  extends: .slipway-promote
  needs: [push]
  variables:
    SLIPWAY_TO: staging
    SLIPWAY_APPROVED_BY: release-manager
    SLIPWAY_USERNAME: ci

check:
  extends: .slipway
  stage: .post
  needs: [promote]
  script:
    - mkdir -p check
    - printf '%s' "$SLIPWAY_PROMOTE_DIGEST" > check/digest
    - printf '%s' "$SLIPWAY_PROMOTE_REFS" > check/refs
    - printf '%s' "$SLIPWAY_PROMOTE_TAGS" > check/tags
    - printf '%s' "$SLIPWAY_PROMOTE_RECORD" > check/record
  artifacts:
    paths: [check/]
`
}

func TestPromoteGitLabTemplate(t *testing.T) {
	requireE2E(t, "gitlab-ci-local", "git", "rsync", "go", "docker-registry")
	bin := must(t, slipwayBin)
	a := registrytest.Auth{User: "ci", Password: "gl-Pa55word-e2e"}
	r := registrytest.New(t, registrytest.Options{Users: map[string]string{a.User: a.Password}})
	repo, _ := newRepo(t, map[string]string{
		".gitlab-ci.yml": promoteGitLabPipeline(r.Host),
		".slipway.yaml": `environments:
  staging:
    repository: ` + r.Host + `/gl/staging
    tags: [staging]
    gates:
      sbom: true
      approval: {approvers: [release-manager]}
`,
	})
	o, err := run(t, repo, toolEnv(t, bin), "gitlab-ci-local",
		"--force-shell-executor", "--shell-isolation",
		"--variable", "GITLAB_CI=true",
		"--variable", "SLIPWAY_REGISTRY_PASSWORD="+a.Password,
		"--artifacts-to-source",
		"--home", t.TempDir(),
	)
	logOutput(t, "gitlab-ci-local", o)
	if err != nil {
		t.Fatalf("gitlab-ci-local: %v", err)
	}
	for _, job := range []string{"build", "oci", "push", "promote", "check"} {
		if !regexp.MustCompile(`PASS\s+` + job + `\b`).MatchString(o.Stdout) {
			t.Errorf("job %s did not pass", job)
		}
	}
	if strings.Contains(o.Stdout+o.Stderr, a.Password) {
		t.Error("the registry password was printed")
	}
	rec, err := record.Load(filepath.Join(repo, "dist"))
	if err != nil {
		t.Fatal(err)
	}
	d := rec.Image.Digest
	check := filepath.Join(repo, "check")
	for k, want := range map[string]string{"digest": d, "refs": r.Host + "/gl/staging@" + d, "tags": "staging"} {
		if got := readFile(t, filepath.Join(check, k)); got != want {
			t.Errorf("SLIPWAY_PROMOTE_%s = %q, want %q", strings.ToUpper(k), got, want)
		}
	}
	if !strings.HasPrefix(readFile(t, filepath.Join(check, "record")), "sha256:") {
		t.Error("no SLIPWAY_PROMOTE_RECORD")
	}
	pushCheckImage(t, r, a, "gl/staging", "staging", repo)
	if tags, _ := r.Tags(t.Context(), "gl/staging", a); !strings.Contains(strings.Join(tags, " "), "slipway-history-staging") {
		t.Errorf("tags of gl/staging: %v", tags)
	}
}
