package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/slipwayci/slipway/internal/registrytest"
	"github.com/slipwayci/slipway/internal/scan/scantest"
)

// docExample is what a recipe of docs/github.md must do under act: its job
// prints a line matching each of lines, and uploads a SARIF report if
// sarif is set. The first example whose key the recipe contains applies.
type docExample struct {
	key   string
	lines []string
	sarif bool
}

var docExamples = []docExample{
	{key: "uses: slipwayci/slipway@v0", lines: []string{`^pushed sha256:[0-9a-f]{64} as main,sha-[0-9a-f]{7}$`}, sarif: true},
	{key: "build: true", lines: []string{`^index sha256:[0-9a-f]{64} in dist/image$`}},
	{key: "entrypoint: api", lines: []string{`^built 0\.0\.0-20240101000000-[0-9a-f]{12}, image sha256:[0-9a-f]{64}$`}},
	{key: "actions/scan@v0", lines: []string{`^pushed [^ ]+/e2e/docs-[\w-]+@sha256:[0-9a-f]{64}, scan pass$`}, sarif: true},
	{key: "<40-hex commit of v1.2.3>", lines: []string{`^action-install: .*slipway 0\.4\.1`}},
}

// docWorkflow makes one workflow of the recipes in docs/github.md that use
// slipway's actions, a job each, as a project would paste them after the
// docs' checkout-and-Go preamble. What they name on the internet is moved
// to this machine, by adding inputs they leave to their defaults (scan
// offline with the fixture databases; push to the local registry) and by
// one rewrite, a base on gcr.io pulled from the local registry instead.
// A release commit's placeholder becomes the release commit. It returns
// the workflow and the example each job must satisfy.
func docWorkflow(t *testing.T, doc, host, commit string) (string, map[string]docExample) {
	t.Helper()
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(doc, -1)
	if len(blocks) == 0 || !strings.Contains(blocks[0][1], "actions/setup-go@") {
		t.Fatal("docs/github.md does not start with the checkout-and-Go preamble")
	}
	var preamble []any
	if err := yaml.Unmarshal([]byte(blocks[0][1]), &preamble); err != nil {
		t.Fatalf("docs/github.md's preamble: %v", err)
	}
	jobs := map[string]any{}
	want := map[string]docExample{}
	for _, b := range blocks[1:] {
		text := b[1]
		if !strings.Contains(text, "slipwayci/slipway") {
			continue
		}
		if strings.Contains(text, "\njobs:") || strings.HasPrefix(text, "jobs:") {
			// The matrix recipe's shape: .github/workflows/matrix-example.yml
			// is its whole, which TestMatrixExample runs.
			continue
		}
		i := slices.IndexFunc(docExamples, func(e docExample) bool { return strings.Contains(text, e.key) })
		if i < 0 {
			t.Fatalf("docs/github.md has a recipe the test does not know; add what it must print to docExamples:\n%s", text)
		}
		id := fmt.Sprintf("docs-%d", len(jobs)+1)
		want[id] = docExamples[i]
		text = strings.ReplaceAll(text, "<40-hex commit of v1.2.3>", commit)

		job := map[string]any{"runs-on": "ubuntu-latest"}
		if strings.HasPrefix(text, "permissions:") || strings.Contains(text, "\nsteps:") {
			if err := yaml.Unmarshal([]byte(text), &job); err != nil {
				t.Fatalf("docs/github.md recipe: %v\n%s", err, text)
			}
			job["runs-on"] = "ubuntu-latest"
		} else {
			var steps []any
			if err := yaml.Unmarshal([]byte(text), &steps); err != nil {
				t.Fatalf("docs/github.md recipe: %v\n%s", err, text)
			}
			job["steps"] = append(slices.Clone(preamble), steps...)
		}
		for _, s := range job["steps"].([]any) {
			localize(s.(map[string]any), host, id)
		}
		jobs[id] = job
	}
	wf, err := yaml.Marshal(map[string]any{"name": "docs", "on": "push", "jobs": jobs})
	if err != nil {
		t.Fatal(err)
	}
	return string(wf), want
}

