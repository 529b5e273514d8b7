package e2e

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/testkit"
)

// TestImageRuns builds the sample app's image with slipway image --build,
// unpacks its linux/amd64 image with umoci and starts it with runc: the
// binary must run as the nonroot user, find the static base's CA roots and
// print the version the build stamped.
func TestImageRuns(t *testing.T) {
	requireE2E(t, "git", "umoci", "runc")
	repo, rec := imageSample(t, "--build")

	bundle := imageUnpack(t, filepath.Join(repo, "dist", rec.Image.Layout), "linux/amd64")
	got := imageRunc(t, bundle, "-check")

	want := fmt.Sprintf("hello %s (commit %s, built %s, linux/amd64)", rec.Version, rec.Commit, rec.Date)
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != 3 || lines[0] != want || lines[1] != "uid=65532 gid=65532" {
		t.Fatalf("the container printed:\n%s\nwant %q, then uid=65532 gid=65532, then ca-roots", got, want)
	}
	m := regexp.MustCompile(`^ca-roots: (\d+)$`).FindStringSubmatch(lines[2])
	if m == nil {
		t.Fatalf("no CA roots line in %q", lines[2])
	}
	// The static base carries NSS's unconstrained roots: well over 100.
	if n, _ := strconv.Atoi(m[1]); n < 100 {
		t.Errorf("the binary found %d CA roots, want the static base's bundle (100+)", n)
	}
}

// TestImageArm64 checks what cannot run here: the arm64 image's platform in
// the index, its config, and that its binary really is an arm64 ELF.
func TestImageArm64(t *testing.T) {
	requireE2E(t, "git")
	repo, rec := imageSample(t, "--build")
	idx := testkit.LayoutIndex(t, filepath.Join(repo, "dist", rec.Image.Layout))
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var arm *v1.Descriptor
	for i, d := range im.Manifests {
		if d.Platform != nil && d.Platform.Architecture == "arm64" {
			arm = &im.Manifests[i]
		}
	}
	if arm == nil {
		t.Fatalf("no arm64 image in the index: %+v", im.Manifests)
	}
	if diff := cmp.Diff(v1.Platform{OS: "linux", Architecture: "arm64"}, *arm.Platform); diff != "" {
		t.Errorf("arm64 platform (-want +got):\n%s", diff)
	}
	img, err := idx.Image(arm.Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "arm64" {
		t.Errorf("arm64 config says %s/%s", cf.OS, cf.Architecture)
	}
	wantCfg := v1.Config{
		Entrypoint: []string{"/usr/local/bin/hello"},
		Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"},
		User:       "65532:65532",
		WorkingDir: "/home/nonroot",
	}
	if diff := cmp.Diff(wantCfg, cf.Config); diff != "" {
		t.Errorf("arm64 config (-want +got):\n%s", diff)
	}
	bin := imageFile(t, img, "usr/local/bin/hello")
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		t.Fatalf("usr/local/bin/hello is not an ELF file: %v", err)
	}
	if f.Machine != elf.EM_AARCH64 {
		t.Errorf("the arm64 image's binary is for %v", f.Machine)
	}
	var pi *record.PlatformImage
	for i := range rec.Image.Platforms {
		if rec.Image.Platforms[i].Platform == "linux/arm64" {
			pi = &rec.Image.Platforms[i]
		}
	}
	if pi == nil || pi.Digest != arm.Digest.String() {
		t.Errorf("the record's arm64 entry %+v does not name manifest %s", pi, arm.Digest)
	}
}

// imageSample commits the sample app in a fresh directory and runs
// slipway image there with args; it returns the repository and the record.
func imageSample(t *testing.T, args ...string) (string, *record.Record) {
	t.Helper()
	bin := must(t, slipwayBin)
	repo := testkit.SampleRepo(t, "hello", filepath.Join(t.TempDir(), "hello"))
	out, err := run(t, repo, toolEnv(t), filepath.Join(bin, "slipway-image"), args...)
	logOutput(t, "slipway image", out)
	if err != nil {
		t.Fatalf("slipway image %s: %v", strings.Join(args, " "), err)
	}
	rec, err := record.Load(filepath.Join(repo, "dist"))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Image == nil {
		t.Fatal("the record has no image section")
	}
	return repo, rec
}

