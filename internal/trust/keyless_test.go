package trust_test

import (
	"bytes"
	"crypto"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/slipwayci/slipway/internal/sign"
	"github.com/slipwayci/slipway/internal/sigstoretest"
	"github.com/slipwayci/slipway/internal/trust"
)

func keylessOptions(s *sigstoretest.Stack, job sigstoretest.GitHub, rekor bool) sign.Options {
	url, tok := s.Issuer.Runner(job)
	o := sign.Options{
		Token:     &sign.GitHubActions{RequestURL: url, RequestToken: tok},
		FulcioURL: s.FulcioURL,
		TSAURL:    s.TSAURL,
	}
	if rekor {
		o.RekorURL, o.RekorVersion = s.RekorURL, 2
	}
	return o
}

// demoIdentity trusts the release workflow of slipwayci/demo on any ref
// of the repository, with GitHub's repository extension pinned.
func demoIdentity(s *sigstoretest.Stack) trust.Identity {
	return trust.Identity{
		Issuer:        s.Issuer.URL,
		SubjectRegexp: `^https://github\.com/slipwayci/demo/\.github/workflows/release\.yml@refs/`,
		Extensions:    certificate.Extensions{SourceRepositoryURI: "https://github.com/slipwayci/demo"},
	}
}

func TestVerifyKeyless(t *testing.T) {
	s := sigstoretest.Shared(t)
	tr, err := root.NewTrustedRootFromJSON(s.TrustedRoot)
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Second)
	b := signWith(t, keylessOptions(s, sigstoretest.DefaultGitHub, true), scanStatement(t, image))
	after := time.Now().Add(time.Second)

	v, err := trust.New(trust.Policy{Root: tr, Identities: []trust.Identity{demoIdentity(s)}, Timestamps: 1, TlogEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := trust.Expect{Digest: image, PredicateType: scanPredicate}
	res, err := v.Verify(b, want)
	if err != nil {
		t.Fatal(err)
	}
	if res.Signer.Subject != sigstoretest.DefaultGitHub.Subject() || res.Signer.Issuer != s.Issuer.URL {
		t.Errorf("signer = %s, want %s", res.Signer, sigstoretest.DefaultGitHub.Subject())
	}
	if res.Signer.Extensions.SourceRepositoryRef != "refs/heads/main" || res.Signer.Extensions.GithubWorkflowRepository != "slipwayci/demo" {
		t.Errorf("certificate extensions = %+v", res.Signer.Extensions)
	}
	// The time is the timestamp authority's, not anything the statement says.
	if res.Time.Before(before) || res.Time.After(after) {
		t.Errorf("time = %s, want between %s and %s", res.Time, before, after)
	}

	t.Run("payload byte changed", func(t *testing.T) {
		wantRefused(t, v, flipVerdict(t, b), want, trust.Untrusted)
	})
	t.Run("about another digest", func(t *testing.T) {
		wantRefused(t, v, b, trust.Expect{Digest: other, PredicateType: scanPredicate}, trust.OtherDigest)
	})
	t.Run("certificate for another identity", func(t *testing.T) {
		forger := sigstoretest.GitHub{Repository: "mallory/fork"}
		forged := signWith(t, keylessOptions(s, forger, true), scanStatement(t, image))
		te := wantRefused(t, v, forged, want, trust.Untrusted)
		if !strings.Contains(te.Error(), "signed by "+forger.Subject()) {
			t.Errorf("reason %q does not name the signer", te)
		}
	})
	t.Run("another workflow of the same repository", func(t *testing.T) {
		other := sigstoretest.GitHub{Workflow: ".github/workflows/pr.yml"}
		forged := signWith(t, keylessOptions(s, other, true), scanStatement(t, image))
		wantRefused(t, v, forged, want, trust.Untrusted)
	})
	t.Run("certificate swapped for another's", func(t *testing.T) {
		// The attacker keeps the trusted signer's certificate and signs
		// his own statement with his own key: the signature does not
		// verify under the certificate's key.
		forged := signWith(t, keylessOptions(s, sigstoretest.GitHub{Repository: "mallory/fork"}, true), flipStatement(t, scanStatement(t, image)))
		swapped := swapCertificate(t, forged, b)
		wantRefused(t, v, swapped, want, trust.Untrusted)
	})
	t.Run("timestamp stripped", func(t *testing.T) {
		stripped := editBundle(t, b, func(m map[string]any) {
			delete(m["verificationMaterial"].(map[string]any), "timestampVerificationData")
		})
		wantRefused(t, v, stripped, want, trust.Untrusted)
	})
	t.Run("log entry required but missing", func(t *testing.T) {
		noLog := signWith(t, keylessOptions(s, sigstoretest.DefaultGitHub, false), scanStatement(t, image))
		wantRefused(t, v, noLog, want, trust.Untrusted)
		// GitHub's own instance has no log: a policy that does not ask
		// for one accepts the bundle on its timestamp alone.
		tsaOnly, err := trust.New(trust.Policy{Root: tr, Identities: []trust.Identity{demoIdentity(s)}, Timestamps: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tsaOnly.Verify(noLog, want); err != nil {
			t.Errorf("timestamp-only policy: %v", err)
		}
	})
	t.Run("log entry from an untrusted log", func(t *testing.T) {
		// The same bundle under a root without the log: the entry
		// cannot be checked, so a policy that needs one refuses.
		stripRekor := editJSON(t, s.TrustedRoot, func(m map[string]any) { delete(m, "tlogs") })
		tr2, err := root.NewTrustedRootFromJSON(stripRekor)
		if err != nil {
			t.Fatal(err)
		}
		v2, err := trust.New(trust.Policy{Root: tr2, Identities: []trust.Identity{demoIdentity(s)}, Timestamps: 1, TlogEntries: 1})
		if err != nil {
			t.Fatal(err)
		}
		wantRefused(t, v2, b, want, trust.Untrusted)
	})
	t.Run("signed by a key when identities are required", func(t *testing.T) {
		keyed := signWith(t, sign.Options{Key: newKey(t, false), TSAURL: s.TSAURL}, scanStatement(t, image))
		wantRefused(t, v, keyed, want, trust.Untrusted)
	})
}

// TestSignerReusesItsCertificate checks that a run costs one certificate:
// N statements, one token request, one Fulcio certificate in all bundles.
func TestSignerReusesItsCertificate(t *testing.T) {
	s := sigstoretest.Shared(t)
	job := sigstoretest.GitHub{Repository: "slipwayci/reuse"}
	url, tok := s.Issuer.Runner(job)
	signer, err := sign.New(t.Context(), sign.Options{
		Token:     &sign.GitHubActions{RequestURL: url, RequestToken: tok},
		FulcioURL: s.FulcioURL,
		TSAURL:    s.TSAURL,
	})
	if err != nil {
		t.Fatal(err)
	}
	var certs []string
	for range 3 {
		b, err := signer.Sign(t.Context(), scanStatement(t, image))
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, bundleCertificate(t, b))
	}
	if certs[0] == "" || certs[0] != certs[1] || certs[1] != certs[2] {
		t.Error("the bundles carry different certificates")
	}
	if n := s.Issuer.Issued(tok); n != 1 {
		t.Errorf("the signer asked for %d tokens, want 1", n)
	}
	subject, issuer := signer.Identity()
	if subject != job.Subject() || issuer != s.Issuer.URL {
		t.Errorf("Identity() = %s, %s", subject, issuer)
	}
}

// flipStatement is flipVerdict on a bare statement.
func flipStatement(t *testing.T, st []byte) []byte {
	t.Helper()
	out := bytes.Replace(st, []byte(`"fail"`), []byte(`"pass"`), 1)
	if bytes.Equal(out, st) {
		t.Fatal("no verdict to flip")
	}
	return out
}

// swapCertificate puts from's certificate into b.
func swapCertificate(t *testing.T, b, from []byte) []byte {
	t.Helper()
	var src map[string]any
	if err := json.Unmarshal(from, &src); err != nil {
		t.Fatal(err)
	}
	cert := src["verificationMaterial"].(map[string]any)["certificate"]
	return editBundle(t, b, func(m map[string]any) {
		m["verificationMaterial"].(map[string]any)["certificate"] = cert
	})
}

func bundleCertificate(t *testing.T, b []byte) string {
	t.Helper()
	var m struct {
		VerificationMaterial struct {
			Certificate struct {
				RawBytes string `json:"rawBytes"`
			} `json:"certificate"`
		} `json:"verificationMaterial"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m.VerificationMaterial.Certificate.RawBytes
}

func editJSON(t *testing.T, data []byte, edit func(map[string]any)) []byte {
	t.Helper()
	return editBundle(t, data, edit)
}

// A key's signature dated by the timestamp authority: the time comes from
// the TSA, and a policy that requires it refuses the same key's bundle
// without one.
func TestVerifyKeyWithTimestamp(t *testing.T) {
	s := sigstoretest.Shared(t)
	tr, err := root.NewTrustedRootFromJSON(s.TrustedRoot)
	if err != nil {
		t.Fatal(err)
	}
	key := newKey(t, false)
	stamped := signWith(t, sign.Options{Key: key, TSAURL: s.TSAURL}, scanStatement(t, image))
	bare := signWith(t, sign.Options{Key: key}, scanStatement(t, image))
	v, err := trust.New(trust.Policy{Root: tr, Keys: []crypto.PublicKey{key.Public()}, Timestamps: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := trust.Expect{Digest: image, PredicateType: scanPredicate}
	res, err := v.Verify(stamped, want)
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(res.Time) > time.Minute || res.Time.After(time.Now()) {
		t.Errorf("time = %s, want about now", res.Time)
	}
	wantRefused(t, v, bare, want, trust.Untrusted)
}
