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
	"github.com/slipwayci/slipway/internal/report"
	"github.com/slipwayci/slipway/internal/scan/scantest"
)

// gitlabScanPipeline chains the template's build, image and scan jobs as a
// project would. The image job needs the build; the scan job, a stage
// later, gets both through the stage order; the check job receives the
// image's and the scan's outputs only through their dotenv reports, and
// their files only as artifacts, and hands them to the test.
const gitlabScanPipeline = `include:
  - local: templates/slipway.gitlab-ci.yml

variables:
  SLIPWAY_DIR: ` + sampleApp + `

build:
  extends: .slipway-build

container:
  extends: .slipway-image
  needs: [build]

scan:
  extends: .slipway-scan

check:
  stage: deploy
  needs: [container, scan]
  script:
    - mkdir -p check
    - printf '%s' "$SLIPWAY_IMAGE_DIGEST" > check/image-digest
    - printf '%s' "$SLIPWAY_SCAN_VERDICT" > check/verdict
    - printf '%s' "$SLIPWAY_SCAN_COUNTS" > check/counts
    - printf '%s' "$SLIPWAY_SCAN_GITLAB" > check/gitlab
    - printf '%s' "$SLIPWAY_SCAN_GITLAB_SAST" > check/gitlab-sast
    - cp dist/slipway.json dist/findings.json dist/scan.intoto.json check/
    - cp gl-container-scanning-report.json gl-sast-report.json check/
  artifacts:
    paths: [check/]
`

func TestGitLabPipeline(t *testing.T) {
	requireE2E(t, "gitlab-ci-local", "git", "rsync", "go")
	// slipway-scan needs GOEXPERIMENT=jsonv2 to scan the image with trivy.
	bin := must(t, slipwayScanBin)
	repo, head := newRepo(t, map[string]string{".gitlab-ci.yml": gitlabScanPipeline})

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
	)
	logOutput(t, "gitlab-ci-local", o)
	if err != nil {
		t.Fatalf("gitlab-ci-local: %v", err)
	}
	for _, job := range []string{"build", "container", "scan", "check"} {
		if !regexp.MustCompile(`PASS\s+` + job + `\b`).MatchString(o.Stdout) {
			t.Errorf("job %s did not pass", job)
		}
	}

	check := filepath.Join(repo, "check")
	rec, err := record.Load(check)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Image == nil || rec.Commit != head {
		t.Fatalf("the record the check job got: commit %s, image %+v; want %s with an image", rec.Commit, rec.Image, head)
	}
	got := map[string]string{}
	for _, k := range []string{"image-digest", "verdict", "gitlab", "gitlab-sast"} {
		got[k] = readFile(t, filepath.Join(check, k))
	}
	want := map[string]string{
		"image-digest": rec.Image.Digest,
		"verdict":      "pass",
		"gitlab":       "gl-container-scanning-report.json",
		"gitlab-sast":  "gl-sast-report.json",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dotenv values in the check job (-want +got):\n%s", diff)
	}
	var counts map[string]int
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(check, "counts"))), &counts); err != nil || counts["medium"] != 1 {
		t.Errorf("SLIPWAY_SCAN_COUNTS = %v (%v), want one medium finding (G114)", counts, err)
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
