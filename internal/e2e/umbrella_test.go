package e2e

import (
	"encoding/json"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"go.yaml.in/yaml/v3"

	"github.com/slipwayci/slipway/internal/registrytest"
	"github.com/slipwayci/slipway/internal/scan/scantest"
)

// vulnerableApp is the sample app with known findings, here and in the
// test repository.
const vulnerableApp = "testdata/apps/vulnerable"

// umbrellaWorkflow runs the root action, uses: ./, on app with its
// defaults, scanning offline with the fixture databases the test hands in
// through act's --env, and pushing to a registry with a password. extra
// are more inputs, one "key: value" per line. The last step hands the
// outputs to the test whatever happened, reading them through env:.
func umbrellaWorkflow(host, app, extra string) string {
	name := filepath.Base(app)
	with := `          working-directory: ` + app + `
          offline: true
          cache-dir: ${{ env.SLIPWAY_E2E_TRIVY_CACHE }}
          vulndb: ${{ env.SLIPWAY_E2E_VULNDB }}
          to: ` + host + `/e2e/` + name + `
          username: ci
          password: ${{ env.SLIPWAY_E2E_PASSWORD }}
`
	for l := range strings.SplitSeq(extra, "\n") {
		if l != "" {
			with += "          " + l + "\n"
		}
	}
	return `name: ` + name + `
on: push
jobs:
  ship:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - id: slipway
        uses: ./
        with:
` + with + `      - name: Hand the outputs to the test
        if: always()
        env:
          DIGEST: ${{ steps.slipway.outputs.digest }}
          TAGS: ${{ steps.slipway.outputs.tags }}
          REFS: ${{ steps.slipway.outputs.refs }}
          VERSION: ${{ steps.slipway.outputs.version }}
          VERDICT: ${{ steps.slipway.outputs.verdict }}
          COUNTS: ${{ steps.slipway.outputs.counts }}
          SARIF: ${{ steps.slipway.outputs.sarif }}
        run: |
          for k in DIGEST TAGS REFS VERSION VERDICT COUNTS SARIF; do
            printf '%s' "${!k}" > "$SLIPWAY_E2E_OUT/$k"
          done
          if [ -d dist ]; then cp -R dist "$SLIPWAY_E2E_OUT/dist"; fi
`
}

