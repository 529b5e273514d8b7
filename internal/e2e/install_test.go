package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
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
)

// installSteps are the steps a stand-in release answers for.
var installSteps = []string{"build", "image", "scan", "push", "promote"}

// fakeReleases serves stand-in releases v1.2.3 and v1.2.4 as GitHub serves a
// release's downloads, and counts the requests.
type fakeReleases struct {
	srv *httptest.Server
	// sums is what each release's SHA256SUMS holds, by tag; bundle, if
	// set, is served as SHA256SUMS.sigstore.json.
	sums   map[string]string
	bundle string

	mu   sync.Mutex
	gets []string
}

func newFakeReleases(t *testing.T) *fakeReleases {
	t.Helper()
	f := &fakeReleases{sums: map[string]string{}}
	files := map[string][]byte{}
	for _, v := range []string{"1.2.3", "1.2.4"} {
		tgz := fakeRelease(t, v)
		files["/v"+v+"/"+hostTarball(v)] = tgz
		sum := sha256.Sum256(tgz)
		f.sums["v"+v] = strings.Repeat("0", 64) + "  slipway_" + v + "_windows_arm64.tar.gz\n" +
			hex.EncodeToString(sum[:]) + "  " + hostTarball(v) + "\n"
	}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.gets = append(f.gets, r.URL.Path)
		f.mu.Unlock()
		tag, file, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		switch {
		case files[r.URL.Path] != nil:
			w.Write(files[r.URL.Path])
		case file == "SHA256SUMS" && f.sums[tag] != "":
			fmt.Fprint(w, f.sums[tag])
		case file == "SHA256SUMS.sigstore.json" && f.bundle != "":
			fmt.Fprint(w, f.bundle)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeReleases) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.gets)
}

// hostTarball is the asset action-install.sh asks for on this machine.
func hostTarball(version string) string {
	return fmt.Sprintf("slipway_%s_%s_%s.tar.gz", version, runtime.GOOS, runtime.GOARCH)
}

// releaseTree is an action tree as the release commit leaves it: the
// install script, and actions/RELEASE naming tag with sums, if tag is set.
func releaseTree(t *testing.T, tag, sums string) string {
	t.Helper()
	dir := t.TempDir()
	script := readFile(t, filepath.Join(must(t, repoRoot), "scripts", "action-install.sh"))
	writeFile(t, filepath.Join(dir, "scripts", "action-install.sh"), script)
	if tag != "" {
		writeFile(t, filepath.Join(dir, "actions", "RELEASE"), tag+"\n"+sums)
	}
	return dir
}

