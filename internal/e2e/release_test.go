package e2e

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
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
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/slipwayci/slipway/internal/record"
)

// releaseTag is the tag the test repository gets, as a release would.
const releaseTag = "v1.2.3"

// TestRelease runs scripts/package-release.sh on a real slipway build made
// with the release workflow's own inputs, checks the assets, and installs
// them with scripts/action-install.sh from an httptest server standing in
// for GitHub's release downloads: the release is exactly what the actions'
// verified download reads.
func TestRelease(t *testing.T) {
	requireE2E(t, "bash", "git", "rsync", "go", "curl", "tar", "gzip", "sha256sum")
	// Cold, the windows build compiles its dependencies.
	budget(t, coldBuildTimeout+5*time.Minute)
	bin := must(t, slipwayBin)
	root := must(t, repoRoot)
	step := releaseBuildStep(t, root)

	// Every platform the install script downloads for is released.
	released := strings.Split(step.With["platforms"], ",")
	for _, goos := range []string{"linux", "darwin"} {
		for _, arch := range []string{"amd64", "arm64"} {
			if !slices.Contains(released, goos+"/"+arch) {
				t.Errorf("release.yml builds %v, without %s/%s, which action-install.sh downloads", released, goos, arch)
			}
		}
	}
	if step.With["packages"] != "./cmd/..." {
		t.Errorf("release.yml builds packages %q, want ./cmd/...", step.With["packages"])
	}

	// A tagged commit, built with the workflow's ldflags and env. Only the
	// two commands the install script needs, for this machine and for
	// windows (.exe names in the archive): all of ./cmd/... for five
	// platforms is the release job's time, not a test's (TestDogfood builds
	// all of it). darwin's archive is packaged as linux's is; building it
	// here compiled the standard library for one more platform, which no
	// other test needs.
	repo, head := newRepo(t, nil)
	git(t, repo, "tag", releaseTag)
	host := runtime.GOOS + "/" + runtime.GOARCH
	platforms := []string{host}
	for _, p := range []string{"windows/amd64"} {
		if p != host {
			platforms = append(platforms, p)
		}
	}
	args := []string{"build",
		"--platforms", strings.Join(platforms, ","),
		"--packages", "./cmd/slipway,./cmd/slipway-build",
		"--ldflags", step.With["ldflags"],
	}
	for _, kv := range strings.Fields(step.With["build-env"]) {
		args = append(args, "--env", kv)
	}
	o, err := runFor(t, coldBuildTimeout, repo, toolEnv(t), filepath.Join(bin, "slipway"), args...)
	logOutput(t, "slipway build", o)
	if err != nil {
		t.Fatalf("slipway build: %v", err)
	}
	dist := filepath.Join(repo, "dist")
	rec, err := record.Load(dist)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Version != "1.2.3" || rec.Commit != head {
		t.Fatalf("record: version %s commit %s, want 1.2.3 %s", rec.Version, rec.Commit, head)
	}

	out := packageRelease(t, dist)

	t.Run("assets", func(t *testing.T) {
		var tarballs []string
		for _, p := range platforms {
			tarballs = append(tarballs, releaseTarball(p))
		}
		slices.Sort(tarballs)
		want := append([]string{"SHA256SUMS"}, tarballs...)
		if diff := cmp.Diff(want, dirNames(t, out)); diff != "" {
			t.Fatalf("release assets (-want +got):\n%s", diff)
		}

		var sums strings.Builder
		for _, name := range tarballs {
			sums.WriteString(sha256File(t, filepath.Join(out, name)) + "  " + name + "\n")
		}
		if diff := cmp.Diff(sums.String(), readFile(t, filepath.Join(out, "SHA256SUMS"))); diff != "" {
			t.Errorf("SHA256SUMS (-want +got):\n%s", diff)
		}

		date, err := time.Parse(time.RFC3339, rec.Date)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range platforms {
			exe := ""
			if strings.HasPrefix(p, "windows/") {
				exe = ".exe"
			}
			want := map[string]string{}
			for _, a := range rec.Artifacts {
				if a.Platform == p {
					want[a.Name+exe] = a.SHA256
				}
			}
			if len(want) != 2 {
				t.Fatalf("the record has %d binaries for %s, want slipway and slipway-build", len(want), p)
			}
			got := tarballFiles(t, filepath.Join(out, releaseTarball(p)), date)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s, name → sha256 (-built +packaged):\n%s", releaseTarball(p), diff)
			}
		}
	})

	t.Run("reproducible", func(t *testing.T) {
		again := packageRelease(t, dist)
		for _, name := range dirNames(t, out) {
			if sha256File(t, filepath.Join(out, name)) != sha256File(t, filepath.Join(again, name)) {
				t.Errorf("%s differs between two runs on one build", name)
			}
		}
	})

	t.Run("install", func(t *testing.T) {
		installed, gets := installRelease(t, out)
		want := []string{"/" + releaseTag + "/" + releaseTarball(host), "/" + releaseTag + "/SHA256SUMS"}
		if diff := cmp.Diff(want, gets); diff != "" {
			t.Errorf("action-install.sh's requests (-want +got):\n%s", diff)
		}
		// What is on PATH is the build's binaries, byte for byte.
		want = nil
		for _, a := range rec.Artifacts {
			if a.Platform == host {
				want = append(want, a.Name+" "+a.SHA256)
			}
		}
		var got []string
		for _, name := range dirNames(t, installed) {
			got = append(got, name+" "+sha256File(t, filepath.Join(installed, name)))
		}
		slices.Sort(want)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("installed binaries (-built +installed):\n%s", diff)
		}
		for _, c := range []struct{ args, want string }{
			{"slipway --version", "slipway 1.2.3\n"},
			{"slipway-build --version", "slipway-build 1.2.3\n"},
			{"slipway build --version", "slipway-build 1.2.3\n"},
		} {
			argv := strings.Fields(c.args)
			cmd := exec.Command(filepath.Join(installed, argv[0]), argv[1:]...)
			cmd.Env = toolEnv(t)
			got, err := cmd.Output()
			if err != nil || string(got) != c.want {
				t.Errorf("installed %s = %q, %v; want %q", c.args, got, err, c.want)
			}
		}
	})

	t.Run("refusals", func(t *testing.T) {
		tampered := copyDist(t, dist)
		f, err := os.OpenFile(filepath.Join(tampered, "slipway_"+strings.ReplaceAll(host, "/", "_"), "slipway"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("x")
		f.Close()

		// SHA256SUMS without the dispatcher's lines: checked, but short.
		noDispatcher := copyDist(t, dist)
		var kept []string
		for _, line := range strings.SplitAfter(readFile(t, filepath.Join(dist, "SHA256SUMS")), "\n") {
			if !strings.Contains(line, "  slipway_") {
				kept = append(kept, line)
			}
		}
		writeFile(t, filepath.Join(noDispatcher, "SHA256SUMS"), strings.Join(kept, ""))

		tests := []struct {
			name, tag, dist, want string
		}{
			{"another version", "v1.2.4", dist, "slipway.json is not version 1.2.4"},
			{"not a release tag", "main", dist, "main is not a release tag"},
			{"tampered binary", releaseTag, tampered, "do not match its SHA256SUMS"},
			{"no dispatcher", releaseTag, noDispatcher, "has no slipway;"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				out := t.TempDir()
				o, err := runPackage(t, tt.tag, tt.dist, out)
				if err == nil {
					t.Fatal("package-release.sh succeeded")
				}
				if !strings.Contains(o.Stderr, tt.want) {
					t.Errorf("stderr %q lacks %q", o.Stderr, tt.want)
				}
				if names := dirNames(t, out); len(names) > 0 {
					t.Errorf("a refused packaging left %v", names)
				}
			})
		}
	})
}

