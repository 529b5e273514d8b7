package sign_test

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipwayci/slipway/internal/sign"
	"github.com/slipwayci/slipway/internal/sigstoretest"
)

func claims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	body, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGitHubActionsToken(t *testing.T) {
	iss, err := sigstoretest.NewIssuer()
	if err != nil {
		t.Fatal(err)
	}
	defer iss.Close()
	job := sigstoretest.GitHub{Repository: "acme/payments", Ref: "refs/tags/v1.2.0"}
	url, reqToken := iss.Runner(job)
	env := map[string]string{"ACTIONS_ID_TOKEN_REQUEST_URL": url, "ACTIONS_ID_TOKEN_REQUEST_TOKEN": reqToken}
	src, ok := sign.DetectToken(func(k string) string { return env[k] })
	if !ok {
		t.Fatal("DetectToken found no token source")
	}
	tok, err := src.Token(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	c := claims(t, tok)
	if c["aud"] != "sigstore" || c["repository"] != "acme/payments" || c["sub"] != "repo:acme/payments:ref:refs/tags/v1.2.0" {
		t.Errorf("claims = %v", c)
	}
	if n := iss.Issued(reqToken); n != 1 {
		t.Errorf("runner endpoint handed out %d tokens, want 1", n)
	}

	// A wrong request token is refused, and the error shows neither it
	// nor the right one.
	bad := &sign.GitHubActions{RequestURL: url, RequestToken: "wrong-" + reqToken}
	_, err = bad.Token(t.Context())
	if err == nil {
		t.Fatal("a wrong request token got a token")
	}
	if strings.Contains(err.Error(), reqToken) || !strings.Contains(err.Error(), "id-token: write") {
		t.Errorf("error = %v", err)
	}
}

func TestDetectToken(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string // the source's String(), "" for none
	}{
		{"none", nil, ""},
		{"GitHub needs both variables", map[string]string{"ACTIONS_ID_TOKEN_REQUEST_URL": "http://x"}, ""},
		{"GitHub", map[string]string{"ACTIONS_ID_TOKEN_REQUEST_URL": "http://x", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "t"}, "GitHub Actions' OIDC token"},
		{"GitLab id_tokens", map[string]string{"SIGSTORE_ID_TOKEN": "eyJ.x.y"}, "the OIDC token in SIGSTORE_ID_TOKEN"},
		{"GitLab blank", map[string]string{"SIGSTORE_ID_TOKEN": "  "}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, ok := sign.DetectToken(func(k string) string { return tt.env[k] })
			got := ""
			if ok {
				got = src.String()
			}
			if got != tt.want {
				t.Errorf("DetectToken = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFileTokenRereads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	src := &sign.FileToken{Path: path}
	if _, err := src.Token(t.Context()); err == nil {
		t.Fatal("a missing file gave a token")
	}
	for _, want := range []string{"first.token.x", "second.token.y"} {
		if err := os.WriteFile(path, []byte(want+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := src.Token(t.Context())
		if err != nil || got != want {
			t.Errorf("Token() = %q, %v; want %q", got, err, want)
		}
	}
}
