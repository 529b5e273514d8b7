package e2e

import (
	"bufio"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/slipwayci/slipway/internal/record"
)

// The workflows use the action as a project would, from a path in the
// repository. act's host mode (-P ubuntu-latest=-self-hosted) starts from an
// empty workspace; actions/checkout is what makes act copy the repository
// into it, without cloning anything. act deletes the workspace when the job
// ends, so a last step hands the outputs and dist/ to the test, reading the
// outputs through env: like any user step should.
const (
	goodWorkflow = `name: build
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - id: build
        uses: ./actions/build
        with:
          platforms: linux/amd64,linux/arm64
          working-directory: ` + sampleApp + `
      - name: Hand the outputs to the test
        env:
          RECORD: ${{ steps.build.outputs.record }}
          ARTIFACTS: ${{ steps.build.outputs.artifacts }}
          VERSION: ${{ steps.build.outputs.version }}
        run: |
          printf '%s' "$RECORD" > "$SLIPWAY_E2E_OUT/record"
          printf '%s' "$ARTIFACTS" > "$SLIPWAY_E2E_OUT/artifacts"
          printf '%s' "$VERSION" > "$SLIPWAY_E2E_OUT/version"
          cp -R "$(dirname "$RECORD")" "$SLIPWAY_E2E_OUT/dist"
`
	badWorkflow = `name: bad
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - id: build
        uses: ./actions/build
        with:
          platforms: linux/nope
          working-directory: ` + sampleApp + `
      - run: touch "$SLIPWAY_E2E_OUT/reached"
`
)

// sampleWorkflow is what every act test of a step after build starts with:
// a workflow run on push whose one job, named job, checks the repository
// out, builds the sample app for linux/amd64 and linux/arm64 and images it
// in a step with id image, then runs steps (YAML indented as a job's steps
// are). imageWith are the image step's inputs besides working-directory,
// as lines of its with: map.
func sampleWorkflow(job, imageWith, steps string) string {
	var with strings.Builder
	for l := range strings.SplitSeq(imageWith, "\n") {
		if l != "" {
			with.WriteString("          " + l + "\n")
		}
	}
	return `name: ` + job + `
on: push
jobs:
  ` + job + `:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: ./actions/build
        with:
          platforms: linux/amd64,linux/arm64
          working-directory: ` + sampleApp + `
      - id: image
        uses: ./actions/image
        with:
          working-directory: ` + sampleApp + `
` + with.String() + steps
}

// artifact is one entry of the build's artifacts output.
type artifact struct {
	Name     string `json:"name"`
	Path     string `json:"path"`
	Platform string `json:"platform"`
	SHA256   string `json:"sha256"`
	Size     int64  `json:"size"`
}

// wantArtifacts are the sample app's two commands for the two platforms
// built, with the fields that do not depend on the compiler.
var wantArtifacts = []artifact{
	{Name: "hello", Path: "dist/hello_linux_amd64/hello", Platform: "linux/amd64"},
	{Name: "hello", Path: "dist/hello_linux_arm64/hello", Platform: "linux/arm64"},
	{Name: "helloctl", Path: "dist/helloctl_linux_amd64/helloctl", Platform: "linux/amd64"},
	{Name: "helloctl", Path: "dist/helloctl_linux_arm64/helloctl", Platform: "linux/arm64"},
}

var ignoreDigests = cmpopts.IgnoreFields(artifact{}, "SHA256", "Size")