// fakeSlipway writes stand-in slipway commands of version into a new
// directory: slipway answers --version and, for each of steps,
// "STEP --version".
func fakeSlipway(t *testing.T, version string, steps ...string) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "slipway"), slipwayScript(version, steps))
	if err := os.Chmod(filepath.Join(dir, "slipway"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func slipwayScript(version string, steps []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "#!/bin/sh\ncase \"$1 $2\" in\n\"--version \") echo 'slipway %s' ;;\n", version)
	for _, s := range steps {
		fmt.Fprintf(&b, "\"%s --version\") echo 'slipway-%s %s' ;;\n", s, s, version)
	}
	b.WriteString("*) exit 2 ;;\nesac\n")
	return b.String()
}

// fakeCosign is a stand-in for cosign that keeps its arguments and the
// file it was asked to verify in dir, and exits with code.
func fakeCosign(t *testing.T, code int) string {
	t.Helper()
	dir := t.TempDir()
	script := fmt.Sprintf(`#!/bin/sh
printf '%%s\n' "$@" > %[1]q/args
for last; do :; done
cp "$last" %[1]q/verified
exit %[2]d
`, dir, code)
	writeFile(t, filepath.Join(dir, "cosign"), script)
	if err := os.Chmod(filepath.Join(dir, "cosign"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestActionInstall runs scripts/action-install.sh as the actions run it,
// against stand-in releases served over HTTP: which release each ref
// resolves to, what is downloaded and checked against what, and that a
// second step of a job installs nothing.
func TestActionInstall(t *testing.T) {
	requireE2E(t, "bash", "curl", "tar", "sha256sum")
	const sha = "0123456789abcdef0123456789abcdef01234567"
	get := func(v string) []string { return []string{"/v" + v + "/" + hostTarball(v), "/v" + v + "/SHA256SUMS"} }
	tarballOnly := func(v string) []string { return []string{"/v" + v + "/" + hostTarball(v)} }
	identity := "https://github.com/slipwayci/slipway/.github/workflows/release.yml@refs/heads/main"

	tests := []struct {
		name string
		ref  string
		env  []string
		// tree is the release actions/RELEASE names ("" for none), with
		// the sums of that release unless treeSums is set.
		tree, treeSums string
		// onPath is a slipway already on PATH: version, then its steps.
		onPath  []string
		cosign  *int
		bundle  bool
		wantErr string // in stderr; "" means the install succeeds
		want    string // slipway --version of what ends up first on PATH
		gets    []string
		// verified is the release whose sums cosign must have been given.
		verified string
	}{{
		name: "release tag without a RELEASE file",
		ref:  "v1.2.3",
		want: "slipway 1.2.3",
		gets: get("1.2.3"),
	}, {
		name: "slipway-version over a branch",
		ref:  "main", env: []string{"SLIPWAY_INSTALL_VERSION=1.2.3"},
		want: "slipway 1.2.3",
		gets: get("1.2.3"),
	}, {
		name: "major tag resolved by the tree",
		ref:  "v1", tree: "v1.2.4",
		want: "slipway 1.2.4",
		gets: tarballOnly("1.2.4"),
	}, {
		name: "minor tag resolved by the tree",
		ref:  "v1.2", tree: "v1.2.4",
		want: "slipway 1.2.4",
		gets: tarballOnly("1.2.4"),
	}, {
		name: "release commit resolved by the tree",
		ref:  sha, tree: "v1.2.3",
		want: "slipway 1.2.3",
		gets: tarballOnly("1.2.3"),
	}, {
		name: "slipway-version over the tree's release",
		ref:  "v1", tree: "v1.2.4", env: []string{"SLIPWAY_INSTALL_VERSION=v1.2.3"},
		want: "slipway 1.2.3",
		gets: get("1.2.3"),
	}, {
		// The tree's sums are the authority: a release whose own
		// SHA256SUMS agrees with a swapped tarball does not pass.
		name: "tarball that does not match the tree's sums",
		ref:  "v1", tree: "v1.2.4", treeSums: strings.Repeat("1", 64) + "  " + hostTarball("1.2.4") + "\n",
		wantErr: "checksum of " + hostTarball("1.2.4") + " does not match the sums of v1.2.4",
		gets:    tarballOnly("1.2.4"),
	}, {
		name: "tree whose sums lack this platform",
		ref:  "v1", tree: "v1.2.4", treeSums: strings.Repeat("1", 64) + "  slipway_1.2.4_plan9_mips.tar.gz\n",
		wantErr: "the sums of v1.2.4 have no entry for " + hostTarball("1.2.4"),
		gets:    tarballOnly("1.2.4"),
	}, {
		// A branch whose tree holds a RELEASE (a fork of a release
		// commit) builds from source: this tree has none to build.
		name: "branch with a RELEASE file",
		ref:  "fix", tree: "v1.2.4",
		wantErr: "is not slipway's source tree",
	}, {
		name: "another major tag than the tree's release",
		ref:  "v2", tree: "v1.2.4",
		wantErr: "is not slipway's source tree",
	}, {
		name: "pre-release at a floating tag",
		ref:  "v1", tree: "v1.3.0-rc.1",
		wantErr: "is not slipway's source tree",
	}, {
		name: "local path with a RELEASE file",
		ref:  "", tree: "v1.2.4",
		wantErr: "is not slipway's source tree",
	}, {
		name:    "slipway-version not a release",
		env:     []string{"SLIPWAY_INSTALL_VERSION=latest"},
		wantErr: `slipway-version "latest" is not a release version`,
	}, {
		name: "the right version already on PATH",
		ref:  "v1", tree: "v1.2.4", onPath: append([]string{"1.2.4"}, installSteps...),
		want: "slipway 1.2.4",
	}, {
		name: "a go install of the right version on PATH",
		ref:  "v1.2.4", onPath: append([]string{"v1.2.4"}, installSteps...),
		want: "slipway v1.2.4",
	}, {
		name: "another version on PATH",
		ref:  "v1", tree: "v1.2.4", onPath: append([]string{"1.2.3"}, installSteps...),
		want: "slipway 1.2.4",
		gets: tarballOnly("1.2.4"),
	}, {
		name: "the right version on PATH without the step",
		ref:  "v1", tree: "v1.2.4", onPath: []string{"1.2.4", "build"},
		env:  []string{"SLIPWAY_STEPS=build scan"},
		want: "slipway 1.2.4",
		gets: tarballOnly("1.2.4"),
	}, {
		name: "slipway-version wins over PATH",
		ref:  "v1", tree: "v1.2.4", onPath: append([]string{"1.2.4"}, installSteps...),
		env:  []string{"SLIPWAY_INSTALL_VERSION=1.2.3"},
		want: "slipway 1.2.3",
		gets: get("1.2.3"),
	}, {
		name: "signed sums, cosign agrees",
		ref:  "v1", tree: "v1.2.4", cosign: ptr(0), bundle: true,
		want:     "slipway 1.2.4",
		gets:     []string{"/v1.2.4/" + hostTarball("1.2.4"), "/v1.2.4/SHA256SUMS.sigstore.json"},
		verified: "v1.2.4",
	}, {
		name: "signed sums of slipway-version, cosign agrees",
		ref:  "main", env: []string{"SLIPWAY_INSTALL_VERSION=1.2.3", "SLIPWAY_VERIFY=signature"}, cosign: ptr(0), bundle: true,
		want:     "slipway 1.2.3",
		gets:     append(get("1.2.3"), "/v1.2.3/SHA256SUMS.sigstore.json"),
		verified: "v1.2.3",
	}, {
		name: "signed sums, cosign refuses",
		ref:  "v1", tree: "v1.2.4", cosign: ptr(1), bundle: true,
		wantErr:  "the sums of v1.2.4 are not signed by slipway's release workflow",
		gets:     []string{"/v1.2.4/" + hostTarball("1.2.4"), "/v1.2.4/SHA256SUMS.sigstore.json"},
		verified: "v1.2.4",
	}, {
		name: "no signature, cosign on PATH",
		ref:  "v1", tree: "v1.2.4", cosign: ptr(0),
		want: "slipway 1.2.4",
		gets: []string{"/v1.2.4/" + hostTarball("1.2.4"), "/v1.2.4/SHA256SUMS.sigstore.json"},
	}, {
		name: "signature required, none published",
		ref:  "v1", tree: "v1.2.4", cosign: ptr(0), env: []string{"SLIPWAY_VERIFY=signature"},
		wantErr: "v1.2.4 has no signature bundle",
		gets:    []string{"/v1.2.4/" + hostTarball("1.2.4"), "/v1.2.4/SHA256SUMS.sigstore.json"},
	}, {
		name: "signature required, no cosign",
		ref:  "v1", tree: "v1.2.4", bundle: true, env: []string{"SLIPWAY_VERIFY=signature"},
		wantErr: "SLIPWAY_VERIFY=signature needs cosign on PATH",
		gets:    tarballOnly("1.2.4"),
	}, {
		name: "checksum only, cosign on PATH",
		ref:  "v1", tree: "v1.2.4", cosign: ptr(1), bundle: true, env: []string{"SLIPWAY_VERIFY=checksum"},
		want: "slipway 1.2.4",
		gets: tarballOnly("1.2.4"),
	}, {
		name: "unknown verify mode",
		ref:  "v1", tree: "v1.2.4", env: []string{"SLIPWAY_VERIFY=maybe"},
		wantErr: `SLIPWAY_VERIFY "maybe" is not auto, signature or checksum`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rel := newFakeReleases(t)
			if tt.bundle {
				rel.bundle = `{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`
			}
			sums := tt.treeSums
			if sums == "" {
				sums = rel.sums[tt.tree]
			}
			tree := releaseTree(t, tt.tree, sums)

			var path []string
			// The cosign the case names, or none: not one that happens to
			// be on this machine's PATH.
			cosignDir, cosign := "", "/nonexistent/cosign"
			if tt.cosign != nil {
				cosignDir = fakeCosign(t, *tt.cosign)
				cosign = filepath.Join(cosignDir, "cosign")
			}
			if tt.onPath != nil {
				path = append(path, fakeSlipway(t, tt.onPath[0], tt.onPath[1:]...))
			}
			env := append(toolEnv(t, path...), "SLIPWAY_ACTION_REF="+tt.ref, "SLIPWAY_STEPS=build image", "SLIPWAY_COSIGN="+cosign)
			env = append(env, tt.env...)
			temp, ghPath := t.TempDir(), filepath.Join(t.TempDir(), "github_path")
			env = append(env,
				"SLIPWAY_RELEASE_URL="+rel.srv.URL+"/",
				"RUNNER_TEMP="+temp,
				"RUNNER_TOOL_CACHE="+filepath.Join(temp, "toolcache"),
				"GITHUB_PATH="+ghPath,
				"NO_PROXY=127.0.0.1", "no_proxy=127.0.0.1",
			)
			o, err := run(t, temp, env, "bash", filepath.Join(tree, "scripts", "action-install.sh"))
			logOutput(t, "action-install.sh", o)
			if diff := cmp.Diff(tt.gets, rel.requests()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			if tt.verified != "" {
				if got := readFile(t, filepath.Join(cosignDir, "verified")); got != rel.sums[tt.verified] {
					t.Errorf("cosign verified %q, want the sums of %s", got, tt.verified)
				}
				args := readFile(t, filepath.Join(cosignDir, "args"))
				if !strings.Contains(args, "verify-blob\n--bundle\n") || !strings.Contains(args, "--certificate-identity\n"+identity+"\n") ||
					!strings.Contains(args, "--certificate-oidc-issuer\nhttps://token.actions.githubusercontent.com\n") {
					t.Errorf("cosign arguments:\n%s", args)
				}
			}

			if tt.wantErr != "" {
				if err == nil {
					t.Fatal("install succeeded")
				}
				if !strings.Contains(o.Stderr, tt.wantErr) {
					t.Errorf("stderr lacks %q", tt.wantErr)
				}
				// Fail closed: nothing on PATH, nothing unpacked.
				if data, _ := os.ReadFile(ghPath); len(data) > 0 {
					t.Errorf("GITHUB_PATH = %q after a failed install", data)
				}
				filepath.WalkDir(temp, func(path string, d fs.DirEntry, err error) error {
					if err == nil && !d.IsDir() && d.Name() == "slipway" {
						t.Errorf("%s left behind by a failed install", path)
					}
					return nil
				})
				return
			}
			if err != nil {
				t.Fatalf("install: %v", err)
			}
			added, _ := os.ReadFile(ghPath)
			dirs := strings.Fields(string(added))
			if tt.gets == nil {
				// Nothing installed: the slipway on PATH is used as is.
				if len(dirs) != 0 || !strings.Contains(o.Stderr, "already on PATH") {
					t.Errorf("GITHUB_PATH = %q; want nothing added, and the log to say slipway is already on PATH", dirs)
				}
				return
			}
			if len(dirs) != 1 || !strings.HasPrefix(dirs[0], temp+string(filepath.Separator)) {
				t.Fatalf("GITHUB_PATH = %q, want one directory under RUNNER_TEMP", dirs)
			}
			got, err := exec.Command(filepath.Join(dirs[0], "slipway"), "--version").Output()
			if err != nil {
				t.Fatalf("installed slipway: %v", err)
			}
			if strings.TrimSpace(string(got)) != tt.want {
				t.Errorf("installed slipway --version = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestActionInstallOncePerJob runs the install script as four steps of
// one job run it, each seeing what the steps before it put on PATH: a
// release is downloaded once, and a source tree is built once.
func TestActionInstallOncePerJob(t *testing.T) {
	requireE2E(t, "bash", "curl", "tar", "sha256sum", "go")
	t.Run("release", func(t *testing.T) {
		t.Parallel()
		rel := newFakeReleases(t)
		tree := releaseTree(t, "v1.2.4", rel.sums["v1.2.4"])
		job := newInstallJob(t, tree, "v1", rel.srv.URL)
		for _, step := range []string{"build", "image", "scan", "push"} {
			job.step(t, step)
		}
		if diff := cmp.Diff([]string{"/v1.2.4/" + hostTarball("1.2.4")}, rel.requests()); diff != "" {
			t.Errorf("requests over the job (-want +got):\n%s", diff)
		}

		// The next job on the same runner finds the tool cache.
		next := newInstallJob(t, tree, "v1", rel.srv.URL)
		next.toolCache = job.toolCache
		o := next.step(t, "build")
		if len(rel.requests()) != 1 || !strings.Contains(o.Stderr, "from the tool cache") {
			t.Errorf("the second job made requests %q; stderr:\n%s", rel.requests()[1:], o.Stderr)
		}
	})
	t.Run("source", func(t *testing.T) {
		t.Parallel()
		gos := newGoCounter(t)
		job := newInstallJob(t, must(t, repoRoot), "main", "")
		job.path = append(job.path, gos.dir)
		for _, step := range []string{"build", "image", "scan", "push"} {
			job.step(t, step)
		}
		if got := gos.builds(t); len(got) != 1 {
			t.Errorf("go build ran %d times in one job, want once: %q", len(got), got)
		}
	})
}

// installJob runs action-install.sh as the steps of one job run it.
type installJob struct {
	tree, ref, url      string
	temp, toolCache, gh string
	path                []string
}

func newInstallJob(t *testing.T, tree, ref, url string) *installJob {
	temp := t.TempDir()
	return &installJob{tree: tree, ref: ref, url: url, temp: temp,
		toolCache: filepath.Join(t.TempDir(), "toolcache"), gh: filepath.Join(temp, "github_path")}
}

// step runs the install of one action, with what GITHUB_PATH gathered so
// far first on PATH, as the runner does.
func (j *installJob) step(t *testing.T, steps string) output {
	t.Helper()
	data, _ := os.ReadFile(j.gh)
	added := strings.Fields(string(data))
	slices.Reverse(added)
	env := append(toolEnv(t, append(added, j.path...)...),
		"SLIPWAY_ACTION_REF="+j.ref, "SLIPWAY_STEPS="+steps, "SLIPWAY_COSIGN=/nonexistent/cosign",
		"SLIPWAY_RELEASE_URL="+j.url+"/",
		"RUNNER_TEMP="+j.temp, "RUNNER_TOOL_CACHE="+j.toolCache, "GITHUB_PATH="+j.gh,
		"NO_PROXY=127.0.0.1", "no_proxy=127.0.0.1",
	)
	o, err := runFor(t, coldBuildTimeout, j.temp, env, "bash", filepath.Join(j.tree, "scripts", "action-install.sh"))
	logOutput(t, "action-install.sh "+steps, o)
	if err != nil {
		t.Fatalf("install for %s: %v", steps, err)
	}
	return o
}

// goCounter is a go command first on PATH that logs each go build of
// slipway's own module before running the real go.
type goCounter struct{ dir, log string }

func newGoCounter(t *testing.T) goCounter {
	t.Helper()
	real, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := goCounter{dir: dir, log: filepath.Join(t.TempDir(), "go.log")}
	// Only builds in a slipway tree count: slipway build compiling the
	// user's module is not installing slipway.
	script := fmt.Sprintf(`#!/bin/sh
if [ "$1" = build ] && grep -qx 'module github.com/slipwayci/slipway' go.mod 2>/dev/null; then
  printf '%%s\t%%s\n' "$PWD" "$*" >> %q
fi
exec %q "$@"
`, c.log, real)
	writeFile(t, filepath.Join(dir, "go"), script)
	if err := os.Chmod(filepath.Join(dir, "go"), 0o755); err != nil {
		t.Fatal(err)
	}
	return c
}

// builds are the go builds of slipway logged so far: directory, arguments.
func (c goCounter) builds(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(c.log)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

func ptr[T any](v T) *T { return &v }

// fakeRelease is a release tarball as the release workflow would make it,
// holding a stand-in slipway of version that answers for every step.
func fakeRelease(t *testing.T, version string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	script := slipwayScript(version, installSteps)
	if err := tw.WriteHeader(&tar.Header{Name: "slipway", Mode: 0o755, Size: int64(len(script)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte(script)); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
