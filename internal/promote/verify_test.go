package promote

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/sign"
)

func runVerify(t *testing.T, f *fixture, dir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env := cli.Env{Args: args, Environ: []string{"HOME=" + t.TempDir()}, Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Dir: dir}
	err := Command{Now: f.clock.Now}.Verify(ctx, env)
	return out.String(), errb.String(), cli.ExitCode(&errb, "slipway verify", err)
}

// slipway verify checks what promote would, reading only: an image with
// forged evidence fails (exit 3, one line per failing check), an honest
// one passes (exit 0), and --format json says the same.
func TestVerifyCommand(t *testing.T) {
	f, ci, dir := newTrustedFixtureIn(t, trustedConfig)
	ctx := context.Background()

	forged := f.publish(t, "staging", true)
	f.attachScan(t, forged, true, 0, now)
	stdout, stderr, code := runVerify(t, f, dir, forged.String(), "--env", "production")
	if code != 3 || !strings.Contains(stderr, "slipway verify: signature failed: no signature on the image verifies") ||
		!strings.Contains(stderr, "slipway verify: scan failed: no scan attestation on the digest; run slipway scan and push it; ignored: sha256:") ||
		!strings.Contains(stdout, "FAIL") {
		t.Fatalf("forged: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}

	honest := f.publish(t, "staging", false)
	if _, err := Promote(ctx, f.signedOptions("staging", honest, ci)); err != nil {
		t.Fatal(err)
	}
	h, _ := v1.NewHash(honest.DigestStr())
	imgStatement, _ := sign.ImageStatement(h)
	f.attachBundle(t, honest, ci, imgStatement)
	f.signedScan(t, honest, ci, true, 0, now)
	f.signedSBOM(t, honest, ci)
	stdout, stderr, code = runVerify(t, f, dir, honest.String(), "--env", "production", "--format", "json")
	if code != 0 {
		t.Fatalf("honest: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	var res VerifyResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	var checks []string
	for _, c := range res.Checks {
		checks = append(checks, c.Gate)
	}
	if !res.Pass || strings.Join(checks, ",") != "signature,from,scan,sbom" {
		t.Errorf("honest: %+v", res)
	}
	// Without --env, the signature alone, under the top-level trust:.
	if _, stderr, code := runVerify(t, f, dir, honest.String()); code != 0 {
		t.Errorf("signature only: exit %d: %s", code, stderr)
	}
	// Nothing was written: production has no history.
	if head, err := f.history(t, "production").Head(ctx); err != nil || head != nil {
		t.Errorf("production after verify: %+v, %v", head, err)
	}
	// --emit writes the admission policy from the same trust: block.
	if out, stderr, code := runVerify(t, f, dir, "--emit", "policy-controller", "--env", "production"); code != 0 || !strings.Contains(out, "kind: ClusterImagePolicy") || !strings.Contains(out, "BEGIN PUBLIC KEY") {
		t.Errorf("--emit policy-controller: exit %d\n%s%s", code, out, stderr)
	}
	for _, tc := range [][]string{{}, {"registry.test/app:latest"}, {"sha256:" + strings.Repeat("a", 64)}, {"--emit", "kyverno"}, {"--emit", "opa", "--env", "production"}, {honest.String(), "--format", "yaml"}, {honest.String(), "--env", "nowhere"}} {
		if _, stderr, code := runVerify(t, f, dir, tc...); code != 2 || strings.Count(stderr, "\n") != 1 {
			t.Errorf("verify %v: exit %d, %q; want 2 and one line", tc, code, stderr)
		}
	}
}
