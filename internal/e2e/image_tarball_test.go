package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImageTarball reads the docker-archive of slipway image --tarball with
// skopeo, as docker load would, copies it into an OCI layout and runs it:
// the archive must be a complete, runnable image for this machine.
func TestImageTarball(t *testing.T) {
	requireE2E(t, "git", "skopeo", "umoci", "runc")
	repo, rec := imageSample(t, "--build", "--tarball", "dist/hello.tar")
	if rec.Image.Tarball == nil || rec.Image.Tarball.Platform != "linux/amd64" {
		t.Fatalf("record tarball = %+v, want one for linux/amd64", rec.Image.Tarball)
	}
	archive := "docker-archive:" + filepath.Join(repo, "dist", "hello.tar")

	out, err := run(t, repo, os.Environ(), "skopeo", "inspect", "--config", archive)
	logOutput(t, "skopeo inspect", out)
	if err != nil {
		t.Fatalf("skopeo inspect: %v", err)
	}
	var cfg struct {
		Architecture, OS string
		Config           struct{ User string }
	}
	if err := json.Unmarshal([]byte(out.Stdout), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || cfg.Architecture != "amd64" || cfg.Config.User != "65532:65532" {
		t.Errorf("the archive's config says %s/%s user %q", cfg.OS, cfg.Architecture, cfg.Config.User)
	}

	oci := filepath.Join(t.TempDir(), "oci")
	out, err = run(t, repo, os.Environ(), "skopeo", "copy", "--quiet", archive, "oci:"+oci+":e2e")
	logOutput(t, "skopeo copy", out)
	if err != nil {
		t.Fatalf("skopeo copy: %v", err)
	}
	bundle := filepath.Join(t.TempDir(), "bundle")
	args := []string{"unpack"}
	if os.Getuid() != 0 {
		args = append(args, "--rootless")
	}
	out, err = run(t, repo, os.Environ(), "umoci", append(args, "--image", oci+":e2e", bundle)...)
	logOutput(t, "umoci", out)
	if err != nil {
		t.Fatalf("umoci unpack: %v", err)
	}
	got := imageRunc(t, bundle, "-check")
	if !strings.HasPrefix(got, "hello "+rec.Version+" ") || !strings.Contains(got, "uid=65532 gid=65532") {
		t.Errorf("the image from the archive printed:\n%s", got)
	}
}