func TestAction(t *testing.T) {
	requireE2E(t, "act", "git", "rsync", "go")
	// The action builds slipway itself; building it here first fails fast
	// on a broken tree and fills the caches that build then uses.
	must(t, slipwayBin)
	repo, head := newRepo(t, map[string]string{
		".github/workflows/build.yml": goodWorkflow,
		".github/workflows/bad.yml":   badWorkflow,
	})

	t.Run("build", func(t *testing.T) {
		t.Parallel()
		out := t.TempDir()
		log, err := runAct(t, repo, "build.yml", out)
		if err != nil {
			t.Fatalf("act: %v", err)
		}
		if got := log.jobResult(); got != "success" {
			t.Fatalf("job result = %q, want success", got)
		}
		// The action put its own slipway on PATH: the test gave act none.
		if !slices.ContainsFunc(log, func(e actEntry) bool { return e.Command == "add-path" && e.in("build", "0") }) {
			t.Error("the install step added nothing to PATH")
		}

		version := readFile(t, filepath.Join(out, "version"))
		if want := wantVersion(head); version != want {
			t.Errorf("version output = %q, want %q", version, want)
		}
		if got := readFile(t, filepath.Join(out, "record")); got != "dist/slipway.json" {
			t.Errorf("record output = %q, want dist/slipway.json", got)
		}
		var arts []artifact
		if err := json.Unmarshal([]byte(readFile(t, filepath.Join(out, "artifacts"))), &arts); err != nil {
			t.Fatalf("artifacts output: %v", err)
		}
		if diff := cmp.Diff(wantArtifacts, arts, ignoreDigests); diff != "" {
			t.Errorf("artifacts output (-want +got):\n%s", diff)
		}
		checkDist(t, out, arts, version, head)

		// act shows each step's summary in its log and then empties the
		// file, so later steps never see it: the log is where to look.
		var summaries []string
		for _, e := range log {
			if e.Command == "summary" {
				summaries = append(summaries, e.Content)
			}
		}
		if len(summaries) == 0 {
			t.Fatal("no step summary in act's log")
		}
		checkSummary(t, summaries[0], version, arts)
	})

	t.Run("unknown platform", func(t *testing.T) {
		t.Parallel()
		out := t.TempDir()
		// act's host executor reads a step's output asynchronously and
		// can drop the last lines of a step that exits at once (seen:
		// neither ::endgroup:: nor the error line arrived, on a loaded
		// machine). The product prints the line every time, so a run
		// whose log lost it is repeated, twice at most.
		var log actLog
		var err error
		for attempt := 0; attempt < 3; attempt++ {
			log, err = runAct(t, repo, "bad.yml", out)
			if log.mentions("build", "build", "unknown platform") {
				break
			}
			t.Logf("attempt %d: act's log lost the build step's last output; running it again", attempt+1)
		}
		if err == nil {
			t.Error("act succeeded with platforms: linux/nope")
		}
		if got := log.jobResult(); got != "failure" {
			t.Errorf("job result = %q, want failure", got)
		}
		if got := log.stepResult("build", "0"); got != "success" {
			t.Errorf("install step result = %q, want success", got)
		}
		if got := log.stepResult("build", "build"); got != "failure" {
			t.Errorf("build step result = %q, want failure", got)
		}
		// The one line slipway prints, and its usage exit code.
		var errLines []string
		exit2 := false
		for _, e := range log {
			if !e.in("build", "build") {
				continue
			}
			if e.RawOutput && strings.Contains(e.Msg, "unknown platform") {
				errLines = append(errLines, e.Msg)
			}
			exit2 = exit2 || (e.Level == "error" && e.Msg == "exit status 2")
		}
		if len(errLines) != 1 {
			t.Fatalf("build step printed %d lines about the unknown platform, want 1: %q", len(errLines), errLines)
		}
		line := strings.TrimSuffix(errLines[0], "\n")
		if want := `slipway build: --platforms: unknown platform "linux/nope"`; !strings.HasPrefix(line, want) || strings.Contains(line, "\n") {
			t.Errorf("error line = %q, want one line starting %q", line, want)
		}
		if !exit2 {
			t.Error("build step did not exit with status 2")
		}
		if _, err := os.Stat(filepath.Join(out, "reached")); err == nil {
			t.Error("the step after the failed build ran")
		}
	})
}

// runAct runs one workflow of repo with act in host mode, handing it out
// as SLIPWAY_E2E_OUT, and returns act's JSON log.
func runAct(t *testing.T, repo, workflow, out string) (actLog, error) {
	t.Helper()
	o, err := run(t, repo, toolEnv(t), "act", "push",
		"-W", filepath.Join(".github", "workflows", workflow),
		"-P", "ubuntu-latest=-self-hosted",
		"--json",
		// Each run gets its own workspace and action cache; no cache
		// server, which would listen on a port for nothing.
		"--action-cache-path", filepath.Join(t.TempDir(), "act"),
		"--no-cache-server",
		"--env", "SLIPWAY_E2E_OUT="+out,
	)
	logOutput(t, "act", o)
	return parseActLog(t, o.Stdout), err
}

// actEntry is one line of act's --json log.
type actEntry struct {
	Level      string   `json:"level"`
	Msg        string   `json:"msg"`
	StepID     []string `json:"stepID"`
	StepResult string   `json:"stepResult"`
	JobResult  string   `json:"jobResult"`
	RawOutput  bool     `json:"raw_output"`
	Command    string   `json:"command"`
	Arg        string   `json:"arg"`
	Content    string   `json:"content"`
}

