package e2e

import (
	"archive/tar"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/testkit"
)

// coldBuildTimeout bounds a build of slipway itself with
// GOEXPERIMENT=jsonv2, as a release is built: the first on a machine
// compiles every dependency again, for each platform.
const coldBuildTimeout = 25 * time.Minute

// TestDogfood makes Slipway's own image with Slipway's own steps:
// scripts/dogfood.sh on a copy of this repository builds every command and
// images them with slipway as the entrypoint. The image then runs under
// runc: it must print the version the build stamped, and the dispatcher
// must find its steps next to itself in /usr/local/bin, without PATH.
//
// It builds this machine's platform only. The script's default second
// platform, linux/arm64, would compile every dependency again, trivy's
// included, for an image this machine cannot start: about nine minutes of
// both cores on a cold 2-core machine, a fifth of make test's budget. The
// index over several platforms is the image step's, tested with the
// sample app (TestImageArm64); the CI workflow's dogfood job runs the
// script with both platforms.
func TestDogfood(t *testing.T) {
	requireE2E(t, "bash", "git", "rsync", "go", "umoci", "runc")
	// This platform's build is the run's shared build, compiled once.
	bin := must(t, slipwayBin)
	host := runtime.GOOS + "/" + runtime.GOARCH
	repo, head := newRepo(t, nil)

	env := append(toolEnv(t), "SLIPWAY="+filepath.Join(bin, "slipway"), "PLATFORMS="+host)
	o, err := runFor(t, coldBuildTimeout, repo, env, "bash", "scripts/dogfood.sh")
	logOutput(t, "dogfood.sh", o)
	if err != nil {
		t.Fatalf("scripts/dogfood.sh: %v", err)
	}

	dist := filepath.Join(repo, "dist", "dogfood")
	rec, err := record.Load(dist)
	if err != nil {
		t.Fatal(err)
	}
	if want := wantVersion(head); rec.Module != "github.com/slipwayci/slipway" || rec.Version != want || rec.Commit != head {
		t.Fatalf("record: module %s version %s commit %s, want github.com/slipwayci/slipway %s %s", rec.Module, rec.Version, rec.Commit, want, head)
	}

	// Every command of cmd/: nothing left out.
	cmds := commands(t, repo)
	platforms := []string{host}
	var want, got []string
	for _, p := range platforms {
		for _, c := range cmds {
			want = append(want, p+" "+c)
		}
	}
	sums := map[string]string{} // "platform name" → sha256
	for _, a := range rec.Artifacts {
		got = append(got, a.Platform+" "+a.Name)
		sums[a.Platform+" "+a.Name] = a.SHA256
	}
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("built binaries (-want +got):\n%s", diff)
	}

	// Built as a release is: trimmed, static, and with trivy's jsonv2 so
	// slipway-scan can scan images. (Go leaves -ldflags out of the build
	// information under -trimpath; the container run below checks the
	// stamp.)
	for _, a := range rec.Artifacts {
		bi, err := buildinfo.ReadFile(filepath.Join(dist, filepath.FromSlash(a.Path)))
		if err != nil {
			t.Fatalf("%s: %v", a.Path, err)
		}
		settings := map[string]string{}
		for _, s := range bi.Settings {
			settings[s.Key] = s.Value
		}
		for k, v := range map[string]string{"-trimpath": "true", "CGO_ENABLED": "0", "GOEXPERIMENT": "jsonv2"} {
			if settings[k] != v {
				t.Errorf("%s built with %s=%q, want %q", a.Path, k, settings[k], v)
			}
		}
	}

	if rec.Image == nil {
		t.Fatal("the record has no image section")
	}
	if diff := cmp.Diff([]string{"/usr/local/bin/slipway"}, rec.Image.Entrypoint); diff != "" {
		t.Errorf("entrypoint (-want +got):\n%s", diff)
	}
	lay := filepath.Join(dist, rec.Image.Layout)
	idx := testkit.LayoutIndex(t, lay)
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var inIndex []string
	for _, d := range im.Manifests {
		p := d.Platform.OS + "/" + d.Platform.Architecture
		inIndex = append(inIndex, p)
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		// Each image holds exactly this platform's binaries, as built.
		wantBins := map[string]string{}
		for _, c := range cmds {
			wantBins[c] = sums[p+" "+c]
		}
		if diff := cmp.Diff(wantBins, imageBinaries(t, img)); diff != "" {
			t.Errorf("%s image's /usr/local/bin, name → sha256 (-built +image):\n%s", p, diff)
		}
	}
	slices.Sort(inIndex)
	if diff := cmp.Diff(platforms, inIndex); diff != "" {
		t.Errorf("platforms in the index (-want +got):\n%s", diff)
	}

	bundle := imageUnpack(t, lay, host)
	var steps []string
	for _, c := range cmds {
		if s, ok := strings.CutPrefix(c, "slipway-"); ok {
			steps = append(steps, s)
		}
	}
	tests := []struct {
		name string
		args []string
		want func(string) bool
		show string
	}{{
		name: "version",
		args: []string{"--version"},
		want: func(s string) bool { return s == "slipway "+rec.Version+"\n" },
		show: "slipway " + rec.Version,
	}, {
		name: "installed steps",
		args: []string{"--help"},
		want: func(s string) bool { return strings.Contains(s, "\ninstalled steps: "+strings.Join(steps, ", ")+"\n") },
		show: "installed steps: " + strings.Join(steps, ", "),
	}, {
		name: "build help",
		args: []string{"build", "--help"},
		want: func(s string) bool {
			return strings.HasPrefix(s, "usage: slipway build [flags] [packages]\n") && strings.Contains(s, "-platforms")
		},
		show: "slipway build's usage",
	}, {
		// The step binary carries the stamp too.
		name: "build version",
		args: []string{"build", "--version"},
		want: func(s string) bool { return s == "slipway-build "+rec.Version+"\n" },
		show: "slipway-build " + rec.Version,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := containerRun(t, bundle, tt.args...)
			if !tt.want(got) {
				t.Errorf("slipway %s printed:\n%s\nwant %s", strings.Join(tt.args, " "), got, tt.show)
			}
		})
	}
}

