package promote

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/version"
)

// runCommand runs slipway promote (or history) in-process in dir.
func runCommand(t *testing.T, f *fixture, dir string, environ []string, stdin string, history bool, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := Command{Now: f.clock.Now, Settle: time.Millisecond}
	env := cli.Env{
		Args: args, Environ: append([]string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}, environ...),
		Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Dir: dir,
	}
	run, prog := c.Promote, "slipway promote"
	if history {
		run, prog = c.History, "slipway history"
	}
	err := run(ctx, env)
	code = cli.ExitCode(&errb, prog, err)
	return out.String(), errb.String(), code
}

// configDir writes the fixture's config into a directory of its own.
func (f *fixture) configDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(strings.ReplaceAll(fixtureConfig, "HOST", f.host)), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestMainUsageErrors(t *testing.T) {
	f := newFixture(t)
	dir := f.configDir(t)
	d := "sha256:" + strings.Repeat("a", 64)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no environment", []string{"--digest", f.host + "/dev/app@" + d}, "no environment: give --to, one of dev, production, staging"},
		{"unknown environment", []string{"--digest", f.host + "/dev/app@" + d, "--to", "prod"}, `no environment "prod"`},
		{"no digest", []string{"--to", "staging"}, "give one of --digest"},
		{"digest and rollback", []string{"--to", "staging", "--rollback", "--digest", f.host + "/dev/app@" + d}, "give one of --digest"},
		{"a tag, not a digest", []string{"--to", "staging", "--digest", f.host + "/dev/app:latest"}, "a promotion moves a digest, never a tag"},
		{"bare digest without from", []string{"--to", "staging", "--digest", d}, "staging has no gates.from"},
		{"bad digest", []string{"--to", "staging", "--digest", f.host + "/dev/app@sha256:12"}, "--digest"},
		{"no config", []string{"--to", "staging", "--rollback", "--config", "nowhere.yaml"}, "nowhere.yaml not found"},
		{"stray argument", []string{"--to", "staging", "--rollback", "extra"}, "unexpected arguments extra"},
		{"unknown flag", []string{"--to", "staging", "--bogus"}, "slipway promote: flag provided but not defined: -bogus; see slipway promote --help"},
		{"bad flag value", []string{"--to", "staging", "--retries", "many"}, `invalid value "many" for flag -retries`},
		{"password without user", []string{"--to", "staging", "--rollback", "--password-stdin"}, "--password-stdin needs --username"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := runCommand(t, f, dir, nil, "", false, tc.args...)
			if code != cli.ExitUsage || !strings.Contains(stderr, tc.want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want %d and one line containing %q", code, stderr, cli.ExitUsage, tc.want)
			}
		})
	}
}

