package sigstoretest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Issuer is an OpenID Connect issuer shaped like GitHub Actions'
// (token.actions.githubusercontent.com): discovery, a JWKS, RS256 tokens
// with GitHub's claims, and the runner's token endpoint that a job reaches
// through ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN.
// Fulcio verifies its tokens as it verifies GitHub's.
type Issuer struct {
	// URL is the issuer, the tokens' iss claim.
	URL string

	srv *httptest.Server
	key *rsa.PrivateKey
	kid string

	mu     sync.Mutex
	jobs   map[string]GitHub // runner request token → the job's identity
	issued map[string]int    // runner request token → tokens handed out
}

// GitHub is a GitHub Actions job's identity, as its OIDC token claims it.
// Zero fields take the defaults of DefaultGitHub.
type GitHub struct {
	Repository string // owner/name
	Ref        string // e.g. refs/heads/main
	// Workflow is the workflow file's path in the repository.
	Workflow    string
	SHA         string
	RunID       string
	RunAttempt  string
	EventName   string
	Environment string
	// JobWorkflowRef, if set, names a reusable workflow that ran the job
	// (owner/repo/path@ref); by default the job's own workflow.
	JobWorkflowRef string
}

// DefaultGitHub is the identity tests sign as unless they say otherwise.
var DefaultGitHub = GitHub{
	Repository: "slipwayci/demo",
	Ref:        "refs/heads/main",
	Workflow:   ".github/workflows/release.yml",
	SHA:        "0123456789abcdef0123456789abcdef01234567",
	RunID:      "4242",
	RunAttempt: "1",
	EventName:  "push",
}

func (g GitHub) withDefaults() GitHub {
	d := DefaultGitHub
	set := func(v *string, def string) {
		if *v == "" {
			*v = def
		}
	}
	set(&g.Repository, d.Repository)
	set(&g.Ref, d.Ref)
	set(&g.Workflow, d.Workflow)
	set(&g.SHA, d.SHA)
	set(&g.RunID, d.RunID)
	set(&g.RunAttempt, d.RunAttempt)
	set(&g.EventName, d.EventName)
	return g
}

// WorkflowRef is the workflow_ref claim: owner/repo/path@ref.
func (g GitHub) WorkflowRef() string {
	g = g.withDefaults()
	return g.Repository + "/" + g.Workflow + "@" + g.Ref
}

// Subject is the certificate identity Fulcio issues for the job, the
// job workflow's URL: https://github.com/owner/repo/path@ref.
func (g GitHub) Subject() string {
	g = g.withDefaults()
	ref := g.JobWorkflowRef
	if ref == "" {
		ref = g.WorkflowRef()
	}
	return "https://github.com/" + ref
}

// Claims are the token's claims besides iss, aud and the times, named
// and shaped as GitHub names and shapes them.
func (g GitHub) Claims() map[string]any {
	g = g.withDefaults()
	owner, _, _ := strings.Cut(g.Repository, "/")
	sub := "repo:" + g.Repository + ":ref:" + g.Ref
	if g.Environment != "" {
		sub = "repo:" + g.Repository + ":environment:" + g.Environment
	}
	refType := "branch"
	if strings.HasPrefix(g.Ref, "refs/tags/") {
		refType = "tag"
	}
	jobRef := g.JobWorkflowRef
	if jobRef == "" {
		jobRef = g.WorkflowRef()
	}
	c := map[string]any{
		"sub":                   sub,
		"repository":            g.Repository,
		"repository_id":         "100001",
		"repository_owner":      owner,
		"repository_owner_id":   "200002",
		"repository_visibility": "public",
		"ref":                   g.Ref,
		"ref_type":              refType,
		"ref_protected":         "true",
		"sha":                   g.SHA,
		"workflow":              "release",
		"workflow_ref":          g.WorkflowRef(),
		"workflow_sha":          g.SHA,
		"job_workflow_ref":      jobRef,
		"job_workflow_sha":      g.SHA,
		"run_id":                g.RunID,
		"run_number":            "7",
		"run_attempt":           g.RunAttempt,
		"event_name":            g.EventName,
		"actor":                 owner,
		"actor_id":              "200002",
		"runner_environment":    "github-hosted",
	}
	if g.Environment != "" {
		c["environment"] = g.Environment
	}
	return c
}