// localize points a step of slipway's actions at this machine: the
// additions and the one rewrite docWorkflow describes.
func localize(step map[string]any, host, job string) {
	uses, _ := step["uses"].(string)
	spec, _, _ := strings.Cut(uses, "@")
	if !strings.HasPrefix(spec, "slipwayci/slipway") {
		return
	}
	with, _ := step["with"].(map[string]any)
	if with == nil {
		with = map[string]any{}
		step["with"] = with
	}
	add := func(k, v string) {
		if _, ok := with[k]; !ok {
			with[k] = v
		}
	}
	umbrella := spec == "slipwayci/slipway"
	if umbrella || spec == "slipwayci/slipway/actions/scan" {
		add("offline", "true")
		add("cache-dir", "${{ env.SLIPWAY_E2E_TRIVY_CACHE }}")
		add("vulndb", "${{ env.SLIPWAY_E2E_VULNDB }}")
	}
	if umbrella || spec == "slipwayci/slipway/actions/push" {
		add("to", host+"/e2e/"+job)
	}
	if b, ok := with["base"].(string); ok && strings.HasPrefix(b, "gcr.io/") {
		with["base"] = host + "/" + strings.TrimPrefix(b, "gcr.io/")
	}
}

// setupGoStandIn stands in for actions/setup-go: the host's Go is there,
// and so is the go.mod it is asked to read.
const setupGoStandIn = `name: setup-go stand-in
description: the host's Go in place of actions/setup-go, under act
inputs:
  go-version-file: {required: false}
runs:
  using: composite
  steps:
    - shell: bash
      env:
        FILE: ${{ inputs.go-version-file }}
      run: |
        command -v go >/dev/null || { echo "setup-go stand-in: no go on PATH" >&2; exit 1; }
        [ -z "$FILE" ] || [ -f "$FILE" ] || { echo "setup-go stand-in: no $FILE" >&2; exit 1; }
`

// uploadSARIFStandIn stands in for github/codeql-action/upload-sarif: it
// refuses what is not a SARIF 2.1.0 log and keeps what it would upload.
const uploadSARIFStandIn = `name: upload-sarif stand-in
description: keeps the SARIF report it is given, under act
inputs:
  sarif_file: {required: true}
runs:
  using: composite
  steps:
    - shell: bash
      env:
        FILE: ${{ inputs.sarif_file }}
      run: |
        grep -q '"version": *"2.1.0"' "$FILE" || { echo "upload-sarif stand-in: $FILE is not SARIF 2.1.0" >&2; exit 1; }
        cp "$FILE" "$SLIPWAY_E2E_OUT/$GITHUB_JOB.sarif"
`

// testDocExamples runs docs/github.md's recipes under act against the
// release: each job must succeed and print what its recipe says.
func testDocExamples(t *testing.T, rel *testRelease, gos goCounter) {
	doc := readFile(t, filepath.Join(must(t, repoRoot), "docs", "github.md"))
	reg := registrytest.New(t, registrytest.Options{})
	// The one rewritten base, gcr.io/distroless/static-debian12:nonroot,
	// is slipway's static base here, pushed by the released slipway.
	pushBase(t, rel.bin, reg.Host+"/distroless/static-debian12", "nonroot")

	wf, want := docWorkflow(t, doc, reg.Host, rel.commit)
	repo := newAppRepo(t, map[string]string{
		".github/workflows/docs.yml": wf,
		// The recipes' service has an api command.
		"cmd/api/main.go": "package main\n\nfunc main() {}\n",
	})
	out := t.TempDir()
	act := actRun{repo: repo, path: []string{gos.dir},
		env: []string{"SLIPWAY_E2E_OUT=" + out, "SLIPWAY_RELEASE_URL=" + rel.srv.URL,
			"SLIPWAY_E2E_TRIVY_CACHE=" + scantest.TrivyDB(t), "SLIPWAY_E2E_VULNDB=" + scantest.VulnDB(t),
			"NO_PROXY=127.0.0.1", "no_proxy=127.0.0.1"},
		localRep: slipwayStandIns(t, wf, rel),
	}
	before := len(gos.builds(t))
	log, err := act.run(t, "docs.yml")
	if err != nil {
		t.Errorf("act: %v", err)
	}
	for job, ex := range want {
		var result string
		var lines []string
		for _, e := range log {
			if e.JobID != job {
				continue
			}
			if e.JobResult != "" {
				result = e.JobResult
			}
			if e.RawOutput {
				lines = append(lines, strings.TrimSpace(e.Msg))
			}
		}
		if result != "success" {
			t.Errorf("%s (%s): job %q, want success", job, ex.key, result)
		}
		for _, re := range ex.lines {
			if !slices.ContainsFunc(lines, regexp.MustCompile(re).MatchString) {
				t.Errorf("%s (%s) printed no line matching %s", job, ex.key, re)
			}
		}
		_, err := os.Stat(filepath.Join(out, job+".sarif"))
		if ex.sarif && err != nil {
			t.Errorf("%s (%s): the upload-sarif step got no SARIF report: %v", job, ex.key, err)
		}
	}
	if builds := gos.builds(t)[before:]; len(builds) > 0 {
		t.Errorf("the recipes at a release compiled slipway: %q", builds)
	}
}

