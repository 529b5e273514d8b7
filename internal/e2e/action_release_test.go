package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/registrytest"
	"github.com/slipwayci/slipway/internal/scan/scantest"
)

// actRelease is the tag the act tests release slipway as: a v0, as the
// docs' examples pin @v0.
const actRelease = "v0.4.1"

// testRelease is slipway released as .github/workflows/release.yml
// releases it, for this machine's platform only, and served as GitHub
// serves a release's assets.
type testRelease struct {
	// commit is the release commit the tags name; tree its files, as an
	// action at one of its tags is checked out; source the built commit's,
	// as at a branch of main.
	commit, tree, source string
	// bin holds the released binaries for this machine.
	bin string
	srv *httptest.Server

	mu   sync.Mutex
	gets []string
}

// requests returns the paths fetched from the release since the last
// call, but for a look for its signature (it has none), which a cosign on
// this machine's PATH makes.
func (r *testRelease) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	gets := slices.DeleteFunc(r.gets, func(p string) bool { return strings.HasSuffix(p, ".sigstore.json") })
	r.gets = nil
	return gets
}

// newTestRelease builds, packages and commits a release as the release
// workflow does: slipway build with the workflow's inputs, at a local tag;
// scripts/package-release.sh; scripts/release-commit.sh on top.
func newTestRelease(t *testing.T) *testRelease {
	t.Helper()
	// The slipway action sits at the repository's root.
	repo, built := newRepo(t, map[string]string{"action.yml": readFile(t, filepath.Join(must(t, repoRoot), "action.yml"))})
	git(t, repo, "tag", actRelease)
	step := releaseBuildStep(t, must(t, repoRoot))

	// slipway build itself, to build the release with: only the two
	// commands it needs, with the flags of a source install.
	boot := t.TempDir()
	cmd := exec.Command("go", "build", "-trimpath", "-o", boot+string(filepath.Separator), "./cmd/slipway", "./cmd/slipway-build")
	cmd.Dir, cmd.Env = repo, append(toolEnv(t), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building slipway build: %v\n%s", err, out)
	}
	args := []string{"build", "--platforms", runtime.GOOS + "/" + runtime.GOARCH,
		"--packages", step.With["packages"], "--ldflags", step.With["ldflags"]}
	for _, kv := range strings.Fields(step.With["build-env"]) {
		args = append(args, "--env", kv)
	}
	o, err := runFor(t, coldBuildTimeout, repo, toolEnv(t), filepath.Join(boot, "slipway"), args...)
	logOutput(t, "slipway build", o)
	if err != nil {
		t.Fatalf("slipway build: %v", err)
	}
	assets := filepath.Join(t.TempDir(), "release")
	if o, err := runPackage(t, actRelease, filepath.Join(repo, "dist"), assets); err != nil {
		t.Fatalf("package-release.sh: %v\n%s", err, o.Stderr)
	}
	if o, err := releaseCommit(t, repo, append([]string{actRelease, filepath.Join(assets, "SHA256SUMS")}, templateImages...)...); err != nil {
		t.Fatalf("release-commit.sh: %v\n%s", err, o.Stderr)
	} else if got := strings.Fields(o.Stdout); !slices.Equal(got, []string{"v0.4", "v0"}) {
		t.Fatalf("release-commit.sh moves %q, want v0.4 and v0", got)
	}

	r := &testRelease{commit: gitOut(t, repo, "rev-parse", actRelease+"^{commit}"),
		tree: gitExport(t, repo, actRelease), source: gitExport(t, repo, built)}
	r.bin = t.TempDir()
	tarball := filepath.Join(assets, fmt.Sprintf("slipway_%s_%s_%s.tar.gz", strings.TrimPrefix(actRelease, "v"), runtime.GOOS, runtime.GOARCH))
	if out, err := exec.Command("tar", "-xzf", tarball, "-C", r.bin).CombinedOutput(); err != nil {
		t.Fatalf("unpacking %s: %v\n%s", tarball, err, out)
	}
	files := http.StripPrefix("/"+actRelease+"/", http.FileServer(http.Dir(assets)))
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.gets = append(r.gets, req.URL.Path)
		r.mu.Unlock()
		files.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// gitExport writes the files of commit-ish rev of repo into a new directory.
func gitExport(t *testing.T, repo, rev string) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("sh", "-c", `git -C "$1" archive "$2" | tar -x -C "$3"`, "sh", repo, rev, dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git archive %s: %v\n%s", rev, err, out)
	}
	return dir
}

