package promote

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/sigstoretest"
)

// Under trust:, the approval gate believes a GitHub environment only from
// the job's OIDC token, verified against the issuer's keys: the attack
// (GITHUB_ACTIONS=true and --github-environment production, no token) is
// refused; a token for another environment, or signed by another issuer,
// is refused; --approved-by only where approval.allowApprovedBy is set.
func TestTrustedApprovalNeedsAVerifiedToken(t *testing.T) {
	issuer, err := sigstoretest.NewIssuer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(issuer.Close)
	impostor, err := sigstoretest.NewIssuer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(impostor.Close)

	f := newFixture(t)
	dir := t.TempDir()
	writePublicKey(t, filepath.Join(dir, "ci.pub"))
	write := func(extra string) {
		cfg := "trust: {keys: [ci.pub]}\nenvironments:\n  production:\n    repository: " + f.host + "/prod/app\n    tags: [production]\n    gates:\n      approval: {issuer: " + issuer.URL + ", repository: acme/app" + extra + "}\n"
		if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("")
	img := f.publish(t, "dev", false)
	base := []string{"--digest", img.String(), "--to", "production", "--dry-run"}
	gh := func(i *sigstoretest.Issuer, job *sigstoretest.GitHub) []string {
		env := []string{"GITHUB_ACTIONS=true"}
		if job != nil {
			url, tok := i.Runner(*job)
			env = append(env, "ACTIONS_ID_TOKEN_REQUEST_URL="+url, "ACTIONS_ID_TOKEN_REQUEST_TOKEN="+tok)
		}
		return env
	}
	prodJob := &sigstoretest.GitHub{Repository: "acme/app", Environment: "production"}
	for _, tc := range []struct {
		name    string
		environ []string
		args    []string
		code    int
		want    string
	}{
		{"environment asserted without a token", gh(nil, nil), []string{"--github-environment", "production"}, cli.ExitPolicy,
			"gate approval refused: environment production asserted without an OIDC token"},
		{"a token for another environment", gh(issuer, &sigstoretest.GitHub{Repository: "acme/app", Environment: "staging"}), []string{"--github-environment", "production"}, cli.ExitPolicy,
			`gate approval refused: the job's verified OIDC token says environment "staging"`},
		{"a token for another repository", gh(issuer, &sigstoretest.GitHub{Repository: "evil/app", Environment: "production"}), nil, cli.ExitPolicy,
			"gate approval refused: the job's verified OIDC token is for evil/app"},
		{"a token from another issuer", gh(impostor, prodJob), []string{"--github-environment", "production"}, cli.ExitPolicy,
			"asserted without an OIDC token"},
		{"--approved-by not allowed", nil, []string{"--approved-by", "alice"}, cli.ExitPolicy,
			"gate approval refused: --approved-by is not accepted under trust:"},
		{"a verified token for the environment", gh(issuer, prodJob), nil, 0,
			"approved through the protection rules of GitHub environment production (verified OIDC token of acme/app"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runCommand(t, f, dir, tc.environ, "", false, append(append([]string{}, base...), tc.args...)...)
			if code != tc.code || !strings.Contains(stdout+stderr, tc.want) {
				t.Fatalf("exit %d, want %d and %q\nstdout:\n%s\nstderr:\n%s", code, tc.code, tc.want, stdout, stderr)
			}
		})
	}
	write(", allowApprovedBy: true, approvers: [alice]")
	if stdout, stderr, code := runCommand(t, f, dir, nil, "", false, append(base, "--approved-by", "alice")...); code != 0 || !strings.Contains(stdout, "asserted with --approved-by") {
		t.Errorf("allowed --approved-by: exit %d\n%s%s", code, stdout, stderr)
	}
}
