package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/slipwayci/slipway/internal/registrytest"
)

// TestPinImages runs scripts/pin-images.sh on a Dockerfile and a workflow
// naming bases in a real registry: each tag is resolved to the digest the
// registry serves and written beside it, a stale digest is replaced, and
// --check refuses a base left unpinned.
func TestPinImages(t *testing.T) {
	requireE2E(t, "bash", "skopeo", "docker-registry")
	r := registrytest.New(t, registrytest.Options{})
	base := r.Host + "/bases/alpine:3.22"
	idx, err := random.Index(64, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(base)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	digest, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}

	// crane is what maintainers run; skopeo, which the tests have, asks
	// the registry the same question: the digest of the tag's manifest.
	bin := t.TempDir()
	writeFile(t, filepath.Join(bin, "crane"), `#!/bin/sh
[ "$1" = digest ] || exit 2
m="$(skopeo inspect --tls-verify=false --raw "docker://$2")" || exit 1
printf 'sha256:%s\n' "$(printf '%s' "$m" | sha256sum | cut -d' ' -f1)"
`)
	if err := os.Chmod(filepath.Join(bin, "crane"), 0o755); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	dockerfile, workflow := filepath.Join(dir, "Dockerfile"), filepath.Join(dir, "release.yml")
	stale := base + "@sha256:" + strings.Repeat("0", 64)
	writeFile(t, dockerfile, "ARG BASE_IMAGE="+base+"\nARG OLD_IMAGE="+stale+"\nFROM ${BASE_IMAGE}\n")
	writeFile(t, workflow, "steps:\n  - uses: ./actions/image\n    with:\n      base: "+base+" # the slim one\n  - uses: ./actions/image\n    with:\n      base: static\n")
	script := filepath.Join(must(t, repoRoot), "scripts", "pin-images.sh")
	env := append(toolEnv(t), "CRANE="+filepath.Join(bin, "crane"))

	o, err := run(t, dir, env, "bash", script, "--check", dockerfile, workflow)
	logOutput(t, "pin-images.sh --check", o)
	if err == nil || !strings.Contains(o.Stderr, "Dockerfile: "+base) || !strings.Contains(o.Stderr, "release.yml: "+base) {
		t.Errorf("--check on unpinned bases: %v, stderr %q", err, o.Stderr)
	}

	o, err = run(t, dir, env, "bash", script, dockerfile, workflow)
	logOutput(t, "pin-images.sh", o)
	if err != nil {
		t.Fatalf("pin-images.sh: %v", err)
	}
	pinned := base + "@" + digest.String()
	if got, want := readFile(t, dockerfile), "ARG BASE_IMAGE="+pinned+"\nARG OLD_IMAGE="+pinned+"\nFROM ${BASE_IMAGE}\n"; got != want {
		t.Errorf("Dockerfile:\n%s\nwant:\n%s", got, want)
	}
	if got := readFile(t, workflow); !strings.Contains(got, "base: "+pinned+" # the slim one\n") || !strings.Contains(got, "base: static\n") {
		t.Errorf("release.yml:\n%s", got)
	}
	o, err = run(t, dir, env, "bash", script, "--check", dockerfile, workflow)
	logOutput(t, "pin-images.sh --check", o)
	if err != nil {
		t.Errorf("--check after pinning: %v", err)
	}
}