// newAppRepo makes a user's project: a git repository holding the sample
// app at its root, plus files, in one commit made at commitDate.
func newAppRepo(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("rsync", "-a", filepath.Join(must(t, repoRoot), sampleApp)+"/", dir+"/").CombinedOutput(); err != nil {
		t.Fatalf("copying the sample app: %v\n%s", err, out)
	}
	writeFile(t, filepath.Join(dir, ".gitignore"), "dist/\n")
	for name, content := range files {
		writeFile(t, filepath.Join(dir, filepath.FromSlash(name)), content)
	}
	env := append(os.Environ(), "GIT_CONFIG_GLOBAL="+os.DevNull, "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=E2E", "GIT_AUTHOR_EMAIL=e2e@slipway.invalid", "GIT_AUTHOR_DATE="+commitDate,
		"GIT_COMMITTER_NAME=E2E", "GIT_COMMITTER_EMAIL=e2e@slipway.invalid", "GIT_COMMITTER_DATE="+commitDate)
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "-A"}, {"commit", "-q", "-m", "app"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return dir
}

// actRun is one run of act on a user's project.
type actRun struct {
	repo     string
	env      []string // --env for the workflow
	path     []string // first on PATH for act and the steps
	localRep []string // --local-repository arguments
}

// run runs one workflow of the project and returns act's log, each entry
// with its job.
func (a actRun) run(t *testing.T, workflow string) (matrixLog, error) {
	t.Helper()
	args := []string{"push", "-W", filepath.Join(".github", "workflows", workflow),
		"-P", "ubuntu-latest=-self-hosted", "--json",
		"--action-cache-path", filepath.Join(t.TempDir(), "act"), "--no-cache-server"}
	for _, kv := range a.env {
		args = append(args, "--env", kv)
	}
	args = append(args, a.localRep...)
	o, err := runFor(t, coldBuildTimeout, a.repo, toolEnv(t, a.path...), "act", args...)
	logOutput(t, "act "+workflow, o)
	var log matrixLog
	sc := bufio.NewScanner(strings.NewReader(o.Stdout))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var e matrixEntry
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			log = append(log, e)
		}
	}
	return log, err
}

// said reports whether a step of a job printed a line containing text.
func (l matrixLog) said(job string, step []string, text string) bool {
	return slices.ContainsFunc(l, func(e matrixEntry) bool {
		return e.JobID == job && e.in(step...) && e.RawOutput && strings.Contains(e.Msg, text)
	})
}

// stepsWorkflow runs the four step actions at ref on the project, scanning
// offline and pushing to host, and hands the record and outputs over. The
// build step names its directory with buildWith, one "key: value".
func stepsWorkflow(ref, host, buildWith string) string {
	return `name: steps
on: push
jobs:
  ship:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - id: build
        uses: slipwayci/slipway/actions/build@` + ref + `
        with:
          ` + buildWith + `
      - id: image
        uses: slipwayci/slipway/actions/image@` + ref + `
      - id: scan
        uses: slipwayci/slipway/actions/scan@` + ref + `
        with:
          offline: true
          cache-dir: ${{ env.SLIPWAY_E2E_TRIVY_CACHE }}
          vulndb: ${{ env.SLIPWAY_E2E_VULNDB }}
      - id: push
        uses: slipwayci/slipway/actions/push@` + ref + `
        with:
          to: ` + host + `/e2e/steps-` + ref + `
      - name: Hand the outputs to the test
        env:
          DIGEST: ${{ steps.push.outputs.digest }}
          VERDICT: ${{ steps.scan.outputs.verdict }}
          SARIF: ${{ steps.scan.outputs.sarif }}
        run: |
          printf '%s' "$DIGEST" > "$SLIPWAY_E2E_OUT/digest"
          printf '%s' "$VERDICT" > "$SLIPWAY_E2E_OUT/verdict"
          printf '%s' "$SARIF" > "$SLIPWAY_E2E_OUT/sarif"
          cp dist/slipway.json "$SLIPWAY_E2E_OUT/"
`
}