// TestUmbrellaAction runs the one-step action on the sample app: build,
// image, an offline scan that passes, and a push to a real registry; then
// on the vulnerable app with fail-on: low, where the scan's policy must
// fail the job before anything reaches the registry.
func TestUmbrellaAction(t *testing.T) {
	requireE2E(t, "act", "git", "rsync", "go", "docker-registry")
	// The action builds slipway with GOEXPERIMENT=jsonv2 from its own
	// source; building it here first, the same way, fails fast on a broken
	// tree and fills the build cache that act's run then finds warm.
	must(t, slipwayBin)

	a := registrytest.Auth{User: "ci", Password: "act-Umbrella-Pa55"}
	r := registrytest.New(t, registrytest.Options{Users: map[string]string{a.User: a.Password}})
	files := map[string]string{
		"action.yml":                       readFile(t, filepath.Join(must(t, repoRoot), "action.yml")),
		".github/workflows/hello.yml":      umbrellaWorkflow(r.Host, sampleApp, ""),
		".github/workflows/vulnerable.yml": umbrellaWorkflow(r.Host, vulnerableApp, "fail-on: low"),
	}
	maps.Copy(files, treeFiles(t, filepath.Join(must(t, repoRoot), vulnerableApp), vulnerableApp))
	repo, head := newRepo(t, files)
	env := []string{
		"SLIPWAY_E2E_TRIVY_CACHE=" + scantest.TrivyDB(t),
		"SLIPWAY_E2E_VULNDB=" + scantest.VulnDB(t),
		"SLIPWAY_E2E_PASSWORD=" + a.Password,
	}

	t.Run("pass and push", func(t *testing.T) {
		out := t.TempDir()
		log, err := runActEnv(t, repo, "hello.yml", out, env...)
		if err != nil {
			t.Fatalf("act: %v", err)
		}
		if got := log.jobResult(); got != "success" {
			t.Fatalf("job result = %q, want success", got)
		}
		for _, step := range []string{"0", "build", "image", "scan", "push"} {
			if got := log.stepResult("slipway", step); got != "success" {
				t.Errorf("step %s: result %q, want success", step, got)
			}
		}

		rec := pushRecord(t, out)
		got := map[string]string{}
		for _, k := range []string{"DIGEST", "TAGS", "REFS", "VERSION", "VERDICT", "SARIF"} {
			got[k] = readFile(t, filepath.Join(out, k))
		}
		// act pushes to refs/heads/main: the default tags are the branch
		// and the commit.
		want := map[string]string{
			"DIGEST":  rec.Image.Digest,
			"TAGS":    "main,sha-" + head[:7],
			"REFS":    r.Host + "/e2e/hello@" + rec.Image.Digest,
			"VERSION": wantVersion(head),
			"VERDICT": "pass",
			"SARIF":   "dist/scan.sarif",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("outputs (-want +got):\n%s", diff)
		}
		// The medium gosec finding in the sample app (G114, a server
		// without timeouts) is counted, and is under the default fail-on.
		var counts map[string]int
		if err := json.Unmarshal([]byte(readFile(t, filepath.Join(out, "COUNTS"))), &counts); err != nil {
			t.Fatalf("counts output: %v", err)
		}
		if counts["medium"] != 1 || counts["high"] != 0 || counts["critical"] != 0 {
			t.Errorf("counts = %v, want one medium and nothing high or critical", counts)
		}

		// Every tag names the record's index, whole, with each platform's
		// SBOMs as referrers; and those are all the tags there are.
		tags, err := r.Tags(testContext(t), "e2e/hello", a)
		if err != nil {
			t.Fatal(err)
		}
		tags = slices.DeleteFunc(tags, func(s string) bool { return strings.HasPrefix(s, "sha256-") })
		slices.Sort(tags)
		if diff := cmp.Diff([]string{"main", "sha-" + head[:7]}, tags); diff != "" {
			t.Errorf("tags in the registry (-want +got):\n%s", diff)
		}
		for _, tag := range tags {
			pushCheckImage(t, r, a, "e2e/hello", tag, out)
		}
		// The scan's statement is a referrer of the index, for promote.
		checkIndexReferrer(t, r, a, "e2e/hello", rec.Image.Digest, readFile(t, filepath.Join(out, "dist", "scan.intoto.json")))

		// The scan's reports are in dist, where the outputs say.
		var sarif struct {
			Version string `json:"version"`
			Runs    []struct {
				Results []struct {
					RuleID string `json:"ruleId"`
				} `json:"results"`
			} `json:"runs"`
		}
		if err := json.Unmarshal([]byte(readFile(t, filepath.Join(out, "dist", "scan.sarif"))), &sarif); err != nil {
			t.Fatalf("dist/scan.sarif: %v", err)
		}
		var rules []string
		for _, run := range sarif.Runs {
			for _, res := range run.Results {
				rules = append(rules, res.RuleID)
			}
		}
		if sarif.Version != "2.1.0" || !slices.Contains(rules, "G114") {
			t.Errorf("dist/scan.sarif: version %q, rules %q; want 2.1.0 with G114", sarif.Version, rules)
		}
		for _, f := range []string{"findings.json", "scan.intoto.json"} {
			if _, err := os.Stat(filepath.Join(out, "dist", f)); err != nil {
				t.Errorf("the scan wrote no %s: %v", f, err)
			}
		}
		// The password went to slipway on stdin and was masked.
		for _, e := range log {
			if strings.Contains(e.Msg, a.Password) && e.Command != "add-mask" {
				t.Errorf("act's log shows the password: %q", e.Msg)
			}
		}
	})

	t.Run("findings over fail-on", func(t *testing.T) {
		out := t.TempDir()
		log, err := runActEnv(t, repo, "vulnerable.yml", out, env...)
		if err == nil {
			t.Error("act succeeded with findings over fail-on: low")
		}
		if got := log.jobResult(); got != "failure" {
			t.Errorf("job result = %q, want failure", got)
		}
		for step, want := range map[string]string{"0": "success", "build": "success", "image": "success", "scan": "failure"} {
			if got := log.stepResult("slipway", step); got != want {
				t.Errorf("step %s: result %q, want %s", step, got, want)
			}
		}
		if got := log.stepResult("slipway", "push"); got == "success" || got == "failure" {
			t.Errorf("push step ran (%s) after the scan failed", got)
		}
		exit3 := slices.ContainsFunc(log, func(e actEntry) bool {
			return e.in("slipway", "scan") && e.Level == "error" && e.Msg == "exit status 3"
		})
		if !exit3 {
			t.Error("the scan step did not exit with status 3")
		}
		// The scan said why before failing, and the reports were written.
		if got := readFile(t, filepath.Join(out, "VERDICT")); got != "fail" {
			t.Errorf("verdict output = %q, want fail", got)
		}
		if _, err := os.Stat(filepath.Join(out, "dist", "scan.sarif")); err != nil {
			t.Errorf("no SARIF report after a failing scan: %v", err)
		}

		// Nothing of the vulnerable app reached the registry: not a blob,
		// not a manifest, not even a look.
		for _, req := range r.Proxy.Requests() {
			if strings.Contains(req.Path, "/e2e/vulnerable/") {
				t.Errorf("the registry saw %s %s", req.Method, req.Path)
			}
		}
		if tags, err := r.Tags(testContext(t), "e2e/vulnerable", a); err != nil || len(tags) > 0 {
			t.Errorf("e2e/vulnerable in the registry: tags %q, %v", tags, err)
		}
	})
}

