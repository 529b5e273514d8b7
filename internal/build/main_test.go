package build

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/testkit"
)

// run runs the build step in-process the way cmd/slipway-build does and
// returns its streams and exit code.
func run(t *testing.T, dir string, environ []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	env := cli.Env{
		Args:    args,
		Environ: append(cleanEnviron(), environ...),
		Stdout:  &out,
		Stderr:  &errb,
		Dir:     dir,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	code = cli.ExitCode(&errb, "slipway build", Main(ctx, env))
	return out.String(), errb.String(), code
}

// cleanEnviron is the test process's environment without CI variables, so
// the tests behave the same on a developer machine and in CI.
func cleanEnviron() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "GITHUB_ACTIONS", k == "GITLAB_CI", k == "CI", k == "SOURCE_DATE_EPOCH",
			strings.HasPrefix(k, "INPUT_"), strings.HasPrefix(k, "GITHUB_"), strings.HasPrefix(k, "SLIPWAY_"):
			continue
		}
		env = append(env, kv)
	}
	return env
}

func TestBuildWritesBinariesChecksumsAndRecord(t *testing.T) {
	dir := testkit.SampleRepo(t, "hello", t.TempDir())
	testkit.Git(t, dir, "tag", "v1.4.2")
	stdout, stderr, code := run(t, dir, nil, "--platforms", "linux/amd64,windows/amd64")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	dist := filepath.Join(dir, "dist")
	rec, err := record.Load(dist)
	if err != nil {
		t.Fatal(err)
	}
	commit := testkit.Git(t, dir, "rev-parse", "HEAD")
	if rec.Version != "1.4.2" || rec.Commit != commit || rec.Module != "example.com/hello" || rec.Date != testkit.CommitDate {
		t.Errorf("record header = %+v", rec)
	}

	var paths []string
	for _, a := range rec.Artifacts {
		paths = append(paths, a.Platform+" "+a.Path+" "+a.Package)
		sum, size := fileSum(t, filepath.Join(dist, a.Path))
		if a.SHA256 != sum || a.Size != size {
			t.Errorf("%s: record says %s/%d, file is %s/%d", a.Path, a.SHA256, a.Size, sum, size)
		}
		if a.Version != "1.4.2" || a.Commit != commit || !strings.HasPrefix(a.GoVersion, "go1.") {
			t.Errorf("%s: version/commit/go = %q/%q/%q", a.Path, a.Version, a.Commit, a.GoVersion)
		}
		st, _ := os.Stat(filepath.Join(dist, a.Path))
		if want, _ := time.Parse(time.RFC3339, testkit.CommitDate); !st.ModTime().Equal(want) {
			t.Errorf("%s: mtime %v, want the commit time %v", a.Path, st.ModTime(), want)
		}
	}
	want := []string{
		"linux/amd64 hello_linux_amd64/hello example.com/hello/cmd/hello",
		"windows/amd64 hello_windows_amd64/hello.exe example.com/hello/cmd/hello",
		"linux/amd64 helloctl_linux_amd64/helloctl example.com/hello/cmd/helloctl",
		"windows/amd64 helloctl_windows_amd64/helloctl.exe example.com/hello/cmd/helloctl",
	}
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("artifacts (-want +got):\n%s", diff)
	}

	// SHA256SUMS in sha256sum's format, one line per artifact.
	sums, err := os.ReadFile(filepath.Join(dist, ChecksumsFile))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(sums))
	n := 0
	for sc.Scan() {
		sum, path, ok := strings.Cut(sc.Text(), "  ")
		if got, _ := fileSum(t, filepath.Join(dist, path)); !ok || got != sum {
			t.Errorf("SHA256SUMS line %q does not match the file", sc.Text())
		}
		n++
	}
	if n != len(rec.Artifacts) {
		t.Errorf("SHA256SUMS has %d lines, want %d", n, len(rec.Artifacts))
	}

	// The default ldflags stamp the version; the host can run linux/amd64.
	out, err := exec.Command(filepath.Join(dist, "hello_linux_amd64", "hello")).Output()
	if err != nil {
		t.Fatal(err)
	}
	if wantOut := "hello 1.4.2 (commit " + commit + ", built " + testkit.CommitDate + ", linux/amd64)"; !strings.Contains(string(out), wantOut) {
		t.Errorf("binary printed %q, want %q", out, wantOut)
	}

	// Locally the outputs are printed and the summary is a table.
	for _, s := range []string{"output record=dist/slipway.json", "output version=1.4.2", "Platform", "hello_windows_amd64/hello.exe"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("stdout lacks %q:\n%s", s, stdout)
		}
	}
	if md, err := os.ReadFile(filepath.Join(dist, "summary.md")); err != nil || !strings.Contains(string(md), "| linux/amd64 | hello_linux_amd64/hello |") {
		t.Errorf("summary.md = %q, %v", md, err)
	}
}

