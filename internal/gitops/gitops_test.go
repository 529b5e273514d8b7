package gitops

import (
	"bytes"
	"flag"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/slipwayci/slipway/internal/testkit"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

var cases = []struct {
	name        string
	target      Target
	wantChanges []string // file:line old -> new
}{
	{
		name:   "same-registry",
		target: Target{Repository: "registry.example.com/team/hello", Digest: digest, Tag: "1.4.2"},
		wantChanges: []string{
			"base/deployment.yaml:19 registry.example.com/team/hello:1.4.0 -> registry.example.com/team/hello@" + digest,
			"base/deployment.yaml:23 registry.example.com/team/hello:latest -> registry.example.com/team/hello@" + digest,
			"chart/values.yaml:5 1.4.0 -> 1.4.2@" + digest,
			"overlays/production/kustomization.yaml:8  -> " + digest,
			"overlays/production/kustomization.yaml:8 newTag: 1.4.0 -> ",
		},
	},
	{
		name:   "other-registry",
		target: Target{Repository: "prod.example.com/hello", Match: []string{"registry.example.com/team/hello"}, Digest: digest},
		wantChanges: []string{
			"base/deployment.yaml:19 registry.example.com/team/hello:1.4.0 -> prod.example.com/hello@" + digest,
			"base/deployment.yaml:23 registry.example.com/team/hello:latest -> prod.example.com/hello@" + digest,
			"chart/values.yaml:4 registry.example.com/team/hello -> prod.example.com/hello",
			"chart/values.yaml:5 1.4.0 -> 1.4.0@" + digest,
			"overlays/production/kustomization.yaml:8  -> prod.example.com/hello",
			"overlays/production/kustomization.yaml:8  -> " + digest,
			"overlays/production/kustomization.yaml:8 newTag: 1.4.0 -> ",
		},
	},
}

func TestRewriteGolden(t *testing.T) {
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			testkit.CopyDir(t, filepath.Join("testdata", "in"), dir)
			res, err := Rewrite(dir, tt.target, false)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range res.Changes {
				got = append(got, c.File+":"+strconv.Itoa(c.Line)+" "+c.Old+" -> "+c.New)
			}
			if diff := cmp.Diff(tt.wantChanges, got); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
			if len(res.Skipped) != 1 || res.Skipped[0].File != "notes.yaml" {
				t.Errorf("skipped = %+v, want notes.yaml only (chart templates are not read)", res.Skipped)
			}
			golden := filepath.Join("testdata", "golden", tt.name)
			if *update {
				os.RemoveAll(golden)
				testkit.CopyDir(t, dir, golden)
			}
			compareTrees(t, golden, dir)

			// A second run finds everything pinned already.
			again, err := Rewrite(dir, tt.target, false)
			if err != nil {
				t.Fatal(err)
			}
			if len(again.Changes) != 0 {
				t.Errorf("second run changed %+v", again.Changes)
			}
		})
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	dir := t.TempDir()
	testkit.CopyDir(t, filepath.Join("testdata", "in"), dir)
	res, err := Rewrite(dir, cases[0].target, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changes) == 0 {
		t.Fatal("dry run reported no changes")
	}
	compareTrees(t, filepath.Join("testdata", "in"), dir)
}

func TestBadTarget(t *testing.T) {
	for _, tt := range []Target{
		{Repository: "registry.example.com/team/hello", Digest: "sha256:abc"},
		{Repository: "Not A Repo", Digest: digest},
	} {
		if _, err := Rewrite(t.TempDir(), tt, true); err == nil {
			t.Errorf("Rewrite(%+v) succeeded", tt)
		}
	}
}

// TestKustomizeBuild renders the rewritten overlay with a real kustomize
// and checks every container of the service is pinned by digest.
func TestKustomizeBuild(t *testing.T) {
	kustomize, err := exec.LookPath("kustomize")
	if err != nil {
		if os.Getenv("SLIPWAY_E2E") != "" {
			t.Fatal("kustomize not on PATH: make test-deps installs it")
		}
		t.Skip("kustomize not on PATH; run make test")
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			testkit.CopyDir(t, filepath.Join("testdata", "in"), dir)
			if _, err := Rewrite(dir, tt.target, false); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(kustomize, "build", filepath.Join(dir, "overlays", "production")).CombinedOutput()
			if err != nil {
				t.Fatalf("kustomize build: %v\n%s", err, out)
			}
			want := tt.target.Repository + "@" + digest
			if n := strings.Count(string(out), "image: "+want); n != 2 {
				t.Errorf("kustomize output has %d containers pinned to %s, want 2:\n%s", n, want, out)
			}
			if !strings.Contains(string(out), "image: registry.example.com/team/proxy:2.2") {
				t.Errorf("the other image lost its kustomize tag:\n%s", out)
			}
		})
	}
}