// TestUmbrellaActionInputs checks the root action's wiring without running
// it: no run: script holds an expression, every input reaches a step, every
// INPUT_ a step sets names a flag of that step's command, and no input of
// the action can reach a command as a flag it does not mean. act exports
// every input of the action to every step as INPUT_<NAME>, the name kept
// with its dashes, which slipway reads before the INPUT_<NAME_> a step sets.
func TestUmbrellaActionInputs(t *testing.T) {
	requireE2E(t, "go")
	bin := must(t, slipwayBin)
	var action struct {
		Inputs map[string]struct {
			Default string `yaml:"default"`
		} `yaml:"inputs"`
		Runs struct {
			Using string `yaml:"using"`
			Steps []struct {
				ID  string            `yaml:"id"`
				If  string            `yaml:"if"`
				Run string            `yaml:"run"`
				Env map[string]string `yaml:"env"`
			} `yaml:"steps"`
		} `yaml:"runs"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, filepath.Join(must(t, repoRoot), "action.yml"))), &action); err != nil {
		t.Fatal(err)
	}
	if action.Runs.Using != "composite" {
		t.Fatalf("runs.using = %q", action.Runs.Using)
	}
	var ids []string
	for _, s := range action.Runs.Steps {
		ids = append(ids, s.ID)
	}
	if diff := cmp.Diff([]string{"", "build", "image", "scan", "push"}, ids); diff != "" {
		t.Fatalf("step ids (-want +got):\n%s", diff)
	}

	inputOf := regexp.MustCompile(`^\$\{\{ inputs\.([a-z-]+) \}\}$`)
	flagLine := regexp.MustCompile(`(?m)^  -([a-z-]+)`)
	used := map[string]bool{}
	for _, s := range action.Runs.Steps {
		if strings.Contains(s.Run, "${{") {
			t.Errorf("step %q: run: splices an expression into the script: %q", s.ID, s.Run)
		}
		if m := regexp.MustCompile(`inputs\.([a-z-]+)`).FindStringSubmatch(s.If); m != nil {
			used[m[1]] = true
		}
		for key, val := range s.Env {
			if m := inputOf.FindStringSubmatch(val); m != nil {
				used[m[1]] = true
			} else if strings.HasPrefix(key, "INPUT_") {
				t.Errorf("step %q: env %s = %q, not one input", s.ID, key, val)
			}
		}
		if s.ID == "" {
			// The script builds slipway-scan with GOEXPERIMENT=jsonv2
			// itself when it builds from source.
			if !strings.Contains(s.Run, `bash "$GITHUB_ACTION_PATH/scripts/action-install.sh"`) || s.Env["SLIPWAY_STEPS"] != "build image scan push" {
				t.Errorf("the first step does not install slipway for the four steps: %q %v", s.Run, s.Env)
			}
			continue
		}

		help, err := exec.Command(filepath.Join(bin, "slipway-"+s.ID), "--help").Output()
		if err != nil {
			t.Fatalf("slipway-%s --help: %v", s.ID, err)
		}
		flags := map[string]bool{}
		for _, m := range flagLine.FindAllStringSubmatch(string(help), -1) {
			flags[m[1]] = true
		}
		for key := range s.Env {
			if f, ok := strings.CutPrefix(key, "INPUT_"); ok && !flags[strings.ToLower(strings.ReplaceAll(f, "_", "-"))] {
				t.Errorf("step %s: env %s names no flag of slipway %s", s.ID, key, s.ID)
			}
		}
		// An input named like a flag of this step reaches it under act.
		// The step's env: must name that INPUT_ to set it as it means
		// (tags here are the push's, so the build sets INPUT_TAGS from
		// build-tags); a name with a dash, which slipway reads first, must
		// be the very input the step takes that flag from.
		for in := range action.Inputs {
			if !flags[in] {
				continue
			}
			key := "INPUT_" + strings.ToUpper(strings.ReplaceAll(in, "-", "_"))
			got, ok := s.Env[key]
			if !ok || (strings.Contains(in, "-") && got != "${{ inputs."+in+" }}") {
				t.Errorf("step %s: input %s is a flag of slipway %s, and env %s = %q", s.ID, in, s.ID, key, got)
			}
		}
	}
	for in := range action.Inputs {
		if !used[in] {
			t.Errorf("input %s never reaches a step", in)
		}
	}
}

// checkIndexReferrer checks that repo holds one referrer of the index
// digest, under the referrers fallback tag, whose one layer is want: an
// in-toto statement.
func checkIndexReferrer(t *testing.T, r *registrytest.Registry, a registrytest.Auth, repo, digest, want string) {
	t.Helper()
	ref, err := name.ParseReference(r.Direct + "/" + repo + "@" + digest)
	if err != nil {
		t.Fatal(err)
	}
	opts := pushOpts(r, a)
	fb, err := remote.Get(ref.Context().Tag("sha256-"+strings.TrimPrefix(digest, "sha256:")), opts...)
	if err != nil {
		t.Fatalf("the index has no referrers: %v", err)
	}
	var list v1.IndexManifest
	if err := json.Unmarshal(fb.Manifest, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Manifests) != 1 || list.Manifests[0].ArtifactType != "application/vnd.in-toto+json" {
		t.Fatalf("the index's referrers: %+v, want one in-toto statement", list.Manifests)
	}
	art, err := remote.Image(ref.Context().Digest(list.Manifests[0].Digest.String()), opts...)
	if err != nil {
		t.Fatal(err)
	}
	m, err := art.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject == nil || m.Subject.Digest.String() != digest || len(m.Layers) != 1 {
		t.Fatalf("statement artifact: subject %v, %d layers; want %s and one", m.Subject, len(m.Layers), digest)
	}
	l, err := art.LayerByDigest(m.Layers[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Error("the index's referrer does not hold dist/scan.intoto.json")
	}
}

// runActEnv runs one workflow of repo with act in host mode, as runAct
// does, with more variables for the workflow's env context.
func runActEnv(t *testing.T, repo, workflow, out string, env ...string) (actLog, error) {
	t.Helper()
	args := []string{"push",
		"-W", filepath.Join(".github", "workflows", workflow),
		"-P", "ubuntu-latest=-self-hosted", "--json",
		"--action-cache-path", filepath.Join(t.TempDir(), "act"), "--no-cache-server",
		"--env", "SLIPWAY_E2E_OUT=" + out,
	}
	for _, kv := range env {
		args = append(args, "--env", kv)
	}
	o, err := run(t, repo, toolEnv(t), "act", args...)
	logOutput(t, "act", o)
	return parseActLog(t, o.Stdout), err
}

// treeFiles reads every file under dir into newRepo's form, each path
// under prefix.
func treeFiles(t *testing.T, dir, prefix string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		files[prefix+"/"+filepath.ToSlash(rel)] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
