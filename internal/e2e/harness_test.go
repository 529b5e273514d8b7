package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// toolTimeout bounds each run of act, gitlab-ci-local or a script: long
// enough for a cold Go build cache, short enough that a hang fails.
const toolTimeout = 5 * time.Minute

// commitDate is the author and committer date of the test repository's one
// commit, so the version slipway derives from it is known in advance.
const commitDate = "2024-01-01T00:00:00Z"

// sampleApp is where the sample app sits, here and in the test repository.
const sampleApp = "testdata/apps/hello"

// wantVersion is the pseudo-version slipway derives for an untagged,
// clean commit made at commitDate.
func wantVersion(head string) string {
	return "0.0.0-20240101000000-" + head[:12]
}

// requireE2E skips the test unless SLIPWAY_E2E=1, and then fails it if a
// tool it needs is missing: a gated test that skips itself in CI would
// pass without testing anything. It makes the test parallel.
func requireE2E(t *testing.T, tools ...string) {
	t.Helper()
	if os.Getenv("SLIPWAY_E2E") != "1" {
		t.Skip("end-to-end test; run with SLIPWAY_E2E=1 go test ./internal/e2e/ (make test), after scripts/install-test-deps.sh")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("SLIPWAY_E2E=1 but %s is not on PATH; scripts/install-test-deps.sh installs it", tool)
		}
	}
	// Every end-to-end test runs beside others (go test's -parallel, the
	// number of CPUs by default): much of each one's time is spent waiting
	// on tools, registries and settle times, not computing, and one after
	// another they took 26 minutes on a cold 2-core machine. Each has its
	// own registries, repository copy, HOME and runc state. The deadline
	// starts once the test really runs, not while it waits for a slot.
	t.Parallel()
	startDeadline(t, testBudget)
}

func TestMain(m *testing.M) {
	// The local Sigstore is leased by the signing tests (sigstoretest.Lease)
	// and stops when the last of them ends, not with the run: other
	// packages' tests wait for the machine's one stack meanwhile.
	code := m.Run()
	cleanup()
	os.Exit(code)
}

var (
	cleanupMu   sync.Mutex
	cleanupDirs []string
)

// cleanup removes what the once-per-run helpers created.
func cleanup() {
	cleanupMu.Lock()
	defer cleanupMu.Unlock()
	for _, d := range cleanupDirs {
		os.RemoveAll(d)
	}
}

// repoRoot is the root of the slipway module the tests run in.
var repoRoot = sync.OnceValues(func() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("finding the module: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("finding the module: not inside one")
	}
	return filepath.Dir(gomod), nil
})

// sharedTempDir makes a directory that outlives one test, for what a run
// builds once and shares; TestMain removes it at the end.
func sharedTempDir(prefix string) (string, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", err
	}
	cleanupMu.Lock()
	cleanupDirs = append(cleanupDirs, dir)
	cleanupMu.Unlock()
	return dir, nil
}

// slipwayBin builds every slipway binary once per run, into a temporary
// directory rather than the work tree, which other people share, and as a
// release, the Dockerfile and the actions' source installs build them:
// with GOEXPERIMENT=jsonv2, so that slipway-scan links trivy and can scan
// images. make test vets and tests with the same experiment, so this
// build mostly links; on its own, the first on a machine compiles trivy
// and its dependencies: minutes.
var slipwayBin = sync.OnceValues(func() (string, error) {
	return buildSlipway("slipway-e2e-bin-", "GOEXPERIMENT=jsonv2")
})

// buildSlipway builds ./cmd/... into a directory shared by the run, with
// env added to the go command's. The flags are those of
// scripts/action-install.sh's source build, and -trimpath and
// CGO_ENABLED=0 those of slipway build too: the compiled packages then
// land in the build cache under the keys that the actions' builds under
// act and gitlab-ci-local, TestDogfood's linux/amd64 build and TestRelease's
// look up. Without them each of those would compile every dependency
// again, trivy's included.
func buildSlipway(prefix string, env ...string) (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	dir, err := sharedTempDir(prefix)
	if err != nil {
		return "", err
	}
	what := strings.Join(append([]string{"go build ./cmd/..."}, env...), " ")
	ctx, cancel := context.WithTimeoutCause(context.Background(), coldBuildTimeout, fmt.Errorf("%s did not finish in %s", what, coldBuildTimeout))
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", dir+string(filepath.Separator), "./cmd/...")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), append([]string{"CGO_ENABLED=0"}, env...)...)
	ownProcessGroup(cmd)
	if out, err := cmd.CombinedOutput(); err != nil {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		return "", fmt.Errorf("%s: %v\n%s", what, err, out)
	}
	return dir, nil
}

// goEnv holds the go command's settings that live under HOME, pinned so a
// tool run with a temporary HOME keeps the real build and module caches
// (fast, and no downloads) and the user's go env -w settings.
var goEnv = sync.OnceValues(func() ([]string, error) {
	keys := []string{"GOENV", "GOCACHE", "GOMODCACHE", "GOPATH"}
	out, err := exec.Command("go", append([]string{"env"}, keys...)...).Output()
	if err != nil {
		return nil, fmt.Errorf("go env: %w", err)
	}
	vals := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(vals) != len(keys) {
		return nil, fmt.Errorf("go env: got %d values for %d keys", len(vals), len(keys))
	}
	env := make([]string, len(keys))
	for i, k := range keys {
		env[i] = k + "=" + vals[i]
	}
	return env, nil
})

