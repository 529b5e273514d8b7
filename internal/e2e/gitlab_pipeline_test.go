package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/registrytest"
	"github.com/slipwayci/slipway/internal/report"
	"github.com/slipwayci/slipway/internal/scan/scantest"
)

// gitlabFullPipeline chains every job of the template as a project would:
// build, image, scan, push to a registry that wants a password, and
// promote into staging. The image job needs the build; the scan job, a
// stage later, gets both through the stage order; the push job takes the
// image and the scan's evidence from the jobs it needs, and the promote
// job the digest from the push job's dotenv report only. The check job
// receives every job's outputs only through their dotenv reports, and
// their files only as artifacts, and hands them to the test.
func gitlabFullPipeline(host string) string {
	return `include:
  - local: templates/slipway.gitlab-ci.yml

variables:
  SLIPWAY_DIR: ` + sampleApp + `

build:
  extends: .slipway-build

# Not "image": that top-level key is the pipeline's default image.
container:
  extends: .slipway-image
  needs: [build]

scan:
  extends: .slipway-scan

push:
  extends: .slipway-push
  needs: [container, scan]
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
  stage: .post
  needs: [container, scan, push, promote]
  script:
    - mkdir -p check
    - printf '%s' "$SLIPWAY_IMAGE_DIGEST" > check/image-digest
    - printf '%s' "$SLIPWAY_SCAN_VERDICT" > check/verdict
    - printf '%s' "$SLIPWAY_SCAN_COUNTS" > check/counts
    - printf '%s' "$SLIPWAY_SCAN_GITLAB" > check/gitlab
    - printf '%s' "$SLIPWAY_SCAN_GITLAB_SAST" > check/gitlab-sast
    - printf '%s' "$SLIPWAY_PUSH_DIGEST" > check/push-digest
    - printf '%s' "$SLIPWAY_PUSH_REFS" > check/push-refs
    - printf '%s' "$SLIPWAY_PUSH_TAGS" > check/push-tags
    - printf '%s' "$SLIPWAY_PROMOTE_DIGEST" > check/promote-digest
    - printf '%s' "$SLIPWAY_PROMOTE_REFS" > check/promote-refs
    - printf '%s' "$SLIPWAY_PROMOTE_TAGS" > check/promote-tags
    - printf '%s' "$SLIPWAY_PROMOTE_RECORD" > check/promote-record
    - cp dist/slipway.json dist/findings.json dist/scan.intoto.json check/
    - cp gl-container-scanning-report.json gl-sast-report.json check/
  artifacts:
    paths: [check/]
`
}

