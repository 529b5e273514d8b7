package sign

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

func pemKey(t *testing.T, typ string, der []byte) []byte {
	t.Helper()
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestParseKey(t *testing.T) {
	const password = "correct horse battery staple"
	cosignKey, _, err := cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), cryptoutils.StaticPasswordFunc([]byte(password)))
	if err != nil {
		t.Fatal(err)
	}
	emptyPassKey, _, err := cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), cryptoutils.StaticPasswordFunc([]byte{}))
	if err != nil {
		t.Fatal(err)
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecPKCS8, _ := x509.MarshalPKCS8PrivateKey(ec)
	ecSEC1, _ := x509.MarshalECPrivateKey(ec)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	edPKCS8, _ := x509.MarshalPKCS8PrivateKey(ed)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384DER, _ := x509.MarshalPKCS8PrivateKey(p384)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaDER, _ := x509.MarshalPKCS8PrivateKey(rsaKey)

	pw := func(p string) func() ([]byte, error) { return func() ([]byte, error) { return []byte(p), nil } }
	tests := []struct {
		name     string
		pem      []byte
		password func() ([]byte, error)
		wantAlg  string
		wantErr  string
	}{
		{name: "cosign key", pem: cosignKey, password: pw(password), wantAlg: "ECDSA"},
		{name: "cosign key with an empty password", pem: emptyPassKey, password: pw(""), wantAlg: "ECDSA"},
		{name: "cosign key, wrong password", pem: cosignKey, password: pw("hunter2"), wantErr: "does not decrypt"},
		{name: "cosign key, no password", pem: cosignKey, wantErr: "set COSIGN_PASSWORD"},
		{name: "PKCS#8 P-256", pem: pemKey(t, "PRIVATE KEY", ecPKCS8), wantAlg: "ECDSA"},
		{name: "SEC 1 P-256", pem: pemKey(t, "EC PRIVATE KEY", ecSEC1), wantAlg: "ECDSA"},
		{name: "PKCS#8 Ed25519", pem: pemKey(t, "PRIVATE KEY", edPKCS8), wantAlg: "ED25519"},
		{name: "P-384 refused", pem: pemKey(t, "PRIVATE KEY", p384DER), wantErr: "P-256"},
		{name: "RSA refused", pem: pemKey(t, "PRIVATE KEY", rsaDER), wantErr: "ECDSA P-256 or Ed25519"},
		{name: "public key refused", pem: pemKey(t, "PUBLIC KEY", []byte{1}), wantErr: "not a private key"},
		{name: "not PEM", pem: []byte("hello"), wantErr: "not a PEM private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseKey(tt.pem, tt.password)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			kp, err := newKeypair(k)
			if err != nil {
				t.Fatal(err)
			}
			if got := kp.GetKeyAlgorithm(); got != tt.wantAlg {
				t.Errorf("algorithm = %s, want %s", got, tt.wantAlg)
			}
			// The key signs, and its public half verifies what it signed.
			msg := []byte("DSSEv1 28 application/vnd.in-toto+json 2 {}")
			sig, _, err := kp.SignData(t.Context(), msg)
			if err != nil {
				t.Fatal(err)
			}
			switch pub := k.Public().(type) {
			case *ecdsa.PublicKey:
				sum := sha256.Sum256(msg)
				if !ecdsa.VerifyASN1(pub, sum[:], sig) {
					t.Error("ECDSA signature does not verify")
				}
			case ed25519.PublicKey:
				if !ed25519.Verify(pub, msg, sig) {
					t.Error("Ed25519 signature does not verify")
				}
			}
		})
	}
}

// The password never appears in what a failed load says, whatever the
// failure.
func TestLoadKeyErrorsHideThePassword(t *testing.T) {
	const password = "s3cret-Pa55word-that-must-not-leak"
	key, _, err := cryptoutils.GeneratePEMEncodedECDSAKeyPair(elliptic.P256(), cryptoutils.StaticPasswordFunc([]byte("another one")))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "cosign.key")
	if err := os.WriteFile(path, key, 0o600); err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.key")
	block, _ := pem.Decode(key)
	block.Bytes = block.Bytes[:len(block.Bytes)/2]
	if err := os.WriteFile(truncated, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	pass := func() ([]byte, error) { return []byte(password), nil }
	for _, p := range []string{path, truncated, filepath.Join(dir, "missing.key")} {
		_, err := LoadKey(p, pass)
		if err == nil {
			t.Fatalf("LoadKey(%s) with the wrong password succeeded", p)
		}
		if strings.Contains(err.Error(), password) {
			t.Errorf("LoadKey(%s) error shows the password: %v", p, err)
		}
	}
	if _, err := LoadKey(path, pass); !errors.Is(err, ErrKeyPassword) {
		t.Errorf("wrong password: err = %v, want ErrKeyPassword", err)
	}
}