func fileSum(t *testing.T, path string) (string, int64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), int64(len(data))
}

// TestReproducibleAcrossCheckouts builds the same commit from two
// checkouts at different paths, the second with an empty build cache, and
// requires byte-identical output.
func TestReproducibleAcrossCheckouts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the standard library from scratch")
	}
	base := t.TempDir()
	a := testkit.SampleRepo(t, "hello", filepath.Join(base, "first", "checkout"))
	b := testkit.SampleRepo(t, "hello", filepath.Join(base, "elsewhere", "deeper", "second"))
	if ca, cb := testkit.Git(t, a, "rev-parse", "HEAD"), testkit.Git(t, b, "rev-parse", "HEAD"); ca != cb {
		t.Fatalf("checkouts differ: %s vs %s", ca, cb)
	}
	platforms := "linux/amd64,linux/arm/v7"
	if _, stderr, code := run(t, a, nil, "--platforms", platforms); code != 0 {
		t.Fatalf("first build: exit %d\n%s", code, stderr)
	}
	if _, stderr, code := run(t, b, []string{"GOCACHE=" + filepath.Join(base, "fresh-cache")}, "--platforms", platforms); code != 0 {
		t.Fatalf("second build: exit %d\n%s", code, stderr)
	}
	for _, f := range []string{ChecksumsFile, record.File, "hello_linux_amd64/hello", "hello_linux_arm_v7/hello", "helloctl_linux_amd64/helloctl"} {
		da, err := os.ReadFile(filepath.Join(a, "dist", f))
		if err != nil {
			t.Fatal(err)
		}
		db, err := os.ReadFile(filepath.Join(b, "dist", f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(da, db) {
			t.Errorf("%s differs between the checkouts", f)
		}
		if bytes.Contains(da, []byte(base)) {
			t.Errorf("%s contains the checkout path %s", f, base)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	sample := testkit.SampleRepo(t, "hello", t.TempDir())
	broken := testkit.SampleRepo(t, "hello", t.TempDir())
	os.WriteFile(filepath.Join(broken, "cmd", "hello", "broken.go"), []byte("package main\n\nfunc broken() {\n\treturn 1\n}\n"), 0o644)
	notModule := t.TempDir()

	tests := []struct {
		name     string
		dir      string
		environ  []string
		args     []string
		code     int
		wantErr  string
		wantMore []string // further text on stderr (annotations)
	}{
		{name: "unknown platform", dir: sample, args: []string{"--platforms", "linux/amd64,plan10/arm"}, code: 2,
			wantErr: `slipway build: --platforms: unknown platform "plan10/arm"; valid platforms (go tool dist list): aix/ppc64,`},
		{name: "library package", dir: sample, args: []string{"./greet"}, code: 2,
			wantErr: "slipway build: package ./greet (example.com/hello/greet): not a main package; name a package with func main"},
		{name: "directory without ./", dir: sample, args: []string{"cmd/hello"}, code: 2,
			wantErr: "slipway build: package cmd/hello: package cmd/hello is not in std"},
		{name: "directory without ./ gets the hint", dir: sample, args: []string{"cmd/hello"}, code: 2,
			wantErr: "; did you mean ./cmd/hello? a path without ./ is read as an import path"},
		{name: "pattern for a missing directory", dir: sample, args: []string{"./nothing/..."}, code: 2,
			wantErr: `slipway build: package ./nothing/...: pattern ./nothing/...: lstat ./nothing/: no such file or directory`},
		{name: "pattern with only libraries", dir: sample, args: []string{"./greet/..."}, code: 2,
			wantErr: `slipway build: not a main package: no main packages in example.com/hello matching ./greet/...`},
		{name: "not in a module", dir: notModule, code: 2,
			wantErr: "slipway build: not inside a Go module: " + notModule + " has no go.mod"},
		{name: "bad template", dir: sample, args: []string{"--ldflags", "-X main.version={{.Version"}, code: 2,
			wantErr: "slipway build: --ldflags template: ldflags:1: unclosed action"},
		{name: "template with unset env", dir: sample, args: []string{"--ldflags", "-X main.v={{.Env.SLIPWAY_TEST_UNSET}}"}, code: 2,
			wantErr: `map has no entry for key "SLIPWAY_TEST_UNSET"`},
		{name: "bad env pair", dir: sample, args: []string{"--env", "CGO_ENABLED"}, code: 2,
			wantErr: `slipway build: --env "CGO_ENABLED" is not KEY=VALUE`},
		{name: "bad flag", dir: sample, args: []string{"--platfroms", "x"}, code: 2,
			wantErr: "slipway build: flag provided but not defined: -platfroms; see slipway build --help"},
		{name: "bad SOURCE_DATE_EPOCH", dir: sample, environ: []string{"SOURCE_DATE_EPOCH=soon"}, code: 2,
			wantErr: `SOURCE_DATE_EPOCH="soon" is not a number`},
		{name: "compile error", dir: broken, args: []string{"--platforms", "linux/amd64"}, code: 1,
			wantErr:  "slipway build: compiling for linux/amd64: 1 error(s); see the annotations above",
			wantMore: []string{"cmd/hello/broken.go:4:9: error: go build: too many return values"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := run(t, tt.dir, tt.environ, tt.args...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d", code, tt.code)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, tt.wantErr) && !strings.Contains(last, tt.wantErr) {
				t.Errorf("last line of stderr:\n%s\nwant it to contain:\n%s", last, tt.wantErr)
			}
			for _, m := range tt.wantMore {
				if !strings.Contains(stderr, m) {
					t.Errorf("stderr lacks %q:\n%s", m, stderr)
				}
			}
			if strings.Contains(stderr, "panic") || strings.Contains(stderr, "goroutine") {
				t.Errorf("stderr has a stack trace:\n%s", stderr)
			}
			if _, err := os.Stat(filepath.Join(tt.dir, "dist", record.File)); err == nil {
				t.Errorf("a failed build left a record")
			}
		})
	}
}

// TestFailedBuildKeepsPreviousOutput checks nothing is half-written: a
// compile error leaves the last good build untouched and no staging left.
func TestFailedBuildKeepsPreviousOutput(t *testing.T) {
	dir := testkit.SampleRepo(t, "hello", t.TempDir())
	if _, stderr, code := run(t, dir, nil, "--platforms", "linux/amd64"); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	dist := filepath.Join(dir, "dist")
	before, _ := os.ReadFile(filepath.Join(dist, record.File))
	os.WriteFile(filepath.Join(dir, "cmd", "helloctl", "broken.go"), []byte("package main\nvar x int = \"s\"\n"), 0o644)
	if _, _, code := run(t, dir, nil, "--platforms", "linux/amd64,linux/arm64"); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	after, _ := os.ReadFile(filepath.Join(dist, record.File))
	if !bytes.Equal(before, after) {
		t.Error("the failed build changed the record")
	}
	entries, _ := os.ReadDir(dist)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{"SHA256SUMS", "hello_linux_amd64", "helloctl_linux_amd64", "slipway.json", "summary.md"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("dist entries (-want +got):\n%s", diff)
	}
}

// TestRebuildRemovesStaleArtifacts: building fewer platforms than last time
// must not leave the old binaries beside a record that no longer lists them.
func TestRebuildRemovesStaleArtifacts(t *testing.T) {
	dir := testkit.SampleRepo(t, "hello", t.TempDir())
	if _, stderr, code := run(t, dir, nil, "--platforms", "linux/amd64,linux/arm64"); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if _, stderr, code := run(t, dir, nil, "--platforms", "linux/arm64", "./cmd/hello"); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, gone := range []string{"hello_linux_amd64", "helloctl_linux_amd64", "helloctl_linux_arm64"} {
		if _, err := os.Stat(filepath.Join(dir, "dist", gone)); err == nil {
			t.Errorf("%s is still in dist", gone)
		}
	}
	sums, _ := os.ReadFile(filepath.Join(dir, "dist", ChecksumsFile))
	if lines := strings.Count(string(sums), "\n"); lines != 1 {
		t.Errorf("SHA256SUMS has %d lines, want 1:\n%s", lines, sums)
	}
}

// TestGitHubInputsOutputsAndSummary runs the step as GitHub runs it:
// inputs from INPUT_*, outputs in GITHUB_OUTPUT, Markdown in the summary.
func TestGitHubInputsOutputsAndSummary(t *testing.T) {
	dir := testkit.SampleRepo(t, "hello", t.TempDir())
	files := t.TempDir()
	outputs, summary := filepath.Join(files, "output"), filepath.Join(files, "summary")
	environ := []string{
		"GITHUB_ACTIONS=true", "GITHUB_OUTPUT=" + outputs, "GITHUB_STEP_SUMMARY=" + summary,
		"INPUT_PLATFORMS=linux/arm64", "INPUT_PACKAGES=./cmd/hello", "INPUT_LDFLAGS=-X main.version={{.ShortCommit}}-gh",
	}
	stdout, stderr, code := run(t, dir, environ)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	got := parseGitHubOutput(t, outputs)
	var arts []struct {
		Name, Path, Platform, SHA256 string
		Size                         int64
	}
	if err := json.Unmarshal([]byte(got["artifacts"]), &arts); err != nil {
		t.Fatalf("artifacts output %q: %v", got["artifacts"], err)
	}
	if len(arts) != 1 || arts[0].Platform != "linux/arm64" || arts[0].Path != "dist/hello_linux_arm64/hello" {
		t.Errorf("artifacts = %+v", arts)
	}
	if sum, _ := fileSum(t, filepath.Join(dir, arts[0].Path)); sum != arts[0].SHA256 {
		t.Errorf("artifacts sha256 %s, file %s", arts[0].SHA256, sum)
	}
	if got["record"] != "dist/slipway.json" {
		t.Errorf("record output = %q", got["record"])
	}
	data, _ := os.ReadFile(filepath.Join(dir, "dist", "hello_linux_arm64", "hello"))
	short := testkit.Git(t, dir, "rev-parse", "HEAD")[:7]
	if !bytes.Contains(data, []byte(short+"-gh")) {
		t.Errorf("binary lacks the version stamped from INPUT_LDFLAGS (%s-gh)", short)
	}
	md, err := os.ReadFile(summary)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`\| Platform \| Binary \| Size \| SHA-256 \|\n\|---\|---\|---\|---\|\n\| linux/arm64 \| hello_linux_arm64/hello \| [0-9.]+ MiB \| ` + arts[0].SHA256 + ` \|`).Match(md) {
		t.Errorf("summary:\n%s", md)
	}
}

// parseGitHubOutput reads name<<DELIM blocks as the runner does.
func parseGitHubOutput(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		name, delim, ok := strings.Cut(lines[i], "<<")
		if !ok {
			continue
		}
		var value []string
		for i++; i < len(lines) && lines[i] != delim; i++ {
			value = append(value, lines[i])
		}
		out[name] = strings.Join(value, "\n")
	}
	return out
}

// TestCompileErrorAnnotatesOnGitHub checks compiler lines become ::error
// commands with the path relative to the repository root.
func TestCompileErrorAnnotatesOnGitHub(t *testing.T) {
	root := t.TempDir()
	testkit.CopyDir(t, filepath.Join(testkit.RepoRoot(t), "testdata", "apps", "hello"), filepath.Join(root, "services", "hello"))
	testkit.Git(t, root, "init", "-q")
	os.WriteFile(filepath.Join(root, "services", "hello", "cmd", "hello", "bad.go"), []byte("package main\n\nvar _ = undefinedThing\n"), 0o644)
	testkit.Commit(t, root, "broken")
	stdout, stderr, code := run(t, filepath.Join(root, "services", "hello"), []string{"GITHUB_ACTIONS=true"}, "--platforms", "linux/amd64")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, stdout, stderr)
	}
	want := "::error col=9,file=services/hello/cmd/hello/bad.go,line=3,title=go build::undefined: undefinedThing"
	if !strings.Contains(stdout, want) {
		t.Errorf("stdout lacks %q:\n%s", want, stdout)
	}
}