// must returns f's value, failing the test on an error. f is mostly a
// build shared by the whole run, which has a deadline of its own, so the
// time spent waiting for it is not counted against the test's.
func must[T any](t *testing.T, f func() (T, error)) T {
	t.Helper()
	d := deadlineOf(t)
	d.pause()
	v, err := f()
	d.resume()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// leaks reports whether an environment variable of the process running the
// tests would leak into the CI run under test: when the tests themselves
// run in GitHub Actions or GitLab CI, their CI's variables must not decide
// what act or gitlab-ci-local see.
func leaks(key string) bool {
	for _, p := range []string{"GITHUB_", "RUNNER_", "ACTIONS_", "INPUT_", "CI_", "GITLAB_", "SLIPWAY_", "SIGSTORE_", "COSIGN_"} {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return key == "CI" || key == "ACT"
}

// toolEnv is the environment for a tool under test: this process's, minus
// CI variables, with a fresh HOME (no ~/.actrc, no ~/.gitlab-ci-local) and
// pathDirs put first on PATH.
func toolEnv(t *testing.T, pathDirs ...string) []string {
	t.Helper()
	home := t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !leaks(k) {
			env = append(env, kv)
		}
	}
	env = append(env,
		"HOME="+home,
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_CACHE_HOME="+filepath.Join(home, ".cache"),
		"NO_COLOR=1",
	)
	env = append(env, must(t, goEnv)...)
	if len(pathDirs) > 0 {
		env = append(env, "PATH="+strings.Join(slices.Concat(pathDirs, []string{os.Getenv("PATH")}), string(filepath.ListSeparator)))
	}
	return env
}

// newRepo creates a git repository holding a copy of slipway's source and
// the sample app, plus files (path: content), in one commit made at
// commitDate. It returns the directory and the commit hash.
func newRepo(t *testing.T, files map[string]string) (dir, head string) {
	t.Helper()
	root := must(t, repoRoot)
	dir = t.TempDir()

	// rsync -R keeps each source's path below the "/./" marker.
	args := []string{"-aR", "--exclude=dist/", "--exclude=.gitlab-ci-local/", "--exclude=slipway.env"}
	for _, p := range []string{"actions", "scripts", "cmd", "internal", "templates", "go.mod", "go.sum", sampleApp} {
		args = append(args, root+"/./"+p)
	}
	args = append(args, dir+"/")
	if out, err := exec.Command("rsync", args...).CombinedOutput(); err != nil {
		t.Fatalf("copying the repository: %v\n%s", err, out)
	}

	// What the steps write is ignored, as in a real project, so the tree
	// stays clean and the version has no +dirty.
	writeFile(t, filepath.Join(dir, ".gitignore"), "dist/\nslipway.env\n.gitlab-ci-local/\n")
	for name, content := range files {
		writeFile(t, filepath.Join(dir, filepath.FromSlash(name)), content)
	}

	env := append(os.Environ(),
		// The user's git config (signing, hooks, templates) stays out.
		"GIT_CONFIG_GLOBAL="+os.DevNull, "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Slipway E2E", "GIT_AUTHOR_EMAIL=e2e@slipway.invalid", "GIT_AUTHOR_DATE="+commitDate,
		"GIT_COMMITTER_NAME=Slipway E2E", "GIT_COMMITTER_EMAIL=e2e@slipway.invalid", "GIT_COMMITTER_DATE="+commitDate,
	)
	for _, args := range [][]string{
		{"init", "-q", "-b", "main"},
		{"add", "-A"},
		{"commit", "-q", "-m", "e2e"},
	} {
		cmd := exec.Command("git", args...)
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	cmd := exec.Command("git", "rev-parse", "HEAD")
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git rev-parse HEAD: %v", err)
	}
	return dir, strings.TrimSpace(string(out))
}

// output is what a tool printed.
type output struct {
	Stdout, Stderr string
}

// run runs a tool in dir with env under toolTimeout, killing its whole
// process group if it overruns. The error is the tool's exit status.
func run(t *testing.T, dir string, env []string, name string, args ...string) (output, error) {
	t.Helper()
	return runFor(t, toolTimeout, dir, env, name, args...)
}

// runFor is run with another time limit, for a tool that compiles far more
// than a sample app when the build cache is cold.
func runFor(t *testing.T, timeout time.Duration, dir string, env []string, name string, args ...string) (output, error) {
	t.Helper()
	ctx, cancel := context.WithTimeoutCause(testContext(t), timeout, fmt.Errorf("%s did not finish in %s", name, timeout))
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	ownProcessGroup(cmd)
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr

	start := time.Now()
	err := cmd.Run()
	t.Logf("%s %s: %v in %s", name, strings.Join(args, " "), exitStatus(err), time.Since(start).Round(time.Millisecond))
	if ctx.Err() != nil {
		err = fmt.Errorf("%w: %w", context.Cause(ctx), err)
	}
	return output{stdout.String(), stderr.String()}, err
}

func exitStatus(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// logOutput shows a tool's output when the test fails, where it explains
// the failure, and keeps passing runs quiet.
func logOutput(t *testing.T, name string, out output) {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s stdout:\n%s\n%s stderr:\n%s", name, out.Stdout, name, out.Stderr)
		}
	})
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readFile returns a file's content, failing the test if it cannot.
func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