// slipwayStandIns is the act recipe for a workflow of slipway's actions at
// the release's refs: slipway's own repository at each from the release's
// tree (a branch, main, from its source), setup-go and upload-sarif by
// their stand-ins, anything else by one that fails.
func slipwayStandIns(t *testing.T, workflow string, rel *testRelease) []string {
	t.Helper()
	trees := map[string]string{}
	for _, use := range remoteUses(workflow) {
		key, _ := splitUses(use)
		repo, ref, _ := strings.Cut(key, "@")
		if repo != "slipwayci/slipway" {
			continue
		}
		switch ref {
		case "v0", "v0.4", actRelease, rel.commit:
			trees[key] = rel.tree
		case "main":
			trees[key] = rel.source
		default:
			t.Fatalf("slipway's actions at %s, which the test release has no tree for", ref)
		}
	}
	return standIns(t, remoteUses(workflow), trees, func(use string) string {
		switch {
		case strings.HasPrefix(use, "actions/setup-go@"):
			return setupGoStandIn
		case strings.HasPrefix(use, "github/codeql-action/upload-sarif@"):
			return uploadSARIFStandIn
		}
		return failingStandIn
	})
}

// pushBase pushes an image of slipway's static base, the sample app on
// it, for two platforms, to repo:tag with the slipway in bin.
func pushBase(t *testing.T, bin, repo, tag string) {
	t.Helper()
	app := newAppRepo(t, nil)
	slipway := filepath.Join(bin, "slipway")
	for _, args := range [][]string{
		{"build", "--platforms", "linux/amd64,linux/arm64"},
		{"image"},
		{"push", "--to", repo, "--tag", tag, "--sbom=false"},
	} {
		o, err := run(t, app, toolEnv(t), slipway, args...)
		logOutput(t, "slipway "+args[0], o)
		if err != nil {
			t.Fatalf("slipway %s: %v", strings.Join(args, " "), err)
		}
	}
}

// pinningWorkflow is docs/github.md's pinning table, a job a row: the
// build action at each kind of ref, printing which slipway wrote the
// record.
func pinningWorkflow(commit string) string {
	var b strings.Builder
	b.WriteString("name: pinning\non: push\njobs:\n")
	for _, row := range pinningRows(commit) {
		fmt.Fprintf(&b, `  %s:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: slipwayci/slipway/actions/build@%s
        with:
          platforms: linux/amd64
          slipway-version: '%s'
      - run: |
          grep -o '"slipway": *"[^"]*"' dist/slipway.json
`, row.job, row.ref, row.version)
	}
	return b.String()
}

type pinningRow struct{ job, ref, version, want string }

func pinningRows(commit string) []pinningRow {
	return []pinningRow{
		{"tag", actRelease, "", "0.4.1"},
		{"minor", "v0.4", "", "0.4.1"},
		{"major", "v0", "", "0.4.1"},
		{"commit", commit, "", "0.4.1"},
		{"branch", "main", "", "devel-"},
		{"version", "main", actRelease, "0.4.1"},
	}
}

// testPinning runs the pinning table: a release's refs run the release,
// slipway-version runs the release it names, a branch builds from source.
func testPinning(t *testing.T, rel *testRelease, gos goCounter) {
	wf := pinningWorkflow(rel.commit)
	out := t.TempDir()
	act := actRun{repo: newAppRepo(t, map[string]string{".github/workflows/pinning.yml": wf}),
		path:     []string{gos.dir},
		env:      []string{"SLIPWAY_E2E_OUT=" + out, "SLIPWAY_RELEASE_URL=" + rel.srv.URL, "NO_PROXY=127.0.0.1", "no_proxy=127.0.0.1"},
		localRep: slipwayStandIns(t, wf, rel),
	}
	before := len(gos.builds(t))
	log, err := act.run(t, "pinning.yml")
	if err != nil {
		t.Errorf("act: %v", err)
	}
	for _, row := range pinningRows(rel.commit) {
		if !log.said(row.job, []string{"2"}, `"slipway": "`+row.want) {
			t.Errorf("@%s with slipway-version %q: the record was not written by slipway %s…", row.ref, row.version, row.want)
		}
	}
	// Only the branch builds slipway; every other row downloads.
	if builds := gos.builds(t)[before:]; len(builds) != 1 {
		t.Errorf("slipway was compiled %d times, want once (the branch): %q", len(builds), builds)
	}
}
