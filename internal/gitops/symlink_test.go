package gitops

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const pinned = "registry.example.com/team/hello@" + digest

// manifest is a deployment of the target image at a tag.
const manifest = "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n        - image: registry.example.com/team/hello:1.0\n"

// linkState is what the test checks of a path after a rewrite.
type linkState struct {
	Link string // symlink target, or "" for a regular file
	Mode fs.FileMode
	Data string // a regular file's contents
}

func stateOf(t *testing.T, path string) linkState {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode()&fs.ModeSymlink != 0 {
		target, err := os.Readlink(path)
		if err != nil {
			t.Fatal(err)
		}
		return linkState{Link: target}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return linkState{Mode: st.Mode().Perm(), Data: string(data)}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, path, data string, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// The attack: a YAML in the manifests links to a file outside them (a
// runner's kubeconfig, another checkout's secrets). Pinning must not
// follow it: rewriting the link would copy that file into the repository a
// workflow then commits, as a world-writable regular file. The link stays
// a link, its target is untouched, and the link is listed as skipped.
func TestManifestSymlinkOutOfTreeNotFollowed(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "kubeconfig.yaml")
	secret := manifest + "# token: s3cr3t\n"
	write(t, outside, secret, 0o600)
	for _, dryRun := range []bool{false, true} {
		dir := t.TempDir()
		write(t, filepath.Join(dir, "app.yaml"), manifest, 0o644)
		symlink(t, outside, filepath.Join(dir, "stolen.yaml"))
		rel, err := filepath.Rel(filepath.Join(dir, "deploy"), outside)
		if err != nil {
			t.Fatal(err)
		}
		symlink(t, rel, filepath.Join(dir, "deploy", "relative.yaml"))

		res, err := Rewrite(dir, Target{Repository: "registry.example.com/team/hello", Digest: digest}, dryRun)
		if err != nil {
			t.Fatal(err)
		}
		var changed []string
		for _, c := range res.Changes {
			changed = append(changed, c.File)
		}
		if diff := cmp.Diff([]string{"app.yaml"}, changed); diff != "" {
			t.Errorf("dry run %v: changed files (-want +got):\n%s", dryRun, diff)
		}
		skipped := map[string]string{}
		for _, s := range res.Skipped {
			skipped[s.File] = s.Reason
		}
		for _, name := range []string{"stolen.yaml", "deploy/relative.yaml"} {
			if !strings.Contains(skipped[name], "outside") {
				t.Errorf("dry run %v: %s skipped as %q, want a link outside the directory", dryRun, name, skipped[name])
			}
		}
		if got := stateOf(t, filepath.Join(dir, "stolen.yaml")); got != (linkState{Link: outside}) {
			t.Errorf("dry run %v: stolen.yaml is now %+v, want the link as it was", dryRun, got)
		}
		if got := stateOf(t, filepath.Join(dir, "deploy", "relative.yaml")); got != (linkState{Link: rel}) {
			t.Errorf("dry run %v: deploy/relative.yaml is now %+v, want the link as it was", dryRun, got)
		}
		if got := stateOf(t, outside); got != (linkState{Mode: 0o600, Data: secret}) {
			t.Errorf("dry run %v: the file outside is now %+v", dryRun, got)
		}
	}
}

// A link inside the manifests is resolved: its target is pinned once,
// where it is, keeping the target's mode; the link stays a link.
func TestManifestSymlinkInsideTreePinsTargetKeepingMode(t *testing.T) {
	for _, dryRun := range []bool{false, true} {
		dir := t.TempDir()
		write(t, filepath.Join(dir, "base", "deployment.yaml"), manifest, 0o640)
		symlink(t, "../base/deployment.yaml", filepath.Join(dir, "overlays", "deployment.yaml"))
		symlink(t, "base/deployment.yaml", filepath.Join(dir, "a-link.yaml"))

		res, err := Rewrite(dir, Target{Repository: "registry.example.com/team/hello", Digest: digest}, dryRun)
		if err != nil {
			t.Fatal(err)
		}
		var changed []string
		for _, c := range res.Changes {
			changed = append(changed, c.File+" -> "+c.New)
		}
		if diff := cmp.Diff([]string{"base/deployment.yaml -> " + pinned}, changed); diff != "" {
			t.Errorf("dry run %v: changes (-want +got):\n%s", dryRun, diff)
		}
		for link, target := range map[string]string{"overlays/deployment.yaml": "../base/deployment.yaml", "a-link.yaml": "base/deployment.yaml"} {
			if got := stateOf(t, filepath.Join(dir, link)); got != (linkState{Link: target}) {
				t.Errorf("dry run %v: %s is now %+v, want the link as it was", dryRun, link, got)
			}
		}
		want := linkState{Mode: 0o640, Data: strings.Replace(manifest, "registry.example.com/team/hello:1.0", pinned, 1)}
		if dryRun {
			want.Data = manifest
		}
		if got := stateOf(t, filepath.Join(dir, "base", "deployment.yaml")); got != want {
			t.Errorf("dry run %v: base/deployment.yaml is %+v, want %+v", dryRun, got, want)
		}
	}
}
