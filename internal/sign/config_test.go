package sign_test

import (
	"crypto/elliptic"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/slipwayci/slipway/internal/sign"
	"github.com/slipwayci/slipway/internal/sigstoretest"
)

func exitCode(err error) int {
	var c interface{ ExitCode() int }
	if errors.As(err, &c) {
		return c.ExitCode()
	}
	if err != nil {
		return 1
	}
	return 0
}

func TestSetupWithoutServices(t *testing.T) {
	const password = "the-key-password-42"
	key, _, err := cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), cryptoutils.StaticPasswordFunc([]byte(password)))
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "cosign.key")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		c          sign.Config
		env        map[string]string
		wantSigner bool
		wantNotice string
		wantCode   int
		wantErr    string
	}{
		{name: "off", c: sign.Config{Sign: "off"}},
		{name: "default without a token is off, with a notice", c: sign.Config{}, wantNotice: "not signing: no OIDC token"},
		{name: "keyless without a token", c: sign.Config{Sign: "keyless"}, wantCode: 2, wantErr: "id-token: write"},
		{name: "key", c: sign.Config{Sign: keyFile, TSAURL: "none", RekorURL: "none"}, env: map[string]string{"COSIGN_PASSWORD": password}, wantSigner: true},
		{name: "key, wrong password", c: sign.Config{Sign: keyFile}, env: map[string]string{"COSIGN_PASSWORD": "nope-" + password}, wantCode: 2, wantErr: "COSIGN_PASSWORD"},
		{name: "key file missing", c: sign.Config{Sign: filepath.Join(t.TempDir(), "nope.key")}, wantCode: 2, wantErr: "nope.key"},
		{name: "bad TSA URL", c: sign.Config{Sign: "off", TSAURL: "timestamp.example"}, wantCode: 2, wantErr: "--tsa-url"},
		{name: "Fulcio cannot be none", c: sign.Config{Sign: "off", FulcioURL: "none"}, wantCode: 2, wantErr: "--fulcio-url"},
		{name: "unknown Rekor API", c: sign.Config{Sign: "off", RekorVersion: 3}, wantCode: 2, wantErr: "--rekor-api"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var masked []string
			tt.c.Getenv = func(k string) string { return tt.env[k] }
			tt.c.Mask = func(s string) { masked = append(masked, s) }
			s, notice, err := sign.Setup(t.Context(), tt.c)
			if code := exitCode(err); code != tt.wantCode || (tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v (exit %d), want exit %d containing %q", err, code, tt.wantCode, tt.wantErr)
			}
			if (s != nil) != tt.wantSigner {
				t.Errorf("signer = %v, want one: %v", s, tt.wantSigner)
			}
			if !strings.Contains(notice, tt.wantNotice) || (tt.wantNotice == "" && notice != "") {
				t.Errorf("notice = %q, want %q", notice, tt.wantNotice)
			}
			if err != nil && strings.Contains(err.Error(), password) {
				t.Errorf("the error shows the password: %v", err)
			}
			if p := tt.env["COSIGN_PASSWORD"]; p != "" && (len(masked) == 0 || masked[0] != p) {
				t.Errorf("the key password was not masked before use (masked %d values)", len(masked))
			}
		})
	}
}

func TestSetupKeylessOnGitHub(t *testing.T) {
	s := sigstoretest.Shared(t)
	url, reqTok := s.Issuer.Runner(sigstoretest.DefaultGitHub)
	env := map[string]string{"ACTIONS_ID_TOKEN_REQUEST_URL": url, "ACTIONS_ID_TOKEN_REQUEST_TOKEN": reqTok}
	var masked []string
	signer, notice, err := sign.Setup(t.Context(), sign.Config{
		FulcioURL: s.FulcioURL, TSAURL: s.TSAURL, RekorURL: "none",
		Getenv: func(k string) string { return env[k] },
		Mask:   func(v string) { masked = append(masked, v) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if signer == nil || !strings.Contains(notice, "signing keyless as "+sigstoretest.DefaultGitHub.Subject()) {
		t.Fatalf("signer %v, notice %q", signer, notice)
	}
	// The token fetched from the runner was masked before Fulcio saw it.
	if len(masked) != 1 || strings.Count(masked[0], ".") != 2 {
		t.Errorf("masked %d values, want the one OIDC token", len(masked))
	}
}
