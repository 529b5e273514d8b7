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
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestActionInstall runs scripts/action-install.sh against a release served
// from an httptest server in place of GitHub's release downloads.
func TestActionInstall(t *testing.T) {
	requireE2E(t, "bash", "curl", "tar", "sha256sum", "go")
	script := filepath.Join(must(t, repoRoot), "scripts", "action-install.sh")

	const version = "1.2.3"
	tarball := fmt.Sprintf("slipway_%s_%s_%s.tar.gz", version, runtime.GOOS, runtime.GOARCH)
	release := fakeRelease(t, version)
	sum := sha256.Sum256(release)
	good := hex.EncodeToString(sum[:])
	wrong := strings.Repeat("0", 64)
	other := "slipway_1.2.3_windows_arm64.tar.gz"
	downloads := []string{"/v1.2.3/" + tarball, "/v1.2.3/SHA256SUMS"}

	tests := []struct {
		name    string
		env     []string
		sums    string
		wantErr string // in stderr; "" means the install succeeds
		want    string // slipway-build --version of what was installed
		gets    []string
	}{{
		name: "release tag",
		env:  []string{"SLIPWAY_ACTION_REF=v1.2.3"},
		sums: wrong + "  " + other + "\n" + good + "  " + tarball + "\n",
		want: "slipway-build 1.2.3 (release)",
		gets: downloads,
	}, {
		name: "slipway-version over a branch",
		env:  []string{"SLIPWAY_ACTION_REF=main", "SLIPWAY_INSTALL_VERSION=1.2.3"},
		sums: good + " *" + tarball + "\n",
		want: "slipway-build 1.2.3 (release)",
		gets: downloads,
	}, {
		name:    "wrong checksum",
		env:     []string{"SLIPWAY_ACTION_REF=v1.2.3"},
		sums:    good + "  " + other + "\n" + wrong + "  " + tarball + "\n",
		wantErr: "checksum of " + tarball + " does not match",
		gets:    downloads,
	}, {
		name:    "no checksum for this platform",
		env:     []string{"SLIPWAY_ACTION_REF=v1.2.3"},
		sums:    good + "  " + other + "\n",
		wantErr: "has no entry for " + tarball,
		gets:    downloads,
	}, {
		name:    "slipway-version not a release",
		env:     []string{"SLIPWAY_INSTALL_VERSION=latest"},
		wantErr: `slipway-version "latest" is not a release version`,
	}, {
		// The path act and the other e2e tests take.
		name: "branch builds from source",
		env:  []string{"SLIPWAY_ACTION_REF=main"},
		want: "slipway-build ",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var (
				mu   sync.Mutex
				gets []string
			)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				gets = append(gets, r.URL.Path)
				mu.Unlock()
				switch r.URL.Path {
				case "/v1.2.3/" + tarball:
					w.Write(release)
				case "/v1.2.3/SHA256SUMS":
					fmt.Fprint(w, tt.sums)
				default:
					http.NotFound(w, r)
				}
			}))
			defer srv.Close()

			temp := t.TempDir()
			ghPath := filepath.Join(t.TempDir(), "github_path")
			env := append(toolEnv(t), tt.env...)
			env = append(env,
				"SLIPWAY_RELEASE_URL="+srv.URL+"/",
				"RUNNER_TEMP="+temp,
				"GITHUB_PATH="+ghPath,
				"NO_PROXY=127.0.0.1", "no_proxy=127.0.0.1",
			)
			o, err := run(t, temp, env, "bash", script)
			logOutput(t, "action-install.sh", o)
			mu.Lock()
			if diff := cmp.Diff(tt.gets, gets); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			mu.Unlock()

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
					if err == nil && (d.Name() == "slipway" || d.Name() == "slipway-build") {
						t.Errorf("%s left behind by a failed install", path)
					}
					return nil
				})
				return
			}

			if err != nil {
				t.Fatalf("install: %v", err)
			}
			dirs := strings.Fields(readFile(t, ghPath))
			if len(dirs) != 1 || !strings.HasPrefix(dirs[0], temp+string(filepath.Separator)) {
				t.Fatalf("GITHUB_PATH = %q, want one directory under RUNNER_TEMP", dirs)
			}
			got, err := exec.Command(filepath.Join(dirs[0], "slipway-build"), "--version").Output()
			if err != nil {
				t.Fatalf("installed slipway-build: %v", err)
			}
			if !strings.HasPrefix(string(got), tt.want) {
				t.Errorf("installed slipway-build --version = %q, want %q…", got, tt.want)
			}
			if _, err := os.Stat(filepath.Join(dirs[0], "slipway")); err != nil {
				t.Error(err)
			}
		})
	}
}

// fakeRelease is a release tarball as the release workflow would make it,
// holding stand-ins for slipway and slipway-build that print a version.
func fakeRelease(t *testing.T, version string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, name := range []string{"slipway", "slipway-build"} {
		script := fmt.Sprintf("#!/bin/sh\necho '%s %s (release)'\n", name, version)
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(script)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(script)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
