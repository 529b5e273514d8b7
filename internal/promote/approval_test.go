package promote

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
			"gate approval refused: the job's verified OIDC token is for https://github.com/evil/app, not https://github.com/acme/app"},
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

// On GitLab, the job's id_tokens: token (SLIPWAY_ID_TOKEN) says which
// environment it ran in, whether that is protected, and who started it;
// verified against the GitLab instance's keys (CI_SERVER_URL).
func TestTrustedApprovalOnGitLab(t *testing.T) {
	issuer, err := sigstoretest.NewIssuer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(issuer.Close)
	f := newFixture(t)
	dir := t.TempDir()
	writePublicKey(t, filepath.Join(dir, "ci.pub"))
	cfg := "trust: {keys: [ci.pub]}\nenvironments:\n  production:\n    repository: " + f.host + "/prod/app\n    tags: [production]\n    gates:\n      approval: {repository: acme/app}\n"
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	img := f.publish(t, "dev", false)
	token := func(protected string) string {
		tok, err := issuer.Token(ApprovalAudience, map[string]any{"project_path": "acme/app", "environment": "production",
			"environment_protected": protected, "user_login": "alice", "pipeline_id": "9"}, 5*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for _, tc := range []struct {
		name, token string
		code        int
		want        string
	}{
		{"protected environment", token("true"), 0, "approved through GitLab's protected environment production: alice started the job"},
		{"unprotected environment", token("false"), cli.ExitPolicy, "GitLab environment production is not protected"},
		{"no token", "", cli.ExitPolicy, "gate approval refused: no approval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			environ := []string{"GITLAB_CI=true", "CI_SERVER_URL=" + issuer.URL, "SLIPWAY_ID_TOKEN=" + tc.token}
			stdout, stderr, code := runCommand(t, f, dir, environ, "", false, "--digest", img.String(), "--to", "production", "--dry-run")
			if code != tc.code || !strings.Contains(stdout+stderr, tc.want) {
				t.Fatalf("exit %d, want %d and %q\n%s%s", code, tc.code, tc.want, stdout, stderr)
			}
			if tc.token != "" && strings.Contains(stdout+stderr, tc.token) {
				t.Errorf("the token is printed")
			}
		})
	}
}
