package sign

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// A TokenSource gives the OIDC identity token that Fulcio exchanges for a
// certificate. It is asked again when a certificate nears its end, so a
// source should return a fresh token each time it can.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
	// String names the source for messages; it never shows the token.
	String() string
}

// Audience is the audience Fulcio accepts.
const Audience = "sigstore"

// GitHubActions asks the Actions runtime for a token: a GET to
// ACTIONS_ID_TOKEN_REQUEST_URL with &audience=sigstore, authorized by
// ACTIONS_ID_TOKEN_REQUEST_TOKEN. The job needs `permissions: id-token:
// write`, without which the runner sets neither variable.
type GitHubActions struct {
	RequestURL   string
	RequestToken string
	Audience     string // default "sigstore"
	Client       *http.Client
}

func (g *GitHubActions) String() string { return "GitHub Actions' OIDC token" }

// Token fetches a new token.
func (g *GitHubActions) Token(ctx context.Context) (string, error) {
	aud := g.Audience
	if aud == "" {
		aud = Audience
	}
	u, err := url.Parse(g.RequestURL)
	if err != nil {
		return "", fmt.Errorf("reading ACTIONS_ID_TOKEN_REQUEST_URL: %w", err)
	}
	q := u.Query()
	q.Set("audience", aud)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+g.RequestToken)
	req.Header.Set("Accept", "application/json")
	client := g.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		// The error names the URL, which holds no secret; the request
		// token travels only in the header.
		return "", fmt.Errorf("requesting GitHub Actions' OIDC token: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("requesting GitHub Actions' OIDC token: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("requesting GitHub Actions' OIDC token: %s; does the job have `permissions: id-token: write`?", resp.Status)
	}
	var v struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.Value == "" {
		return "", errors.New("requesting GitHub Actions' OIDC token: the answer has no token")
	}
	return v.Value, nil
}

// StaticToken is a token given once, as GitLab gives SIGSTORE_ID_TOKEN
// through the job's id_tokens: block.
type StaticToken struct {
	Value string
	// From names where it came from, e.g. "SIGSTORE_ID_TOKEN".
	From string
}

func (s *StaticToken) String() string { return "the OIDC token in " + s.From }

// Token returns the token.
func (s *StaticToken) Token(context.Context) (string, error) {
	if strings.TrimSpace(s.Value) == "" {
		return "", fmt.Errorf("%s is empty", s.From)
	}
	return strings.TrimSpace(s.Value), nil
}

// FileToken reads the token from a file at each call, so a file that is
// refreshed (a projected service account token) gives fresh tokens.
type FileToken struct{ Path string }

func (f *FileToken) String() string { return "the OIDC token in " + f.Path }

// Token reads the file.
func (f *FileToken) Token(context.Context) (string, error) {
	data, err := os.ReadFile(f.Path)
	if err != nil {
		return "", fmt.Errorf("reading the OIDC token: %w", err)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", fmt.Errorf("reading the OIDC token: %s is empty", f.Path)
	}
	return tok, nil
}

// DetectToken finds the OIDC token the CI offers: GitHub Actions' request
// variables, else GitLab's SIGSTORE_ID_TOKEN (declared under id_tokens:
// with aud: sigstore). It returns false when there is none.
func DetectToken(getenv func(string) string) (TokenSource, bool) {
	if u, t := getenv("ACTIONS_ID_TOKEN_REQUEST_URL"), getenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN"); u != "" && t != "" {
		return &GitHubActions{RequestURL: u, RequestToken: t}, true
	}
	if t := getenv("SIGSTORE_ID_TOKEN"); strings.TrimSpace(t) != "" {
		return &StaticToken{Value: t, From: "SIGSTORE_ID_TOKEN"}, true
	}
	return nil, false
}