// imageUnpack unpacks one platform's image from the layout with umoci and
// returns the bundle. umoci 0.4 refuses a tag that leads to an index of
// several images ("tag is ambiguous"), so the test gives it a view of the
// layout whose index.json names that platform's manifest directly: the
// same blobs, linked, and the same manifest digest.
func imageUnpack(t *testing.T, lay, platform string) string {
	t.Helper()
	idx := testkit.LayoutIndex(t, lay)
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var desc *v1.Descriptor
	for i, d := range im.Manifests {
		if d.Platform != nil && d.Platform.OS+"/"+d.Platform.Architecture == platform {
			desc = &im.Manifests[i]
		}
	}
	if desc == nil {
		t.Fatalf("no %s image in %s", platform, lay)
	}
	view := filepath.Join(t.TempDir(), "view")
	if err := os.MkdirAll(filepath.Join(view, "blobs", "sha256"), 0o755); err != nil {
		t.Fatal(err)
	}
	blobs, err := os.ReadDir(filepath.Join(lay, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blobs {
		if err := os.Link(filepath.Join(lay, "blobs", "sha256", b.Name()), filepath.Join(view, "blobs", "sha256", b.Name())); err != nil {
			t.Fatal(err)
		}
	}
	d := *desc
	d.Platform = nil
	d.Annotations = map[string]string{"org.opencontainers.image.ref.name": "e2e"}
	index, err := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: "application/vnd.oci.image.index.v1+json", Manifests: []v1.Descriptor{d}})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(view, "index.json"), string(index))
	writeFile(t, filepath.Join(view, "oci-layout"), readFile(t, filepath.Join(lay, "oci-layout")))

	bundle := filepath.Join(t.TempDir(), "bundle")
	args := []string{"unpack"}
	if os.Getuid() != 0 {
		// Unprivileged: umoci maps the image's owners into a user
		// namespace and writes a rootless runtime config.
		args = append(args, "--rootless")
	}
	args = append(args, "--image", view+":e2e", bundle)
	out, err := run(t, t.TempDir(), os.Environ(), "umoci", args...)
	logOutput(t, "umoci", out)
	if err != nil {
		t.Fatalf("umoci unpack: %v", err)
	}
	return bundle
}

// imageRunc runs the bundle's entrypoint with extra arguments under runc
// and returns what it printed. umoci writes a config for an interactive
// terminal; a test has none, so the process gets plain pipes.
func imageRunc(t *testing.T, bundle string, args ...string) string {
	t.Helper()
	editProcess(t, bundle, func(proc map[string]any) {
		proc["terminal"] = false
		for _, a := range args {
			proc["args"] = append(proc["args"].([]any), a)
		}
	})

	state := t.TempDir()
	id := fmt.Sprintf("slipway-e2e-%d-%s", os.Getpid(), strings.ToLower(regexp.MustCompile(`\W+`).ReplaceAllString(t.Name(), "-")))
	// t.Context is done by cleanup time, so run is no use here.
	t.Cleanup(func() { exec.Command("runc", "--root", state, "delete", "--force", id).Run() })
	out, err := run(t, bundle, os.Environ(), "runc", "--root", state, "run", "--bundle", bundle, id)
	logOutput(t, "runc", out)
	if err != nil {
		t.Fatalf("runc run: %v", err)
	}
	return out.Stdout
}

// editProcess rewrites the process section of the bundle's config.json.
func editProcess(t *testing.T, bundle string, edit func(proc map[string]any)) {
	t.Helper()
	path := filepath.Join(bundle, "config.json")
	var spec map[string]any
	if err := json.Unmarshal([]byte(readFile(t, path)), &spec); err != nil {
		t.Fatal(err)
	}
	edit(spec["process"].(map[string]any))
	data, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(data))
}

// eachFile reads the layers in the order given and calls fn with every
// entry of each, until fn returns false.
func eachFile(t *testing.T, layers []v1.Layer, fn func(h *tar.Header, r io.Reader) (more bool)) {
	t.Helper()
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				rc.Close()
				t.Fatal(err)
			}
			if !fn(h, tr) {
				rc.Close()
				return
			}
		}
		rc.Close()
	}
}

// imageFile returns a file's contents from an image's layers, top first.
func imageFile(t *testing.T, img v1.Image, name string) []byte {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(layers)
	var data []byte
	found := false
	eachFile(t, layers, func(h *tar.Header, r io.Reader) bool {
		if h.Name != name {
			return true
		}
		if data, err = io.ReadAll(r); err != nil {
			t.Fatal(err)
		}
		found = true
		return false
	})
	if !found {
		t.Fatalf("no %s in the image", name)
	}
	return data
}