// TestGitLabVariablesAndDotenv runs the step as a GitLab job: flags from
// SLIPWAY_* variables (the summary follows SLIPWAY_OUT), outputs in the
// dotenv report.
func TestGitLabVariablesAndDotenv(t *testing.T) {
	dir := testkit.SampleRepo(t, "hello", t.TempDir())
	environ := []string{"GITLAB_CI=true", "SLIPWAY_PLATFORMS=linux/arm64", "SLIPWAY_OUT=out", "SLIPWAY_PACKAGES=./cmd/helloctl", "SLIPWAY_VERSION=v9.9.9"}
	stdout, stderr, code := run(t, dir, environ)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "section_start:") || !strings.Contains(stdout, "section_end:") {
		t.Errorf("no collapsible section in the log:\n%s", stdout)
	}
	env, err := os.ReadFile(filepath.Join(dir, "slipway.env"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"SLIPWAY_BUILD_RECORD=out/slipway.json\n", `SLIPWAY_BUILD_ARTIFACTS=[{"name":"helloctl","path":"out/helloctl_linux_arm64/helloctl"`} {
		if !strings.Contains(string(env), want) {
			t.Errorf("slipway.env lacks %q:\n%s", want, env)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "summary.md")); err != nil {
		t.Errorf("summary not under SLIPWAY_OUT: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "dist")); err == nil {
		t.Errorf("dist was created although SLIPWAY_OUT=out")
	}
}
