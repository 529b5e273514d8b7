package e2e

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/registrytest"
)

// promoteRandom pushes a random two-platform index, annotated with
// version, to repo and returns its digest.
func promoteRandom(t *testing.T, r *registrytest.Registry, repo, version string) string {
	t.Helper()
	idx, err := random.Index(1024, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	idx = mutate.Annotations(idx, map[string]string{"org.opencontainers.image.version": version}).(v1.ImageIndex)
	ref, err := name.ParseReference(r.Host + "/" + repo + ":" + version)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx, pushOpts(r, registrytest.Auth{})...); err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	return d.String()
}

// tagged is the digest repo:tag names, straight from the registry.
func tagged(t *testing.T, r *registrytest.Registry, repo, tag string) string {
	t.Helper()
	ref, err := name.ParseReference(r.Direct + "/" + repo + ":" + tag)
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Head(ref, pushOpts(r, registrytest.Auth{})...)
	if err != nil {
		return ""
	}
	return d.Digest.String()
}

// TestPromoteRollbackAndHistory runs the real binaries through the
// dispatcher: slipway promote twice, slipway history, slipway promote
// --rollback, slipway history --json.
func TestPromoteRollbackAndHistory(t *testing.T) {
	requireE2E(t, "git", "docker-registry")
	bin := must(t, slipwayBin)
	r := registrytest.New(t, registrytest.Options{})
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, ".slipway.yaml"), `environments:
  staging:
    repository: `+r.Host+`/staging/app
    tags: [staging, "v{{.Version}}"]
  production:
    repository: `+r.Host+`/prod/app
    tags: [live]
    gates: {from: staging}
`)
	v1d, v2d := promoteRandom(t, r, "ci/app", "1.0.0"), promoteRandom(t, r, "ci/app", "2.0.0")
	env := toolEnv(t, bin)
	slipway := func(args ...string) output {
		t.Helper()
		out, err := run(t, dir, env, filepath.Join(bin, "slipway"), args...)
		logOutput(t, "slipway "+args[0], out)
		if err != nil {
			t.Fatalf("slipway %s: %v\n%s", strings.Join(args, " "), err, out.Stderr)
		}
		return out
	}

	out, err := run(t, dir, env, filepath.Join(bin, "slipway"), "history", "staging")
	if err != nil || !strings.Contains(out.Stdout, "staging ("+r.Host+"/staging/app) has no promotions yet") {
		t.Errorf("history of an empty environment: %v\n%s%s", err, out.Stdout, out.Stderr)
	}
	slipway("promote", "--digest", r.Host+"/ci/app@"+v1d, "--to", "staging")
	slipway("promote", "--digest", r.Host+"/ci/app@"+v2d, "--to", "staging")
	if got := tagged(t, r, "staging/app", "staging"); got != v2d {
		t.Errorf("staging names %s after promoting 2.0.0", got)
	}
	for tag, want := range map[string]string{"v1.0.0": v1d, "v2.0.0": v2d} {
		if got := tagged(t, r, "staging/app", tag); got != want {
			t.Errorf("%s names %s, want %s", tag, got, want)
		}
	}
	// production takes only what staging holds.
	out, err = run(t, dir, env, filepath.Join(bin, "slipway"), "promote", "--digest", r.Host+"/ci/app@"+promoteRandom(t, r, "ci/app", "3.0.0"), "--to", "production")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != cli.ExitPolicy || !strings.Contains(out.Stderr, "gate from refused: the digest was never promoted to staging") {
		t.Errorf("promoting what staging never had: %v\n%s", err, out.Stderr)
	}

	hist := slipway("history", "staging").Stdout
	for _, want := range []string{"History of staging", v1d, v2d, "← current"} {
		if !strings.Contains(hist, want) {
			t.Errorf("history lacks %q:\n%s", want, hist)
		}
	}
	if strings.Index(hist, v1d) > strings.Index(hist, v2d) {
		t.Errorf("history is not oldest first:\n%s", hist)
	}

	rb := slipway("promote", "--rollback", "--to", "staging")
	if !strings.Contains(rb.Stdout, "output digest="+v1d) || !strings.Contains(rb.Stdout, "output tags=staging,v1.0.0") {
		t.Errorf("rollback outputs:\n%s", rb.Stdout)
	}
	if got := tagged(t, r, "staging/app", "staging"); got != v1d {
		t.Errorf("staging names %s after the rollback, want 1.0.0's %s", got, v1d)
	}
	// The rolled-back digest is no longer evidence for production.
	out, err = run(t, dir, env, filepath.Join(bin, "slipway"), "promote", "--digest", r.Host+"/staging/app@"+v2d, "--to", "production", "--dry-run")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != cli.ExitPolicy || !strings.Contains(out.Stderr, "gate from refused: the digest's promotion to staging was rolled back") {
		t.Errorf("promoting a rolled-back digest: %v\n%s", err, out.Stderr)
	}

	type record struct {
		Record   string `json:"record"`
		Digest   string `json:"digest"`
		Sequence int    `json:"sequence"`
		Rollback bool   `json:"rollback"`
		Undoes   string `json:"undoes"`
		Previous string `json:"previous"`
	}
	var recs []record
	for _, l := range strings.Split(strings.TrimSpace(slipway("history", "staging", "--json").Stdout), "\n") {
		var rec record
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("history --json line %q: %v", l, err)
		}
		recs = append(recs, rec)
	}
	if len(recs) != 3 {
		t.Fatalf("history --json has %d records, want 3", len(recs))
	}
	if recs[0].Digest != v1d || recs[1].Digest != v2d || recs[2].Digest != v1d || !recs[2].Rollback || recs[2].Undoes != recs[1].Record ||
		recs[1].Previous != recs[0].Record || recs[2].Previous != recs[1].Record || recs[2].Sequence != 3 {
		t.Errorf("history --json: %+v", recs)
	}
	if got := tagged(t, r, "staging/app", "slipway-history-staging"); got != recs[2].Record {
		t.Errorf("the head tag names %s, want the rollback's record %s", got, recs[2].Record)
	}

	// Nothing before 1.0.0: a second rollback is refused, and changes nothing.
	out, err = run(t, dir, env, filepath.Join(bin, "slipway"), "promote", "--rollback", "--to", "staging")
	if err == nil || !strings.Contains(out.Stderr, "nothing to roll back to") || strings.Count(out.Stderr, "\n") != 1 {
		t.Errorf("second rollback: %v\n%s", err, out.Stderr)
	}
}