// TestActionsAtRelease runs the four step actions under act as a user's
// workflow names them, slipwayci/slipway/actions/<step>@REF, against a
// release of slipway served over HTTP: at a floating tag of the release
// the job downloads the release once and compiles no slipway; at a branch
// it builds slipway once, not once per step. Then docs/github.md's recipes
// and pinning table, at the same release.
func TestActionsAtRelease(t *testing.T) {
	requireE2E(t, "act", "git", "rsync", "go", "curl", "tar", "gzip", "sha256sum", "docker-registry")
	rel := newTestRelease(t)
	reg := registrytest.New(t, registrytest.Options{})
	gos := newGoCounter(t)
	out := t.TempDir()
	act := actRun{
		repo: newAppRepo(t, map[string]string{
			".github/workflows/tag.yml": stepsWorkflow("v0", reg.Host, "dist: dist"),
			// The build's old name for dist still works, with a warning.
			".github/workflows/branch.yml": stepsWorkflow("main", reg.Host, "out: dist"),
		}),
		env: []string{"SLIPWAY_E2E_OUT=" + out, "SLIPWAY_RELEASE_URL=" + rel.srv.URL,
			"SLIPWAY_E2E_TRIVY_CACHE=" + scantest.TrivyDB(t), "SLIPWAY_E2E_VULNDB=" + scantest.VulnDB(t),
			"NO_PROXY=127.0.0.1", "no_proxy=127.0.0.1"},
		path: []string{gos.dir},
		localRep: []string{
			"--local-repository", "slipwayci/slipway@v0=" + rel.tree,
			"--local-repository", "slipwayci/slipway@main=" + rel.source,
		},
	}
	steps := []string{"build", "image", "scan", "push"}

	for _, tt := range []struct {
		workflow  string
		gets      []string
		builds    int
		installed string // the install step's line in the first step
		warning   string // a line of the build's install step, if any
		slipway   func(string) bool
	}{{
		workflow:  "tag.yml",
		gets:      []string{"/" + actRelease + "/" + fmt.Sprintf("slipway_0.4.1_%s_%s.tar.gz", runtime.GOOS, runtime.GOARCH)},
		installed: "(release v0.4.1, named by the action's tree at v0)",
		slipway:   func(v string) bool { return v == "0.4.1" },
	}, {
		workflow:  "branch.yml",
		builds:    1,
		installed: `from source in`,
		warning:   "input out is deprecated; use dist",
		slipway:   func(v string) bool { return strings.HasPrefix(v, "devel-") },
	}} {
		t.Run(tt.workflow, func(t *testing.T) {
			before := len(gos.builds(t))
			log, err := act.run(t, tt.workflow)
			if err != nil || log.jobResult() != "success" {
				t.Fatalf("act: %v, job %q", err, log.jobResult())
			}
			if diff := cmp.Diff(tt.gets, rel.requests()); diff != "" {
				t.Errorf("downloads from the release (-want +got):\n%s", diff)
			}
			if builds := gos.builds(t)[before:]; len(builds) != tt.builds {
				t.Errorf("slipway was compiled %d times, want %d: %q", len(builds), tt.builds, builds)
			}
			if !log.said("ship", []string{"build", "0"}, tt.installed) {
				t.Errorf("the build action's install step did not say %q", tt.installed)
			}
			warned := slices.ContainsFunc(log, func(e matrixEntry) bool {
				return e.Command == "warning" && e.in("build", "0") && strings.Contains(e.Msg, tt.warning)
			})
			if tt.warning != "" && !warned {
				t.Errorf("the build action did not warn %q", tt.warning)
			}
			for _, s := range steps[1:] {
				if !log.said("ship", []string{s, "0"}, "already on PATH") {
					t.Errorf("the %s action's install step did not find slipway on PATH", s)
				}
			}
			rec, err := record.Load(out)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.slipway(rec.Slipway) {
				t.Errorf("the record was written by slipway %q", rec.Slipway)
			}
			if got := readFile(t, filepath.Join(out, "digest")); rec.Image == nil || got != rec.Image.Digest {
				t.Errorf("pushed %q, the record's image is %+v", got, rec.Image)
			}
			if got := readFile(t, filepath.Join(out, "verdict")); got != "pass" {
				t.Errorf("scan verdict %q, want pass", got)
			}
			// The scan action writes the SARIF report unasked.
			if got := readFile(t, filepath.Join(out, "sarif")); got != "dist/scan.sarif" {
				t.Errorf("scan's sarif output %q, want dist/scan.sarif", got)
			}
		})
	}

	// docs/github.md's recipes and its pinning table, as written.
	t.Run("docs", func(t *testing.T) { testDocExamples(t, rel, gos) })
	t.Run("pinning", func(t *testing.T) { testPinning(t, rel, gos) })
}
