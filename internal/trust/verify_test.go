package trust_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/slipwayci/slipway/internal/sign"
	"github.com/slipwayci/slipway/internal/sigstoretest"
	"github.com/slipwayci/slipway/internal/trust"
)

func TestMain(m *testing.M) { os.Exit(sigstoretest.Main(m)) }

const scanPredicate = "https://slipway.dev/attestations/scan/v1"

var (
	image = v1.Hash{Algorithm: "sha256", Hex: "1111111111111111111111111111111111111111111111111111111111111111"}
	other = v1.Hash{Algorithm: "sha256", Hex: "2222222222222222222222222222222222222222222222222222222222222222"}
)

// scanStatement is a scan statement about image whose verdict is
// "fail"; flipping it to "pass" keeps its length and shape.
func scanStatement(t *testing.T, about v1.Hash) []byte {
	t.Helper()
	st, err := sign.NewStatement(scanPredicate, map[string]any{"verdict": "fail"}, sign.DigestSubject("registry.test/app", about))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func newKey(t *testing.T, ed bool) *sign.Key {
	t.Helper()
	var priv any
	var err error
	if ed {
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	} else {
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	k, err := sign.NewKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func signWith(t *testing.T, o sign.Options, statement []byte) []byte {
	t.Helper()
	s, err := sign.New(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Sign(t.Context(), statement)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// editBundle decodes a bundle, lets edit change it and encodes it again.
func editBundle(t *testing.T, b []byte, edit func(map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// flipVerdict rewrites the signed statement's verdict from fail to pass,
// leaving the signature as it was: the forger's edit.
func flipVerdict(t *testing.T, b []byte) []byte {
	return editBundle(t, b, func(m map[string]any) {
		env := m["dsseEnvelope"].(map[string]any)
		payload, err := base64.StdEncoding.DecodeString(env["payload"].(string))
		if err != nil {
			t.Fatal(err)
		}
		forged := bytes.Replace(payload, []byte(`"fail"`), []byte(`"pass"`), 1)
		if bytes.Equal(forged, payload) {
			t.Fatal("no verdict to flip")
		}
		env["payload"] = base64.StdEncoding.EncodeToString(forged)
	})
}

func wantRefused(t *testing.T, v *trust.Verifier, b []byte, want trust.Expect, reason trust.Reason) *trust.Error {
	t.Helper()
	res, err := v.Verify(b, want)
	if err == nil {
		t.Fatalf("verified (signer %s); want refused", res.Signer)
	}
	var te *trust.Error
	if !errors.As(err, &te) {
		t.Fatalf("err = %T %v, want *trust.Error", err, err)
	}
	if te.Reason != reason {
		t.Fatalf("reason = %d (%v), want %d", te.Reason, err, reason)
	}
	return te
}

func TestVerifyKey(t *testing.T) {
	for _, ed := range []bool{false, true} {
		name := "ecdsa-p256"
		if ed {
			name = "ed25519"
		}
		t.Run(name, func(t *testing.T) {
			key := newKey(t, ed)
			b := signWith(t, sign.Options{Key: key}, scanStatement(t, image))
			v, err := trust.New(trust.Policy{Keys: []crypto.PublicKey{key.Public()}})
			if err != nil {
				t.Fatal(err)
			}
			want := trust.Expect{Digest: image, PredicateType: scanPredicate}
			res, err := v.Verify(b, want)
			if err != nil {
				t.Fatal(err)
			}
			wantID, _ := trust.KeyID(key.Public())
			if res.Signer.KeyID != wantID || res.Statement.PredicateType != scanPredicate || !res.Statement.Names(image) {
				t.Errorf("result = %+v", res)
			}
			if !res.Time.IsZero() {
				t.Errorf("time = %s from a bundle with no timestamp", res.Time)
			}

			t.Run("payload byte changed", func(t *testing.T) {
				wantRefused(t, v, flipVerdict(t, b), want, trust.Untrusted)
			})
			t.Run("about another digest", func(t *testing.T) {
				wantRefused(t, v, b, trust.Expect{Digest: other, PredicateType: scanPredicate}, trust.OtherDigest)
			})
			t.Run("another predicate type", func(t *testing.T) {
				wantRefused(t, v, b, trust.Expect{Digest: image, PredicateType: sign.SLSAProvenancePredicate}, trust.OtherPredicate)
			})
			t.Run("untrusted key", func(t *testing.T) {
				forged := signWith(t, sign.Options{Key: newKey(t, ed)}, scanStatement(t, image))
				wantRefused(t, v, forged, want, trust.Untrusted)
			})
			t.Run("unsigned statement", func(t *testing.T) {
				wantRefused(t, v, scanStatement(t, image), want, trust.NotABundle)
			})
			t.Run("signature removed", func(t *testing.T) {
				stripped := editBundle(t, b, func(m map[string]any) {
					m["dsseEnvelope"].(map[string]any)["signatures"] = []any{}
				})
				if _, err := v.Verify(stripped, want); err == nil {
					t.Fatal("a bundle without a signature verified")
				}
			})
			t.Run("timestamp required", func(t *testing.T) {
				strict, err := trust.New(trust.Policy{Keys: []crypto.PublicKey{key.Public()}, Timestamps: 1, Root: nil})
				if err != nil {
					t.Fatal(err)
				}
				wantRefused(t, strict, b, want, trust.Untrusted)
			})
		})
	}
}

func TestPolicyErrors(t *testing.T) {
	key := newKey(t, false)
	anyRoot := &root.BaseTrustedMaterial{}
	id := trust.Identity{Issuer: "https://issuer.test", Subject: "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"}
	tests := []struct {
		name string
		p    trust.Policy
		want string
	}{
		{"nothing trusted", trust.Policy{}, "at least one identity or key"},
		{"identity without root", trust.Policy{Identities: []trust.Identity{id}, Timestamps: 1}, "need a trusted root"},
		{"identity without a time source", trust.Policy{Root: anyRoot, Identities: []trust.Identity{id}}, "signed timestamp or a transparency log"},
		{"identity without issuer", trust.Policy{Root: anyRoot, Identities: []trust.Identity{{Subject: id.Subject}}, Timestamps: 1}, "needs an OIDC issuer"},
		{"identity without subject", trust.Policy{Root: anyRoot, Identities: []trust.Identity{{Issuer: id.Issuer}}, Timestamps: 1}, "needs a subject"},
		{"bad regexp", trust.Policy{Root: anyRoot, Identities: []trust.Identity{{Issuer: id.Issuer, SubjectRegexp: "("}}, Timestamps: 1}, "compiling \"(\""},
		{"negative threshold", trust.Policy{Keys: []crypto.PublicKey{key.Public()}, TlogEntries: -1}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := trust.New(tt.p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}
