package sign_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/slipwayci/slipway/internal/sign"
	"github.com/slipwayci/slipway/internal/sigstoretest"
)

// A Fulcio that echoes the request back in its error (as a misconfigured
// proxy might) must not get the OIDC token into slipway's error.
func TestFulcioErrorHidesTheToken(t *testing.T) {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		http.Error(w, "refused: "+r.Header.Get("Authorization")+" "+string(body), http.StatusUnauthorized)
	}))
	defer echo.Close()
	iss, err := sigstoretest.NewIssuer()
	if err != nil {
		t.Fatal(err)
	}
	defer iss.Close()
	tok, err := iss.GitHubToken(sigstoretest.DefaultGitHub, "sigstore")
	if err != nil {
		t.Fatal(err)
	}
	_, err = sign.New(t.Context(), sign.Options{Token: &sign.StaticToken{Value: tok, From: "SIGSTORE_ID_TOKEN"}, FulcioURL: echo.URL, Retries: 1, Timeout: 5 * time.Second})
	if err == nil {
		t.Fatal("a refusing Fulcio gave a certificate")
	}
	if strings.Contains(err.Error(), tok) || strings.Contains(err.Error(), strings.Split(tok, ".")[2]) {
		t.Errorf("the error shows the token: %v", err)
	}
	if !strings.Contains(err.Error(), "SIGSTORE_ID_TOKEN") || !strings.Contains(err.Error(), "401") {
		t.Errorf("the error does not say what failed: %v", err)
	}
}

// The real Fulcio refuses a token from an issuer it does not trust, and
// the error says so without the token.
func TestFulcioRefusesUntrustedIssuer(t *testing.T) {
	s := sigstoretest.Shared(t)
	rogue, err := sigstoretest.NewIssuer()
	if err != nil {
		t.Fatal(err)
	}
	defer rogue.Close()
	tok, err := rogue.GitHubToken(sigstoretest.DefaultGitHub, "sigstore")
	if err != nil {
		t.Fatal(err)
	}
	_, err = sign.New(t.Context(), sign.Options{Token: &sign.StaticToken{Value: tok, From: "SIGSTORE_ID_TOKEN"}, FulcioURL: s.FulcioURL, TSAURL: s.TSAURL})
	if err == nil {
		t.Fatal("Fulcio certified a token from an issuer it does not know")
	}
	if strings.Contains(err.Error(), tok) {
		t.Errorf("the error shows the token: %v", err)
	}
	// An expired token from the trusted issuer is refused too.
	expired, err := s.Issuer.Token("sigstore", sigstoretest.DefaultGitHub.Claims(), -time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sign.New(t.Context(), sign.Options{Token: &sign.StaticToken{Value: expired, From: "a file"}, FulcioURL: s.FulcioURL}); err == nil {
		t.Fatal("Fulcio certified an expired token")
	} else if strings.Contains(err.Error(), expired) {
		t.Errorf("the error shows the token: %v", err)
	}
	// And one for another audience.
	wrongAud, _ := s.Issuer.GitHubToken(sigstoretest.DefaultGitHub, "https://github.com/slipwayci")
	if _, err := sign.New(t.Context(), sign.Options{Token: &sign.StaticToken{Value: wrongAud, From: "a file"}, FulcioURL: s.FulcioURL}); err == nil {
		t.Fatal("Fulcio certified a token for another audience")
	}
}