// commands lists the commands of repo: every directory of cmd/.
func commands(t *testing.T, repo string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(repo, "cmd"))
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	for _, e := range entries {
		if e.IsDir() {
			cmds = append(cmds, e.Name())
		}
	}
	if !slices.Contains(cmds, "slipway") || !slices.Contains(cmds, "slipway-build") {
		t.Fatalf("cmd/ holds %v, want slipway and its steps", cmds)
	}
	return cmds
}

// imageBinaries reads every layer of img once and returns the files under
// /usr/local/bin with their SHA-256.
func imageBinaries(t *testing.T, img v1.Image) map[string]string {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	bins := map[string]string{}
	eachFile(t, layers, func(h *tar.Header, r io.Reader) bool {
		name, ok := strings.CutPrefix(h.Name, "usr/local/bin/")
		if !ok || h.Typeflag != tar.TypeReg {
			return true
		}
		if h.Mode != 0o755 {
			t.Errorf("/usr/local/bin/%s has mode %o, want 755", name, h.Mode)
		}
		sum := sha256.New()
		if _, err := io.Copy(sum, r); err != nil {
			t.Fatal(err)
		}
		bins[name] = hex.EncodeToString(sum.Sum(nil))
		return true
	})
	return bins
}

// containerRun runs slipway with args in the bundle and returns what it
// printed. PATH is emptied, so a step is found only next to
// /usr/local/bin/slipway, where the image put it.
func containerRun(t *testing.T, bundle string, args ...string) string {
	t.Helper()
	editProcess(t, bundle, func(proc map[string]any) {
		argv := []any{"/usr/local/bin/slipway"}
		for _, a := range args {
			argv = append(argv, a)
		}
		proc["args"] = argv
		var env []any
		for _, kv := range proc["env"].([]any) {
			if !strings.HasPrefix(kv.(string), "PATH=") {
				env = append(env, kv)
			}
		}
		proc["env"] = append(env, "PATH=/nonexistent")
	})
	return imageRunc(t, bundle)
}