// NewIssuer starts an issuer on 127.0.0.1.
func NewIssuer() (*Issuer, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(key.PublicKey.N.Bytes())
	i := &Issuer{key: key, kid: hex.EncodeToString(sum[:8]), jobs: map[string]GitHub{}, issued: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", i.discovery)
	mux.HandleFunc("GET /.well-known/jwks", i.jwks)
	mux.HandleFunc("GET /runner/token", i.runnerToken)
	i.srv = httptest.NewServer(mux)
	i.URL = i.srv.URL
	return i, nil
}

// Close stops the issuer.
func (i *Issuer) Close() { i.srv.Close() }

func (i *Issuer) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{
		"issuer":                                i.URL,
		"jwks_uri":                              i.URL + "/.well-known/jwks",
		"subject_types_supported":               []string{"public", "pairwise"},
		"response_types_supported":              []string{"id_token"},
		"claims_supported":                      []string{"sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref", "repository", "sha", "workflow", "job_workflow_ref"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                      []string{"openid"},
	})
}

func (i *Issuer) jwks(w http.ResponseWriter, _ *http.Request) {
	pub := i.key.PublicKey
	writeJSON(w, map[string]any{"keys": []map[string]string{{
		"kty": "RSA",
		"alg": "RS256",
		"use": "sig",
		"kid": i.kid,
		"n":   base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e":   base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}}})
}

// Runner registers a job with identity g and returns what its runner
// would set as ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN.
// Like GitHub's, the URL already has a query, so clients append
// &audience=....
func (i *Issuer) Runner(g GitHub) (requestURL, requestToken string) {
	var b [16]byte
	rand.Read(b[:])
	requestToken = "runner-" + hex.EncodeToString(b[:])
	i.mu.Lock()
	i.jobs[requestToken] = g
	i.mu.Unlock()
	return i.URL + "/runner/token?api-version=2.0", requestToken
}

// Issued returns how many tokens the runner endpoint handed out to the
// job with this request token.
func (i *Issuer) Issued(requestToken string) int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.issued[requestToken]
}

// runnerToken answers like the Actions runtime: the bearer request token
// names the job, the audience query sets aud, and the token comes back as
// {"value": "..."}.
func (i *Issuer) runnerToken(w http.ResponseWriter, r *http.Request) {
	bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	i.mu.Lock()
	g, known := i.jobs[bearer]
	i.mu.Unlock()
	if !ok || !known {
		http.Error(w, `{"message":"bad credentials"}`, http.StatusUnauthorized)
		return
	}
	aud := r.URL.Query().Get("audience")
	if aud == "" {
		aud = "https://github.com/" + strings.SplitN(g.withDefaults().Repository, "/", 2)[0]
	}
	tok, err := i.Token(aud, g.Claims(), 5*time.Minute)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	i.mu.Lock()
	i.issued[bearer]++
	i.mu.Unlock()
	writeJSON(w, map[string]string{"value": tok})
}

// GitHubToken returns a token for the job g with audience aud ("sigstore"
// for Fulcio).
func (i *Issuer) GitHubToken(g GitHub, aud string) (string, error) {
	return i.Token(aud, g.Claims(), 5*time.Minute)
}

// Token signs a token with the given audience and claims, valid for ttl
// from now (a negative ttl makes an expired token).
func (i *Issuer) Token(aud string, claims map[string]any, ttl time.Duration) (string, error) {
	now := time.Now()
	c := map[string]any{}
	for k, v := range claims {
		c[k] = v
	}
	var jti [8]byte
	rand.Read(jti[:])
	c["iss"] = i.URL
	c["aud"] = aud
	c["jti"] = hex.EncodeToString(jti[:])
	c["iat"] = now.Add(-time.Minute).Unix()
	c["nbf"] = now.Add(-time.Minute).Unix()
	c["exp"] = now.Add(ttl).Unix()
	header, err := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": i.kid})
	if err != nil {
		return "", err
	}
	body, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	signed := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(body)
	h := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, i.key, crypto.SHA256, h[:])
	if err != nil {
		return "", fmt.Errorf("signing token: %w", err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
