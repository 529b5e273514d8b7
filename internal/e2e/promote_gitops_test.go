package e2e

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipwayci/slipway/internal/registrytest"
	"github.com/slipwayci/slipway/internal/testkit"
)

// TestPromoteRewritesManifests promotes with --manifests: the Kubernetes
// YAML, kustomization and Helm values that name the image are pinned to
// the promoted digest in the environment's repository, comments and
// formatting kept, and the overlay still builds with a real kustomize.
func TestPromoteRewritesManifests(t *testing.T) {
	requireE2E(t, "docker-registry", "kustomize")
	r := registrytest.New(t, registrytest.Options{})
	d := promoteRandom(t, r, "ci/hello", "1.4.2")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, ".slipway.yaml"), `environments:
  production:
    repository: `+r.Host+`/prod/hello
    tags: [production]
`)
	// The gitops package's own fixtures, naming the image as the CI
	// repository it was pushed to.
	deploy := filepath.Join(dir, "deploy")
	testkit.CopyDir(t, filepath.Join(must(t, repoRoot), "internal", "gitops", "testdata", "in"), deploy)
	err := filepath.WalkDir(deploy, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(p, []byte(strings.ReplaceAll(string(data), "registry.example.com/team/hello", r.Host+"/ci/hello")), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	before := readFile(t, filepath.Join(deploy, "base", "deployment.yaml"))

	// A dry run says what it would pin and writes nothing.
	dry := promoteOK(t, dir, promoteT0, "--digest", r.Host+"/ci/hello@"+d, "--to", "production", "--manifests", "deploy", "--dry-run")
	if !strings.Contains(dry.Summary, "Manifest base/deployment.yaml:23") || readFile(t, filepath.Join(deploy, "base", "deployment.yaml")) != before {
		t.Errorf("dry run: the files changed, or the summary does not say what would:\n%s", dry.Summary)
	}

	res := promoteOK(t, dir, promoteT0, "--digest", r.Host+"/ci/hello@"+d, "--to", "production", "--manifests", "deploy")
	pinned := r.Host + "/prod/hello@" + d
	if got := pushOutputs(res.Stdout)["manifests"]; got != "base/deployment.yaml,chart/values.yaml,overlays/production/kustomization.yaml" {
		t.Errorf("manifests output %q", got)
	}
	base := readFile(t, filepath.Join(deploy, "base", "deployment.yaml"))
	for _, want := range []string{
		"image: " + pinned + " # keep this comment",
		`image: "` + pinned + `"   # same image, quoted`,
		"image: registry.example.com/team/proxy:2.1  # another image: untouched",
		"# The hello service. Slipway pins the image below on promotion.",
	} {
		if !strings.Contains(base, want) {
			t.Errorf("base/deployment.yaml lacks %q:\n%s", want, base)
		}
	}
	values := readFile(t, filepath.Join(deploy, "chart", "values.yaml"))
	if !strings.Contains(values, "repository: "+r.Host+"/prod/hello   # the service") || !strings.Contains(values, `tag: "1.4.0@`+d+`"`) {
		t.Errorf("chart/values.yaml:\n%s", values)
	}

	kustomize, _ := exec.LookPath("kustomize")
	out, err := run(t, dir, toolEnv(t), kustomize, "build", filepath.Join("deploy", "overlays", "production"))
	if err != nil {
		t.Fatalf("kustomize build: %v\n%s", err, out.Stderr)
	}
	if n := strings.Count(out.Stdout, "image: "+pinned); n != 2 {
		t.Errorf("kustomize build pins %d containers to %s, want 2:\n%s", n, pinned, out.Stdout)
	}
	if !strings.Contains(out.Stdout, "image: registry.example.com/team/proxy:2.2") {
		t.Errorf("the other image lost its kustomize tag:\n%s", out.Stdout)
	}

	// Promoting again changes nothing: everything is pinned already.
	again := promoteOK(t, dir, promoteT0.Add(time.Minute), "--digest", r.Host+"/ci/hello@"+d, "--to", "production", "--manifests", "deploy")
	if !strings.Contains(again.Summary, "Already in production") || !strings.Contains(again.Summary, "already pinned") {
		t.Errorf("second promotion:\n%s", again.Summary)
	}
}