func compareTrees(t *testing.T, want, got string) {
	t.Helper()
	filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		w, _ := os.ReadFile(p)
		g, err := os.ReadFile(filepath.Join(got, rel))
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		if !bytes.Equal(w, g) {
			t.Errorf("%s differs from golden (-want +got):\n%s", rel, cmp.Diff(string(w), string(g)))
		}
		return nil
	})
}

// TestPinInPlace covers layouts the line-based editor once got wrong: it
// pins them exactly, or refuses with the line to change.
func TestPinInPlace(t *testing.T) {
	const repo = "registry.example.com/team/hello"
	for _, tt := range []struct {
		name, in, want, wantErr string
		kustomization           bool
	}{
		{name: "characters before the value wider than a byte", in: `{ü: 1, image: "` + repo + `:1.0"}` + "\n",
			want: `{ü: 1, image: "` + repo + "@" + digest + `"}` + "\n"},
		{name: "byte order mark", in: "\ufeffimage: '" + repo + ":1.0'\n",
			want: "\ufeffimage: '" + repo + "@" + digest + "'\n"},
		{name: "lone carriage returns end lines", in: "a: 1\rimage: " + repo + "\rb: 2\r",
			want: "a: 1\rimage: " + repo + "@" + digest + "\rb: 2\r"},
		{name: "empty digest", kustomization: true, in: "images:\n- name: " + repo + "\n  digest:\n",
			want: "images:\n- name: " + repo + "\n  digest: " + digest + "\n"},
		{name: "several newTags", kustomization: true, in: "images:\n- name: " + repo + "\n  newTag: a\n  newTag: b\n",
			want: "images:\n- name: " + repo + "\n  digest: " + digest + "\n"},
		// Comments on the lines rewritten stay; a deleted newTag's comment
		// stays on a line of its own where the newTag was.
		{name: "comments kept", kustomization: true,
			in:   "images:\n- name: app # the api\n  newName: " + repo + " # moved in 2025\n  newTag: 1.4.0 # bumped by renovate\n",
			want: "images:\n- name: app # the api\n  digest: " + digest + "\n  newName: " + repo + " # moved in 2025\n  # bumped by renovate\n"},
		{name: "comment on a replaced digest kept", kustomization: true,
			in:   "images:\n- name: " + repo + "\n  digest: sha256:" + strings.Repeat("0", 64) + " # 1.4.0\n",
			want: "images:\n- name: " + repo + "\n  digest: " + digest + " # 1.4.0\n"},
		{name: "anchored value", in: `image: &i "` + repo + `:1.0"` + "\n", wantErr: "line 1: cannot edit a multi-line, block, tagged or anchored value"},
		{name: "flow image entry", kustomization: true, in: "images:\n  - {name: " + repo + ", newTag: v1}\n", wantErr: "line 2: cannot add or remove a key of a {flow: mapping} in place"},
		{name: "newTag first", kustomization: true, in: "images:\n- newTag: v1\n  name: " + repo + "\n", wantErr: "line 2: cannot remove newTag in place"},
		{name: "block newTag", kustomization: true, in: "images:\n- name: " + repo + "\n  newTag: |\n    v1\n", wantErr: "line 3: cannot edit a multi-line, block"},
		{name: "newTag on the next line", kustomization: true, in: "images:\n- name: " + repo + "\n  newTag:\n    v1\n", wantErr: "line 4: cannot edit beside a multi-line value"},
		{name: "digest a mapping", kustomization: true, in: "images:\n- name: " + repo + "\n  digest:\n    a: b\n", wantErr: "line 4: cannot pin a list or mapping"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := newMatcher(Target{Repository: repo, Digest: digest})
			if err != nil {
				t.Fatal(err)
			}
			base := "values.yaml"
			if tt.kustomization {
				base = "kustomization.yaml"
			}
			edits, err := m.file([]byte(tt.in), base)
			if err != nil {
				t.Fatal(err)
			}
			out, err := apply([]byte(tt.in), edits)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q; out:\n%s", err, tt.wantErr, out)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(out)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