// TestMainHelpAndVersion checks what cli.ParseFlags answers for both
// commands: --help and --version on stdout with exit 0, even in CI, where
// inputs named version or help must not turn into the flags.
func TestMainHelpAndVersion(t *testing.T) {
	f := newFixture(t)
	dir := f.configDir(t)
	for _, tc := range []struct {
		name    string
		history bool
		environ []string
		args    []string
		want    []string
	}{
		{name: "promote help", args: []string{"--help"},
			want: []string{"usage: slipway promote --digest", "  -digest REPOSITORY@sha256:…", "  -password-stdin", "  -version"}},
		{name: "promote help after flags", args: []string{"--to", "staging", "-h"}, want: []string{"usage: slipway promote"}},
		{name: "promote version", args: []string{"--version"}, want: []string{"slipway-promote " + version.String() + "\n"}},
		{name: "promote version on GitLab", environ: []string{"GITLAB_CI=true", "SLIPWAY_TO=nowhere"}, args: []string{"--version"},
			want: []string{"slipway-promote " + version.String() + "\n"}},
		{name: "history help", history: true, args: []string{"--help"},
			want: []string{"usage: slipway history ENVIRONMENT", "  -json", "  -version"}},
		{name: "history help after the environment", history: true, args: []string{"dev", "--help"}, want: []string{"usage: slipway history"}},
		{name: "history version", history: true, args: []string{"--version"}, want: []string{"slipway-history " + version.String() + "\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runCommand(t, f, dir, tc.environ, "", tc.history, tc.args...)
			if code != 0 || stderr != "" {
				t.Errorf("exit %d, stderr %q; want 0 and nothing", code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
		})
	}
}

func TestMainInputsDoNotBecomeVersionOrHelp(t *testing.T) {
	f := newFixture(t)
	dir := f.configDir(t)
	// A GitLab variable SLIPWAY_VERSION pins slipway; it is no --version.
	gitlab := []string{"GITLAB_CI=true", "SLIPWAY_VERSION=v1.2.3", "SLIPWAY_HELP=true", "SLIPWAY_DOTENV=" + filepath.Join(t.TempDir(), "x.env")}
	stdout, stderr, code := runCommand(t, f, dir, gitlab, "", false)
	if code != cli.ExitUsage || !strings.Contains(stderr, "no environment: give --to") || strings.Contains(stdout, "usage:") {
		t.Errorf("exit %d\n%s%s", code, stdout, stderr)
	}
}

func TestMainHistoryUsageErrors(t *testing.T) {
	f := newFixture(t)
	dir := f.configDir(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"dev", "--bogus"}, "slipway history: flag provided but not defined: -bogus; see slipway history --help"},
		{"stray argument", []string{"dev", "extra"}, "unexpected arguments extra"},
		{"unknown environment", []string{"prod"}, `no environment "prod"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := runCommand(t, f, dir, nil, "", true, tc.args...)
			if code != cli.ExitUsage || !strings.Contains(stderr, tc.want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want %d and one line containing %q", code, stderr, cli.ExitUsage, tc.want)
			}
		})
	}
}

func TestMainOnGitHub(t *testing.T) {
	f := newFixture(t)
	dir := f.configDir(t)
	img := f.publish(t, "dev", true)
	tmp := t.TempDir()
	out, summary := filepath.Join(tmp, "out"), filepath.Join(tmp, "summary.md")
	const secret = "s3cret-registry-pass"
	github := []string{
		"GITHUB_ACTIONS=true", "GITHUB_OUTPUT=" + out, "GITHUB_STEP_SUMMARY=" + summary,
		"GITHUB_SERVER_URL=https://github.com", "GITHUB_REPOSITORY=o/app", "GITHUB_RUN_ID=42", "GITHUB_ACTOR=octocat",
		"INPUT_DIGEST=" + img.String(), "INPUT_TO=staging", "INPUT_USERNAME=ci",
	}
	stdout, stderr, code := runCommand(t, f, dir, github, secret+"\n", false, "--password-stdin")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	if strings.Count(stdout+stderr, secret) != 1 || !strings.Contains(stdout, "::add-mask::"+secret) {
		t.Errorf("the password is printed other than in ::add-mask::\n%s%s", stdout, stderr)
	}
	data, _ := os.ReadFile(out)
	for _, want := range []string{"digest<<", img.DigestStr(), "refs<<", f.host + "/staging/app@" + img.DigestStr(), "tags<<", "record<<"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("outputs lack %q:\n%s", want, data)
		}
	}
	md, _ := os.ReadFile(summary)
	if !strings.Contains(string(md), "### Slipway promote: staging") || !strings.Contains(string(md), "Recorded as #1") {
		t.Errorf("summary:\n%s", md)
	}
	// The record says who and where.
	head, err := f.history(t, "staging").Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rec, err := f.history(t, "staging").Record(context.Background(), head)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Actor != "octocat" || rec.RunURL != "https://github.com/o/app/actions/runs/42" {
		t.Errorf("record actor %q, run %q", rec.Actor, rec.RunURL)
	}
}

func TestMainApprovalThroughGitHubEnvironmentOnlyOnGitHub(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	cfg := "environments:\n  staging:\n    repository: " + f.host + "/staging/app\n    tags: [staging]\n    gates:\n      approval: {}\n"
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	img := f.publish(t, "dev", false)
	args := []string{"--digest", img.String(), "--to", "staging", "--github-environment", "staging", "--dry-run"}
	_, stderr, code := runCommand(t, f, dir, nil, "", false, args...)
	if code != cli.ExitPolicy || !strings.Contains(stderr, "ignored outside GitHub Actions") || !strings.Contains(stderr, "slipway promote: gate approval refused: no approver") {
		t.Errorf("locally: exit %d\n%s", code, stderr)
	}
	stdout, stderr, code := runCommand(t, f, dir, []string{"GITHUB_ACTIONS=true"}, "", false, args...)
	if code != 0 || !strings.Contains(stdout, "approved through the protection rules of GitHub environment staging") {
		t.Errorf("on GitHub: exit %d\n%s%s", code, stdout, stderr)
	}
}

func TestMainDigestFromPushRefs(t *testing.T) {
	f := newFixture(t)
	dir := f.configDir(t)
	img := f.publish(t, "staging", false)
	d := img.DigestStr()
	// Into staging's history first, so production's from gate finds it.
	if _, stderr, code := runCommand(t, f, dir, nil, "", false, "--digest", img.String(), "--to", "staging"); code != 0 {
		t.Fatal(stderr)
	}
	refs := f.host + "/mirror/app@" + d + "," + img.String()
	// production takes the one in staging's repository, whatever the order.
	stdout, stderr, _ := runCommand(t, f, dir, nil, "", false, "--digest", refs, "--to", "production", "--dry-run")
	if !strings.Contains(stdout, "from "+img.String()) {
		t.Errorf("production from %s:\n%s%s", refs, stdout, stderr)
	}
	// On GitLab, the push job's refs arrive by dotenv.
	stdout, stderr, code := runCommand(t, f, dir, []string{"GITLAB_CI=true", "SLIPWAY_PUSH_REFS=" + img.String(), "SLIPWAY_TO=dev", "SLIPWAY_DOTENV=" + filepath.Join(t.TempDir(), "x.env")}, "", false)
	if code != 0 || !strings.Contains(stdout, "from "+img.String()) {
		t.Errorf("GitLab with SLIPWAY_PUSH_REFS: exit %d\n%s%s", code, stdout, stderr)
	}
}

func TestMainHistory(t *testing.T) {
	f := newFixture(t)
	dir := f.configDir(t)
	stdout, stderr, code := runCommand(t, f, dir, nil, "", true)
	if code != cli.ExitUsage || !strings.Contains(stderr, "no environment: give one of dev, production, staging") {
		t.Errorf("no environment: exit %d %s%s", code, stdout, stderr)
	}
	for _, img := range []string{f.publish(t, "dev", false).String(), f.publish(t, "dev", false).String()} {
		if _, stderr, code := runCommand(t, f, dir, nil, "", false, "--digest", img, "--to", "dev"); code != 0 {
			t.Fatalf("promote: %s", stderr)
		}
	}
	stdout, stderr, code = runCommand(t, f, dir, nil, "", true, "dev")
	if code != 0 || strings.Count(stdout, "promoted") != 2 || !strings.Contains(stdout, "← current") {
		t.Errorf("history: exit %d\n%s%s", code, stdout, stderr)
	}
	stdout, _, _ = runCommand(t, f, dir, nil, "", true, "--json", "dev")
	if strings.Count(stdout, "\n") != 2 || !strings.Contains(stdout, `"sequence":2`) {
		t.Errorf("history --json:\n%s", stdout)
	}
}

// A manifest that cannot be pinned in place is found before anything is
// copied: exit 2, one line naming the file and line, and the environment
// untouched, with no history and no tag.
func TestMainManifestsArePlannedBeforePromoting(t *testing.T) {
	f := newFixture(t)
	dir := f.configDir(t)
	img := f.publish(t, "dev", false)
	manifests := filepath.Join(dir, "deploy")
	if err := os.MkdirAll(manifests, 0o755); err != nil {
		t.Fatal(err)
	}
	// A flow-style entry of kustomize's images list: pinning it would add
	// a key inside {…}, which slipway does not do in place.
	kust := "images:\n  - {name: " + f.host + "/staging/app, newTag: v1}\n"
	if err := os.WriteFile(filepath.Join(manifests, "kustomization.yaml"), []byte(kust), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runCommand(t, f, dir, nil, "", false, "--digest", img.String(), "--to", "staging", "--manifests", "deploy")
	if code != cli.ExitUsage {
		t.Fatalf("exit %d, want 2\n%s%s", code, stdout, stderr)
	}
	if lines := strings.Split(strings.TrimSpace(stderr), "\n"); len(lines) != 1 ||
		!strings.Contains(stderr, "kustomization.yaml") || !strings.Contains(stderr, "line 2") || !strings.Contains(stderr, "nothing was promoted") {
		t.Errorf("stderr, want one line naming the file and line:\n%s", stderr)
	}
	if got := f.tagged(t, "staging", "staging"); got != "" {
		t.Errorf("staging names %s after a refused plan", got)
	}
	if head, err := f.history(t, "staging").Head(context.Background()); err != nil || head != nil {
		t.Errorf("history head %+v, %v; want none", head, err)
	}
	data, _ := os.ReadFile(filepath.Join(manifests, "kustomization.yaml"))
	if string(data) != kust {
		t.Errorf("kustomization.yaml changed:\n%s", data)
	}
}

// The attack: a two-platform index whose scan statement covers only one
// platform (slipway scan --platform linux/amd64, or an older slipway that
// scanned one) is refused by the scan gate, exit 3, naming the platform
// left unscanned; a statement of both lets it through.
func TestMainScanGateRefusesAnIndexWithAPlatformUnscanned(t *testing.T) {
	f := newFixture(t)
	dir := f.configDir(t)
	img := f.publish(t, "staging", true)
	platforms := f.platforms[img.DigestStr()]
	if len(platforms) != 2 {
		t.Fatalf("published %d platforms, want 2", len(platforms))
	}
	if _, stderr, code := runCommand(t, f, dir, nil, "", false, "--digest", img.String(), "--to", "staging"); code != 0 {
		t.Fatal(stderr)
	}
	f.clock.Set(now.Add(2 * time.Hour)) // past staging's soak
	f.attachScanOf(t, img, platforms[:1], true, 0, now.Add(time.Hour))
	stdout, stderr, code := runCommand(t, f, dir, nil, "", false, "--digest", img.String(), "--to", "production")
	if code != cli.ExitPolicy || !strings.Contains(stdout+stderr, "no scan attestation covers every platform of the image; the newest leaves "+platforms[1]) {
		t.Errorf("one platform scanned: exit %d, want 3 from the scan gate\n%s%s", code, stdout, stderr)
	}
	if strings.Contains(stdout+stderr, platforms[0]+" ") {
		t.Errorf("the scanned platform is named unscanned:\n%s%s", stdout, stderr)
	}
	f.attachScanOf(t, img, platforms, true, 0, now.Add(90*time.Minute))
	if stdout, stderr, code := runCommand(t, f, dir, nil, "", false, "--digest", img.String(), "--to", "production", "--dry-run"); code != 0 {
		t.Errorf("every platform scanned: exit %d\n%s%s", code, stdout, stderr)
	}
}