// in reports whether the entry belongs to the step with the given ID path:
// ("build") is the action's step, ("build", "0") its first inner step.
func (e actEntry) in(id ...string) bool { return slices.Equal(e.StepID, id) }

type actLog []actEntry

func parseActLog(t *testing.T, stdout string) actLog {
	t.Helper()
	var log actLog
	sc := bufio.NewScanner(strings.NewReader(stdout))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var e actEntry
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			log = append(log, e)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading act's log: %v", err)
	}
	return log
}

func (l actLog) jobResult() string {
	for _, e := range slices.Backward(l) {
		if e.JobResult != "" {
			return e.JobResult
		}
	}
	return ""
}

func (l actLog) stepResult(id ...string) string {
	for _, e := range slices.Backward(l) {
		if e.StepResult != "" && e.in(id...) {
			return e.StepResult
		}
	}
	return ""
}

// mentions reports whether the step printed a line containing text.
func (l actLog) mentions(step, sub, text string) bool {
	for _, e := range l {
		if e.in(step, sub) && e.RawOutput && strings.Contains(e.Msg, text) {
			return true
		}
	}
	return false
}

// checkDist checks the copy of dist/ in out against the artifacts output:
// every binary is there with its digest and size, for the right machine,
// in SHA256SUMS and in the record.
func checkDist(t *testing.T, out string, arts []artifact, version, head string) {
	t.Helper()
	sums := readFile(t, filepath.Join(out, "dist", "SHA256SUMS"))
	for _, a := range arts {
		rel := strings.TrimPrefix(a.Path, "dist/")
		path := filepath.Join(out, "dist", filepath.FromSlash(rel))
		data, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("artifact %s: %v", a.Path, err)
			continue
		}
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); got != a.SHA256 || int64(len(data)) != a.Size {
			t.Errorf("artifact %s: sha256 %s size %d on disk, output says %s %d", a.Path, got, len(data), a.SHA256, a.Size)
		}
		if !strings.Contains(sums, a.SHA256+"  "+rel+"\n") {
			t.Errorf("SHA256SUMS has no line for %s %s:\n%s", a.SHA256, rel, sums)
		}
		checkMachine(t, path, a.Platform)
	}

	rec, err := record.Load(filepath.Join(out, "dist"))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Version != version || rec.Commit != head || rec.Module != "example.com/hello" {
		t.Errorf("record: module %s version %s commit %s, want example.com/hello %s %s", rec.Module, rec.Version, rec.Commit, version, head)
	}
	var fromRecord []artifact
	for _, a := range rec.Artifacts {
		fromRecord = append(fromRecord, artifact{a.Name, "dist/" + a.Path, a.Platform, a.SHA256, a.Size})
	}
	if diff := cmp.Diff(arts, fromRecord); diff != "" {
		t.Errorf("record's artifacts differ from the output (-output +record):\n%s", diff)
	}
}

// checkMachine checks that a binary was built for platform's architecture.
func checkMachine(t *testing.T, path, platform string) {
	t.Helper()
	want := map[string]elf.Machine{"linux/amd64": elf.EM_X86_64, "linux/arm64": elf.EM_AARCH64}[platform]
	f, err := elf.Open(path)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	defer f.Close()
	if f.Machine != want {
		t.Errorf("%s: machine %v, want %v for %s", path, f.Machine, want, platform)
	}
}

// checkSummary checks the Markdown summary: the version in its title and a
// table row per binary with its full digest.
func checkSummary(t *testing.T, md, version string, arts []artifact) {
	t.Helper()
	for _, want := range []string{version, "| Platform | Binary | Size | SHA-256 |"} {
		if !strings.Contains(md, want) {
			t.Errorf("summary lacks %q:\n%s", want, md)
		}
	}
	for _, a := range arts {
		row := "| " + a.Platform + " | " + strings.TrimPrefix(a.Path, "dist/") + " | "
		i := strings.Index(md, row)
		if i < 0 {
			t.Errorf("summary has no row %q:\n%s", row, md)
			continue
		}
		if end := strings.IndexByte(md[i:], '\n'); end < 0 || !strings.Contains(md[i:i+end], "| "+a.SHA256+" |") {
			t.Errorf("summary row for %s lacks its sha256 %s:\n%s", a.Path, a.SHA256, md)
		}
	}
}