// releaseStep is one step of a workflow, as far as the test reads it.
type releaseStep struct {
	ID   string            `yaml:"id"`
	Uses string            `yaml:"uses"`
	With map[string]string `yaml:"with"`
}

// releaseBuildStep returns the ./actions/build step of the release workflow.
func releaseBuildStep(t *testing.T, root string) releaseStep {
	t.Helper()
	var wf struct {
		Jobs map[string]struct {
			Steps []releaseStep `yaml:"steps"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, filepath.Join(root, ".github", "workflows", "release.yml"))), &wf); err != nil {
		t.Fatalf("release.yml: %v", err)
	}
	for _, s := range wf.Jobs["release"].Steps {
		if s.Uses == "./actions/build" {
			return s
		}
	}
	t.Fatal("release.yml's release job has no ./actions/build step")
	return releaseStep{}
}

// releaseTarball is the asset name action-install.sh asks for.
func releaseTarball(platform string) string {
	return fmt.Sprintf("slipway_%s_%s.tar.gz", strings.TrimPrefix(releaseTag, "v"), strings.ReplaceAll(platform, "/", "_"))
}

// packageRelease runs scripts/package-release.sh on dist and returns its
// output directory.
func packageRelease(t *testing.T, dist string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "release")
	if _, err := runPackage(t, releaseTag, dist, out); err != nil {
		t.Fatalf("package-release.sh: %v", err)
	}
	return out
}

func runPackage(t *testing.T, tag, dist, out string) (output, error) {
	t.Helper()
	script := filepath.Join(must(t, repoRoot), "scripts", "package-release.sh")
	o, err := run(t, t.TempDir(), toolEnv(t), "bash", script, tag, dist, out)
	logOutput(t, "package-release.sh", o)
	return o, err
}

// installRelease serves the release assets in dir as GitHub serves a
// release's downloads and runs action-install.sh as the actions do at tag
// releaseTag. It returns the directory put on PATH and the paths fetched.
func installRelease(t *testing.T, dir string) (string, []string) {
	t.Helper()
	var (
		mu   sync.Mutex
		gets []string
	)
	files := http.StripPrefix("/"+releaseTag+"/", http.FileServer(http.Dir(dir)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gets = append(gets, r.URL.Path)
		mu.Unlock()
		files.ServeHTTP(w, r)
	}))
	defer srv.Close()

	temp := t.TempDir()
	ghPath := filepath.Join(t.TempDir(), "github_path")
	env := append(toolEnv(t),
		"SLIPWAY_ACTION_REF="+releaseTag,
		// Checked against SHA256SUMS only: a cosign on this machine
		// would look for a signature the test release does not have.
		"SLIPWAY_VERIFY=checksum",
		"SLIPWAY_RELEASE_URL="+srv.URL+"/",
		"RUNNER_TEMP="+temp,
		"GITHUB_PATH="+ghPath,
		"NO_PROXY=127.0.0.1", "no_proxy=127.0.0.1",
	)
	script := filepath.Join(must(t, repoRoot), "scripts", "action-install.sh")
	o, err := run(t, temp, env, "bash", script)
	logOutput(t, "action-install.sh", o)
	if err != nil {
		t.Fatalf("action-install.sh: %v", err)
	}
	dirs := strings.Fields(readFile(t, ghPath))
	if len(dirs) != 1 {
		t.Fatalf("GITHUB_PATH = %q, want one directory", dirs)
	}
	mu.Lock()
	defer mu.Unlock()
	return dirs[0], slices.Clone(gets)
}

// tarballFiles checks that a release tarball holds only regular files at
// its top level, executable, owned by 0:0 and dated at the source date,
// in a gzip stream without name or time, and returns name → sha256.
func tarballFiles(t *testing.T, path string, date time.Time) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	if gz.Name != "" || !gz.ModTime.IsZero() {
		t.Errorf("%s: gzip header has name %q, time %v; want neither", path, gz.Name, gz.ModTime)
	}
	files := map[string]string{}
	var order []string
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		order = append(order, h.Name)
		if h.Typeflag != tar.TypeReg || strings.Contains(h.Name, "/") || h.Mode != 0o755 || h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(date) {
			t.Errorf("%s: entry %s: type %c mode %o owner %d:%d time %v; want a top-level file, 755, 0:0, %v",
				path, h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid, h.ModTime.UTC(), date)
		}
		sum := sha256.New()
		if _, err := io.Copy(sum, tr); err != nil {
			t.Fatal(err)
		}
		files[h.Name] = hex.EncodeToString(sum.Sum(nil))
	}
	if !slices.IsSorted(order) {
		t.Errorf("%s: entries %v are not sorted", path, order)
	}
	return files
}

// git runs a git command in dir, as newRepo's commit was made.
func git(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL="+os.DevNull, "GIT_CONFIG_NOSYSTEM=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// dirNames lists a directory's entries, sorted.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// copyDist copies a build's output to a new directory.
func copyDist(t *testing.T, dist string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "dist")
	if err := os.CopyFS(dir, os.DirFS(dist)); err != nil {
		t.Fatal(err)
	}
	return dir
}
