package promote

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/push"
)

// publishRelease pushes a two-platform index as slipway image and push
// make one: each manifest annotated with the version, the index tagged
// with it. It returns the index and its platform manifests.
func (f *fixture) publishRelease(t *testing.T, env, version string) (name.Digest, []string) {
	t.Helper()
	ann := map[string]string{"org.opencontainers.image.version": version}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(256, 1)
		if err != nil {
			t.Fatal(err)
		}
		img = mutate.MediaType(img, types.OCIManifestSchema1)
		img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
		img = mutate.Annotations(img, ann).(v1.Image)
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	idx = mutate.Annotations(idx, ann).(v1.ImageIndex)
	dir := filepath.Join(t.TempDir(), "image")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(idx); err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	im, _ := idx.IndexManifest()
	var platforms []string
	for _, m := range im.Manifests {
		platforms = append(platforms, m.Digest.String())
	}
	f.platforms[d.String()] = platforms
	repo := f.repo(t, env)
	if _, err := push.Push(context.Background(), push.Options{Layout: dir, Digest: d, To: []name.Repository{repo}, Tags: []string{version}, Registry: fastRegistry(nil)}); err != nil {
		t.Fatal(err)
	}
	return repo.Digest(d.String()), platforms
}

// Promoting one platform's manifest of a pushed index would tag it as the
// release and drop the other platforms: refused (exit 2) unless
// --platform-manifest says it is meant; and then the scan gate says what
// it found on the index.
func TestMainPlatformManifestOfAnIndex(t *testing.T) {
	f := newFixture(t)
	dir := f.configDir(t)
	idx, platforms := f.publishRelease(t, "staging", "6.14.1")
	amd64 := idx.Context().Digest(platforms[0]).String()

	_, stderr, code := runCommand(t, f, dir, nil, "", false, "--digest", amd64, "--to", "staging")
	want := "is the linux/amd64 manifest of index " + idx.DigestStr() + " (tag 6.14.1); promoting it alone drops the other platforms: give --digest " + idx.String() + ", or --platform-manifest if one platform is meant"
	if code != cli.ExitUsage || !strings.Contains(stderr, want) || strings.Count(stderr, "\n") != 1 {
		t.Errorf("exit %d, want %d and one line containing %q:\n%s", code, cli.ExitUsage, want, stderr)
	}
	if got := f.tagged(t, "staging", "staging"); got != "" {
		t.Errorf("staging was tagged %s", got)
	}

	if _, stderr, code := runCommand(t, f, dir, nil, "", false, "--digest", amd64, "--to", "staging", "--platform-manifest"); code != 0 {
		t.Fatalf("--platform-manifest: exit %d\n%s", code, stderr)
	}
	f.clock.Set(now.Add(2 * time.Hour))
	f.attachScan(t, idx, true, 0, now.Add(time.Hour))
	stdout, stderr, code := runCommand(t, f, dir, nil, "", false, "--digest", amd64, "--to", "production", "--platform-manifest", "--dry-run")
	want = "no scan attestation on this linux/amd64 manifest itself; index " + idx.DigestStr() + " (tag 6.14.1) has one naming it"
	if code != cli.ExitPolicy || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, want %d with %q:\n%s%s", code, cli.ExitPolicy, want, stdout, stderr)
	}
	// The index itself is promoted as before.
	if _, stderr, code := runCommand(t, f, dir, nil, "", false, "--digest", idx.String(), "--to", "staging"); code != 0 {
		t.Errorf("the index: exit %d\n%s", code, stderr)
	}
}

func TestMainDigestThatDoesNotExistIsUsage(t *testing.T) {
	f := newFixture(t)
	dir := f.configDir(t)
	missing := f.host + "/staging/app@sha256:" + strings.Repeat("ab", 32)
	_, stderr, code := runCommand(t, f, dir, nil, "", false, "--digest", missing, "--to", "staging")
	if code != cli.ExitUsage || !strings.Contains(stderr, missing+" does not exist; check the digest") {
		t.Errorf("exit %d, want %d:\n%s", code, cli.ExitUsage, stderr)
	}
}

// A rollback with nothing to roll back says so, in the error and in the
// summary, instead of "back to :".
func TestMainRollbackWithNothingToRollBack(t *testing.T) {
	f := newFixture(t)
	dir := f.configDir(t)
	stdout, stderr, code := runCommand(t, f, dir, nil, "", false, "--to", "staging", "--rollback")
	if code != cli.ExitUsage || !strings.Contains(stderr, "nothing to roll back: staging has no promotions yet") {
		t.Errorf("exit %d:\n%s%s", code, stdout, stderr)
	}
	if strings.Contains(stdout+stderr, "back to :") || !strings.Contains(stdout+stderr, "staging/app: nothing rolled back") {
		t.Errorf("the summary does not say nothing was rolled back:\n%s%s", stdout, stderr)
	}
}
