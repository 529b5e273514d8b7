package attest_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipwayci/slipway/internal/attest"
	"github.com/slipwayci/slipway/internal/cli"
)

// Every value that can never work is refused before slipway sign asks a
// registry or a Sigstore service anything: exit 2, one line naming it.
func TestSignUsage(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pred.json"), []byte(`{"ok":true}`), 0o644); err != nil {
		t.Fatal(err)
	}
	const image = "127.0.0.1:1/team/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"no image", []string{"--sign", "keyless"}, nil, "no image"},
		{"by tag", []string{"127.0.0.1:1/team/app:latest"}, nil, "by digest"},
		{"two images", []string{image, image}, nil, "unexpected arguments"},
		{"type without attest", []string{image, "--type", "spdxjson"}, nil, "--attest FILE"},
		{"attest without type", []string{image, "--attest", "pred.json"}, nil, "--attest needs --type"},
		{"unknown type", []string{image, "--attest", "pred.json", "--type", "sbom"}, nil, `--type "sbom"`},
		{"missing predicate", []string{image, "--attest", "nope.json", "--type", "spdxjson"}, nil, "nope.json"},
		{"off", []string{image, "--sign", "off"}, nil, "--sign off"},
		{"no token", []string{image}, nil, "id-token: write"},
		{"keyless without token", []string{image, "--sign", "keyless"}, nil, "--sign keyless needs an OIDC token"},
		{"missing key", []string{image, "--sign", "missing.key"}, nil, "missing.key"},
		{"bad URL", []string{image, "--fulcio-url", "fulcio.example"}, []string{"SIGSTORE_ID_TOKEN=x"}, "--fulcio-url"},
		{"bad trusted root", []string{image, "--trusted-root", "pred.json", "--sign", "keyless"}, []string{"SIGSTORE_ID_TOKEN=x"}, "--trusted-root"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := attest.Main(context.Background(), cli.Env{Args: tc.args, Environ: append([]string{"HOME=" + dir}, tc.env...), Stdout: &stdout, Stderr: &stderr, Dir: dir})
			code := cli.ExitCode(&stderr, "slipway sign", err)
			out := strings.TrimSpace(stderr.String())
			if code != 2 || !strings.Contains(out, tc.want) || strings.Count(out, "\n") > 0 {
				t.Errorf("exit %d, stderr %q; want exit 2 and one line naming %q", code, out, tc.want)
			}
		})
	}
}
