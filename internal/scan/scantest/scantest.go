// Package scantest holds what slipway scan's tests share: the sample app
// with known vulnerabilities and weaknesses, and the offline databases
// built from testdata/scan.
package scantest

import (
	"archive/tar"
	"bytes"
	"io"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/mod/modfile"

	"github.com/slipwayci/slipway/internal/testkit"
)

// App is testdata/apps/vulnerable, the calling sample: golang.org/x/text
// v0.3.6 with language.Parse called (GO-2021-0113) and
// ParseAcceptLanguage not (GO-2022-1059), gopkg.in/yaml.v2 v2.2.7
// imported but its decoder not called (GO-2020-0036), and gosec's G401,
// G404 and G501. Its dependencies are vendored, so it builds offline.
func App(t testing.TB) string {
	t.Helper()
	return AppDir(t, "vulnerable")
}

// NoCall is testdata/apps/nocall, the non-calling sample:
// golang.org/x/text v0.3.7 with ParseAcceptLanguage (GO-2022-1059) kept in
// a table no code calls, so the linker keeps it (govulncheck's binary mode
// sees it) while the source never calls it.
func NoCall(t testing.TB) string {
	t.Helper()
	return AppDir(t, "nocall")
}

// AppDir is testdata/apps/NAME.
func AppDir(t testing.TB, name string) string {
	t.Helper()
	return filepath.Join(testkit.RepoRoot(t), "testdata", "apps", name)
}

// VulnDB is a file:// URL of a flat folder of real Go OSV records, the
// three the sample app is affected by, copied from golang.org/x/vulndb.
func VulnDB(t testing.TB) string {
	t.Helper()
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(filepath.Join(testkit.RepoRoot(t), "testdata", "scan", "vulndb"))}).String()
}

// TrivyFixtures lists the YAML fixtures trivy's database is built from.
func TrivyFixtures(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(testkit.RepoRoot(t), "testdata", "scan", "trivydb", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no trivy fixtures: %v", err)
	}
	return files
}

// BuildApp builds the sample app for linux/amd64 into dir and returns the
// binary's path.
func BuildApp(t testing.TB, dir string) string {
	t.Helper()
	return Build(t, App(t), filepath.Join(dir, "vulnerable"), "amd64")
}

// Build builds the app in src for linux/goarch into out, as slipway build
// does (-trimpath, no cgo), and returns out.
func Build(t testing.TB, src, out, goarch string) string {
	t.Helper()
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(Environ(), "GOOS=linux", "GOARCH="+goarch, "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", filepath.Base(src), err, b)
	}
	return out
}

// Environ is the test's environment without CI variables and with the
// network out of the go command's reach.
func Environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "GITHUB_ACTIONS", k == "GITLAB_CI", k == "CI", k == "GOFLAGS", k == "GOPROXY",
			strings.HasPrefix(k, "INPUT_"), strings.HasPrefix(k, "GITHUB_"), strings.HasPrefix(k, "SLIPWAY_"):
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GOPROXY=off", "GOFLAGS=-mod=vendor -buildvcs=false", "GOTOOLCHAIN=local")
}

// Required returns the version of module that slipway's go.mod requires.
func Required(t testing.TB, module string) string {
	t.Helper()
	file := filepath.Join(testkit.RepoRoot(t), "go.mod")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	mf, err := modfile.ParseLax(file, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range mf.Require {
		if r.Mod.Path == module {
			return r.Mod.Version
		}
	}
	t.Fatalf("go.mod does not require %s", module)
	return ""
}

// DpkgStatus is a Debian package database with one package, bash
// 5.2.15-2+b2 as Debian 12 ships it, for an OS package finding.
const DpkgStatus = `Package: bash
Essential: yes
Status: install ok installed
Priority: required
Section: shells
Installed-Size: 7164
Maintainer: Matthias Klose <doko@debian.org>
Architecture: amd64
Multi-Arch: foreign
Version: 5.2.15-2+b2
Replaces: bash-completion (<< 20060301-0)
Depends: base-files (>= 2.1.12), debianutils (>= 5.6-0.1)
Pre-Depends: libc6 (>= 2.36), libtinfo6 (>= 6)
Description: GNU Bourne Again SHell
 Bash is an sh-compatible command language interpreter that executes
 commands read from the standard input or from a file.
Homepage: http://tiswww.case.edu/php/chet/bash/bashtop.html

`

// ImageFiles are the files of the sample image: the sample app's binary at
// app/vulnerable and a Debian 12 package database.
func ImageFiles(t testing.TB, binary string) map[string][]byte {
	t.Helper()
	bin, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{
		"app/vulnerable":      bin,
		"etc/debian_version":  []byte("12.5\n"),
		"etc/os-release":      []byte("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n"),
		"var/lib/dpkg/status": []byte(DpkgStatus),
	}
}

// Image is a linux/amd64 image of files in one layer.
func Image(t testing.TB, files map[string][]byte) v1.Image {
	t.Helper()
	return ImageFor(t, "amd64", files)
}

// ImageFor is a linux/goarch image of files in one layer.
func ImageFor(t testing.TB, goarch string, files map[string][]byte) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	dirs := map[string]bool{}
	for _, name := range names {
		for d := path.Dir(name); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	for _, d := range slices.Sorted(maps.Keys(dirs)) {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755})
	}
	for _, name := range names {
		mode := int64(0o644)
		if strings.HasPrefix(name, "app/") {
			mode = 0o755
		}
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(files[name]))})
		tw.Write(files[name])
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: goarch, OS: "linux",
		Config: v1.Config{Entrypoint: []string{"/app/vulnerable"}},
		RootFS: v1.RootFS{Type: "layers", DiffIDs: mustDiffIDs(t, img)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func mustDiffIDs(t testing.TB, img v1.Image) []v1.Hash {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cf.RootFS.DiffIDs
}

// Layout writes img as a one-platform index into an OCI image layout at
// dir, the way the image step does, and returns the index's digest.
func Layout(t testing.TB, dir string, img v1.Image) string {
	t.Helper()
	return LayoutOf(t, dir, map[string]v1.Image{"amd64": img})
}

// LayoutOf writes an index of one linux image per architecture into an
// OCI image layout at dir, the way the image step does, and returns the
// index's digest.
func LayoutOf(t testing.TB, dir string, imgs map[string]v1.Image) string {
	t.Helper()
	idx := v1.ImageIndex(empty.Index)
	for _, arch := range slices.Sorted(maps.Keys(imgs)) {
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        imgs[arch],
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}},
		})
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "1.0.0"})); err != nil {
		t.Fatal(err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}
