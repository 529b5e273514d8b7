package image

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/slipwayci/slipway/internal/cli"
)

// dockerLogin is a runner's registry login, mode 0600, outside any
// checkout: what a link in the static files reached for in the attack.
func dockerLogin(t *testing.T) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), ".docker", "config.json")
	writeFile(t, file, `{"auths":{"ghcr.io":{"auth":"c2VjcmV0LWxvZ2lu"}}}`, 0o600)
	return file
}

// staticTree opens dir as the static files' tree for the test.
func staticTree(t *testing.T, dir string) *tree {
	t.Helper()
	tr, err := openTree(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// layerBytes writes src and fails the test if that fails.
func layerBytes(t *testing.T, src source) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := src.write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// The attack: static/favicon.ico links to ~/.docker/config.json. Whether
// the link is absolute or climbs out with "..", or hides behind a second
// link inside the tree, listing the tree refuses it, naming the file.
func TestStaticFilesSymlinkToDockerLoginRefused(t *testing.T) {
	login := dockerLogin(t)
	tests := []struct {
		name string
		// links are made in static/: name -> target, given the link's
		// own directory.
		links map[string]func(dir string) string
	}{
		{"absolute", map[string]func(string) string{
			"favicon.ico": func(string) string { return login },
		}},
		{"relative", map[string]func(string) string{
			"favicon.ico": func(dir string) string { return relTo(t, dir, login) },
		}},
		{"through an inner link", map[string]func(string) string{
			"favicon.ico":    func(string) string { return "icons/real.ico" },
			"icons/real.ico": func(string) string { return login },
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			static := filepath.Join(t.TempDir(), "static")
			writeFile(t, filepath.Join(static, "index.html"), "<h1>hi</h1>", 0o644)
			for name, target := range tt.links {
				link := filepath.Join(static, filepath.FromSlash(name))
				if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(target(filepath.Dir(link)), link); err != nil {
					t.Fatal(err)
				}
			}
			src, err := staticFilesSource(staticTree(t, static), date)
			if err == nil {
				files, _ := readTar(t, bytes.NewReader(layerBytes(t, src)), 1<<10)
				for name, f := range files {
					if strings.Contains(f.Data, "c2VjcmV0LWxvZ2lu") {
						t.Errorf("the registry login is in the layer as %s, mode %o", name, f.Mode)
					}
				}
				t.Fatal("a link out of the static files was accepted")
			}
			if !strings.Contains(err.Error(), "favicon.ico") || !strings.Contains(err.Error(), "outside") {
				t.Errorf("err = %v, want it to name favicon.ico as a link outside the directory", err)
			}
		})
	}
}

// The same attack through the command line: exit 2, one line, and no
// image written.
func TestMainStaticFilesSymlinkToDockerLoginRefused(t *testing.T) {
	repo, dist := sampleDist(t)
	static := filepath.Join(filepath.Dir(dist), "static")
	writeFile(t, filepath.Join(static, "index.html"), "<h1>hi</h1>", 0o644)
	if err := os.Symlink(dockerLogin(t), filepath.Join(static, "favicon.ico")); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runMain(t, filepath.Dir(dist), testEnviron(),
		"--dist", "dist", "--dir", repo, "--cache", sharedCache(), "--static-files", "static")
	if code != cli.ExitUsage {
		t.Errorf("exit %d, want %d; stderr:\n%s", code, cli.ExitUsage, stderr)
	}
	if !strings.Contains(stderr, "--static-files") || !strings.Contains(stderr, "favicon.ico") || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
		t.Errorf("stderr = %q, want one line naming --static-files and favicon.ico", stderr)
	}
	if _, err := os.Stat(filepath.Join(dist, "image")); err == nil {
		t.Errorf("an image was written")
	}
}

// The attack after the check: a file listed as a file is swapped for a
// link to the login before the layer is written (it is written twice:
// once to hash, once to compress). The write fails instead of reading it.
func TestStaticFilesSwappedForSymlinkAfterListingRefused(t *testing.T) {
	login := dockerLogin(t)
	static := filepath.Join(t.TempDir(), "static")
	favicon := filepath.Join(static, "favicon.ico")
	writeFile(t, favicon, "icon", 0o644)
	src, err := staticFilesSource(staticTree(t, static), date)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(favicon); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(login, favicon); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	err = src.write(&b)
	if err == nil {
		t.Fatal("the layer was written through a link out of the tree")
	}
	if strings.Contains(b.String(), "c2VjcmV0LWxvZ2lu") {
		t.Errorf("the registry login reached the layer")
	}
}

// Modes in the layer are 0644 or 0755, but never wider than the source's:
// a file only its owner may read stays so in the image.
func TestStaticFilesModesNeverWiderThanSource(t *testing.T) {
	static := filepath.Join(t.TempDir(), "static")
	if err := os.MkdirAll(static, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]os.FileMode{
		"secret.txt": 0o600, "group.txt": 0o640, "shared.txt": 0o664, "plain.txt": 0o644,
		"own.sh": 0o700, "run.sh": 0o755, "team.sh": 0o775, "odd.sh": 0o751,
	}
	for name, mode := range files {
		writeFile(t, filepath.Join(static, name), name, mode)
		// The umask narrows what os.WriteFile creates.
		if err := os.Chmod(filepath.Join(static, name), mode); err != nil {
			t.Fatal(err)
		}
	}
	for dir, mode := range map[string]os.FileMode{"private": 0o700, "public": 0o775} {
		writeFile(t, filepath.Join(static, dir, "f"), "f", 0o644)
		if err := os.Chmod(filepath.Join(static, dir), mode); err != nil {
			t.Fatal(err)
		}
	}
	src, err := staticFilesSource(staticTree(t, static), date)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := readTar(t, bytes.NewReader(layerBytes(t, src)), 0)
	modes := map[string]int64{}
	for name, f := range got {
		modes[name] = f.Mode
	}
	want := map[string]int64{
		"srv/": 0o755, "srv/static/": 0o755,
		"srv/static/secret.txt": 0o600, "srv/static/group.txt": 0o640, "srv/static/shared.txt": 0o644, "srv/static/plain.txt": 0o644,
		"srv/static/own.sh": 0o700, "srv/static/run.sh": 0o755, "srv/static/team.sh": 0o755, "srv/static/odd.sh": 0o751,
		"srv/static/private/": 0o700, "srv/static/private/f": 0o644,
		"srv/static/public/": 0o755, "srv/static/public/f": 0o644,
	}
	if diff := cmp.Diff(want, modes); diff != "" {
		t.Errorf("modes (-want +got):\n%s", diff)
	}
}

// A tree is what --file SRC:DEST will add too: one file, or a directory
// under any destination, through the same root.
func TestTreeEntriesOfOneFileAndASubtree(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "config", "app.yaml"), "a: 1", 0o644)
	writeFile(t, filepath.Join(dir, "config", "certs", "ca.pem"), "pem", 0o600)
	if err := os.Symlink(dockerLogin(t), filepath.Join(dir, "config", "login.json")); err != nil {
		t.Fatal(err)
	}
	tr := staticTree(t, dir)

	one, err := tr.entries("config/app.yaml", "etc/app/app.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := readTar(t, bytes.NewReader(layerBytes(t, tarSource("file", one, date))), 100)
	if diff := cmp.Diff(map[string]tarFile{
		"etc/app/app.yaml": {Type: tar.TypeReg, Mode: 0o644, ModTime: date, Data: "a: 1"},
	}, got); diff != "" {
		t.Errorf("one file (-want +got):\n%s", diff)
	}

	if _, err := tr.entries("config", "etc/app"); err == nil || !strings.Contains(err.Error(), "login.json") {
		t.Errorf("a subtree holding a link out: err = %v, want login.json refused", err)
	}
	if _, err := tr.entries("config/login.json", "etc/login.json"); err == nil {
		t.Errorf("a link out, named directly, was accepted")
	}
	if _, err := tr.entries("../outside", "etc/x"); err == nil {
		t.Errorf("a path out of the tree was accepted")
	}
}

// relTo is target relative to dir.
func relTo(t *testing.T, dir, target string) string {
	t.Helper()
	rel, err := filepath.Rel(dir, target)
	if err != nil {
		t.Fatal(err)
	}
	return rel
}