// TestGitLabPipeline runs the template's whole pipeline in one
// gitlab-ci-local run: the image the build stage made is the one scanned,
// pushed and promoted, by digest, with the scan's evidence following it
// into staging, where promote's scan gate reads it.
func TestGitLabPipeline(t *testing.T) {
	requireE2E(t, "gitlab-ci-local", "git", "rsync", "go", "docker-registry")
	// slipway-scan needs GOEXPERIMENT=jsonv2 to scan the image with trivy.
	bin := must(t, slipwayBin)
	a := registrytest.Auth{User: "ci", Password: "gl-Pa55word-e2e"}
	r := registrytest.New(t, registrytest.Options{Users: map[string]string{a.User: a.Password}})
	repo, head := newRepo(t, map[string]string{
		".gitlab-ci.yml": gitlabFullPipeline(r.Host),
		".slipway.yaml": `environments:
  staging:
    repository: ` + r.Host + `/gl/staging
    tags: [staging]
    gates:
      scan: {maxSeverity: high, maxAge: 2d}
      sbom: true
      approval: {approvers: [release-manager]}
`,
	})

	o, err := run(t, repo, toolEnv(t, bin), "gitlab-ci-local",
		// As in TestGitLabTemplate: every job in its own copy of the
		// project, in a shell, with GitLab's GITLAB_CI, and the artifacts
		// copied back for the test.
		"--force-shell-executor", "--shell-isolation",
		"--variable", "GITLAB_CI=true",
		"--artifacts-to-source",
		"--home", t.TempDir(),
		// The scan offline, with the fixture databases.
		"--variable", "SLIPWAY_OFFLINE=true",
		"--variable", "SLIPWAY_CACHE_DIR="+scantest.TrivyDB(t),
		"--variable", "SLIPWAY_VULNDB="+scantest.VulnDB(t),
		// As a masked CI/CD variable would be.
		"--variable", "SLIPWAY_REGISTRY_PASSWORD="+a.Password,
	)
	logOutput(t, "gitlab-ci-local", o)
	if err != nil {
		t.Fatalf("gitlab-ci-local: %v", err)
	}
	for _, job := range []string{"build", "container", "scan", "push", "promote", "check"} {
		if !regexp.MustCompile(`PASS\s+` + job + `\b`).MatchString(o.Stdout) {
			t.Errorf("job %s did not pass", job)
		}
	}
	if strings.Contains(o.Stdout+o.Stderr, a.Password) {
		t.Error("the registry password was printed")
	}

	check := filepath.Join(repo, "check")
	rec, err := record.Load(check)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Image == nil || rec.Commit != head {
		t.Fatalf("the record the check job got: commit %s, image %+v; want %s with an image", rec.Commit, rec.Image, head)
	}
	d := rec.Image.Digest
	got := map[string]string{}
	for _, k := range []string{"image-digest", "verdict", "gitlab", "gitlab-sast", "push-digest", "push-refs", "push-tags", "promote-digest", "promote-refs", "promote-tags"} {
		got[k] = readFile(t, filepath.Join(check, k))
	}
	want := map[string]string{
		"image-digest": d,
		"verdict":      "pass",
		"gitlab":       "gl-container-scanning-report.json",
		"gitlab-sast":  "gl-sast-report.json",
		// What was pushed and promoted is what the build stage made.
		"push-digest":    d,
		"push-refs":      r.Host + "/gl/ci@" + d,
		"push-tags":      "main",
		"promote-digest": d,
		"promote-refs":   r.Host + "/gl/staging@" + d,
		"promote-tags":   "staging",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dotenv values in the check job (-want +got):\n%s", diff)
	}
	var counts map[string]int
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(check, "counts"))), &counts); err != nil || counts["medium"] != 1 {
		t.Errorf("SLIPWAY_SCAN_COUNTS = %v (%v), want one medium finding (G114)", counts, err)
	}
	if !strings.HasPrefix(readFile(t, filepath.Join(check, "promote-record")), "sha256:") {
		t.Error("no SLIPWAY_PROMOTE_RECORD")
	}

	// The registry agrees: both tags name the built index, whole, with its
	// SBOMs; staging has its history; and the scan gate passed on the
	// evidence the push attached.
	pushCheckImage(t, r, a, "gl/ci", "main", repo)
	pushCheckImage(t, r, a, "gl/staging", "staging", repo)
	if tags, _ := r.Tags(testContext(t), "gl/staging", a); !slices.Contains(tags, "slipway-history-staging") {
		t.Errorf("tags of gl/staging: %v, want slipway-history-staging among them", tags)
	}
	if sum := readFile(t, filepath.Join(repo, "promote-summary.md")); !regexp.MustCompile(`(?m)^\| scan \| ✅ pass \|`).MatchString(sum) {
		t.Errorf("promote-summary.md has no passing scan gate:\n%s", sum)
	}

	// The scan job scanned that image: its findings name the digest the
	// image job handed on.
	f, err := os.Open(filepath.Join(check, "findings.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := report.Read(f)
	if err != nil {
		t.Fatalf("findings.json: %v", err)
	}
	if rep.Scan.Image == nil || rep.Scan.Image.Digest != rec.Image.Digest || rep.Scan.Commit != head {
		t.Errorf("findings.json scanned image %+v at commit %s; want %s at %s", rep.Scan.Image, rep.Scan.Commit, rec.Image.Digest, head)
	}
	type subject struct {
		Digest map[string]string `json:"digest"`
	}
	var statement struct {
		Subject []subject `json:"subject"`
	}
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(check, "scan.intoto.json"))), &statement); err != nil {
		t.Fatalf("scan.intoto.json: %v", err)
	}
	if !slices.ContainsFunc(statement.Subject, func(s subject) bool { return "sha256:"+s.Digest["sha256"] == rec.Image.Digest }) {
		t.Errorf("scan.intoto.json's subjects %+v do not name the image %s", statement.Subject, rec.Image.Digest)
	}

	// GitLab's security reports: valid JSON of the right kind, with the
	// one source finding in sast and the image's (none) in
	// container_scanning.
	for file, kind := range map[string]string{
		"gl-container-scanning-report.json": "container_scanning",
		"gl-sast-report.json":               "sast",
	} {
		checkGitLabReport(t, filepath.Join(check, file), kind, map[string]int{"container_scanning": 0, "sast": 1}[kind])
	}
	// The job's own artifacts hold the same files, for browsing.
	for _, name := range []string{"gl-container-scanning-report.json", "gl-sast-report.json"} {
		if readFile(t, filepath.Join(repo, name)) != readFile(t, filepath.Join(check, name)) {
			t.Errorf("%s in the scan job's artifacts differs from what the check job received", name)
		}
	}
	if sum := readFile(t, filepath.Join(repo, "dist", "scan-summary.md")); !strings.Contains(sum, "pass") {
		t.Errorf("dist/scan-summary.md has no verdict:\n%s", sum)
	}
}

// checkGitLabReport checks a GitLab security report's top-level shape: the
// schema's required keys, the scan's type, and how many vulnerabilities.
func checkGitLabReport(t *testing.T, path, kind string, vulns int) {
	t.Helper()
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(readFile(t, path)), &doc); err != nil {
		t.Errorf("%s is not JSON: %v", path, err)
		return
	}
	var keys []string
	for k := range doc {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if diff := cmp.Diff([]string{"scan", "schema", "version", "vulnerabilities"}, keys); diff != "" {
		t.Errorf("%s top-level keys (-want +got):\n%s", path, diff)
	}
	var rep struct {
		Schema string `json:"schema"`
		Scan   struct {
			Type   string `json:"type"`
			Status string `json:"status"`
		} `json:"scan"`
		Vulnerabilities []json.RawMessage `json:"vulnerabilities"`
	}
	if err := json.Unmarshal([]byte(readFile(t, path)), &rep); err != nil {
		t.Fatal(err)
	}
	schema := strings.ReplaceAll(kind, "_", "-") + "-report-format.json"
	if rep.Scan.Type != kind || rep.Scan.Status != "success" || !strings.HasSuffix(rep.Schema, schema) || len(rep.Vulnerabilities) != vulns {
		t.Errorf("%s: type %q status %q schema %s, %d vulnerabilities; want %s, success, …/%s, %d",
			path, rep.Scan.Type, rep.Scan.Status, rep.Schema, len(rep.Vulnerabilities), kind, schema, vulns)
	}
}
