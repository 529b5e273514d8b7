package promote

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// writePublicKey writes a fresh P-256 public key as PEM and returns its
// private key.
func writePublicKey(t *testing.T, path string) *ecdsa.PrivateKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	return priv
}

func TestTrustConfig(t *testing.T) {
	dir := t.TempDir()
	writePublicKey(t, filepath.Join(dir, "ci.pub"))
	writePublicKey(t, filepath.Join(dir, "prod.pub"))
	cfg := `trust:
  keys: [ci.pub]
environments:
  staging:
    repository: registry.test/staging
    tags: [staging]
  production:
    repository: registry.test/prod
    tags: [production]
    trust:
      keys: [prod.pub]
`
	path := filepath.Join(dir, ".slipway.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	staging, prod := c.TrustFor(c.Environments["staging"]), c.TrustFor(c.Environments["production"])
	if staging != c.Trust || prod == c.Trust || len(prod.keys) != 1 || prod.Keys[0].Value != "prod.pub" {
		t.Fatalf("production's trust: should replace the top-level one: staging %+v, production %+v", staging, prod)
	}
	if _, err := prod.Verifier(); err != nil {
		t.Fatal(err)
	}
}

// Each mistake exits 2 naming its line: the error says "line N".
func TestTrustConfigErrorsNameTheLine(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "garbage.pub"), []byte("not a key"), 0o644); err != nil {
		t.Fatal(err)
	}
	envs := "environments:\n  staging: {repository: registry.test/s, tags: [s]}\n"
	for _, tc := range []struct{ name, trust, want string }{
		{"bad regexp", "trust:\n  identities:\n    - issuer: https://token.actions.githubusercontent.com\n      subjectRegexp: '^https://github.com/acme/(app'\n  require: {timestamp: true}\n", "line 4: regexp"},
		{"no issuer", "trust:\n  identities:\n    - subject: https://github.com/acme/app/.github/workflows/r.yml@refs/heads/main\n  require: {timestamp: true}\n", "line 3: trust.identities[0] has no issuer"},
		{"no subject", "trust:\n  identities:\n    - issuer: https://token.actions.githubusercontent.com\n  require: {timestamp: true}\n", "line 3: trust.identities[0] has no subject"},
		{"nothing dates a certificate", "trust:\n  identities:\n    - issuer: https://x\n      subject: y\n", "line 3: keyless identities need require"},
		{"unreadable key", "trust:\n  keys:\n    - ci.pub\n    - missing.pub\n", "line 4: reading trusted key missing.pub: no such file"},
		{"not a key", "trust:\n  keys: [garbage.pub]\n", "line 2: trusted key garbage.pub is not a PEM public key"},
		{"unreadable root", "trust:\n  trustedRoot: nowhere.json\n  keys: [garbage.pub]\n", "line 3: trusted key garbage.pub"},
		{"root missing", "trust:\n  trustedRoot: nowhere.json\n  identities: [{issuer: a, subject: b}]\n  require: {tlog: true}\n", "line 2: reading trusted root nowhere.json: no such file"},
		{"empty", "trust: {require: {tlog: true}}\n", "trust: give identities or keys"},
		{"unknown key", "trust:\n  keys: [ci.pub]\n  rekor: true\n", "line 3: field rekor not found"},
		{"per environment", "environments:\n  staging:\n    repository: registry.test/s\n    tags: [s]\n    trust: {identities: [{issuer: a, subjectRegexp: '*'}], require: {tlog: true}}\n", "environment staging: line 5: regexp \"*\" does not compile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writePublicKey(t, filepath.Join(dir, "ci.pub"))
			cfg := tc.trust
			if !strings.Contains(cfg, "environments:") {
				cfg += envs
			}
			path := filepath.Join(dir, ".slipway.yaml")
			if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadConfig(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v, want one line with %q", err, tc.want)
			}
		})
	}
}
