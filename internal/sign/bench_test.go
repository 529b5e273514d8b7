package sign_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slipwayci/slipway/internal/sign"
	"github.com/slipwayci/slipway/internal/sigstoretest"
)

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	b.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchStatement is about the size of a scan statement: a few KB of
// predicate about an index and two manifests.
func benchStatement(b *testing.B) []byte {
	b.Helper()
	h := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	findings := make([]map[string]string, 40)
	for i := range findings {
		findings[i] = map[string]string{"id": "GO-2026-0001", "package": "golang.org/x/text", "verdict": "not reachable"}
	}
	st, err := sign.NewStatement(scanPredicate, map[string]any{"findings": findings}, sign.DigestSubject("app", h), sign.DigestSubject("app", h), sign.DigestSubject("app", h))
	if err != nil {
		b.Fatal(err)
	}
	return st
}

// benchSign reports the signing process's own CPU per statement
// (cpu-ms/op): what slipway spends, not the services it calls.
func benchSign(b *testing.B, signer *sign.Signer) {
	st := benchStatement(b)
	if _, err := signer.Sign(b.Context(), st); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	start := cpuTime(b)
	for b.Loop() {
		if _, err := signer.Sign(b.Context(), st); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime(b)-start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

// BenchmarkSignKeyless signs with one Fulcio certificate and a timestamp
// from the local TSA per statement; the certificate is fetched once,
// before the loop, as a push fetches it once per run.
func BenchmarkSignKeyless(b *testing.B) {
	s := sigstoretest.Shared(b)
	url, tok := s.Issuer.Runner(sigstoretest.DefaultGitHub)
	signer, err := sign.New(b.Context(), sign.Options{Token: &sign.GitHubActions{RequestURL: url, RequestToken: tok}, FulcioURL: s.FulcioURL, TSAURL: s.TSAURL})
	if err != nil {
		b.Fatal(err)
	}
	benchSign(b, signer)
}

// BenchmarkSignKeylessRekor adds a Rekor v2 entry per statement.
func BenchmarkSignKeylessRekor(b *testing.B) {
	s := sigstoretest.Shared(b)
	url, tok := s.Issuer.Runner(sigstoretest.DefaultGitHub)
	signer, err := sign.New(b.Context(), sign.Options{Token: &sign.GitHubActions{RequestURL: url, RequestToken: tok}, FulcioURL: s.FulcioURL, TSAURL: s.TSAURL, RekorURL: s.RekorURL, RekorVersion: 2})
	if err != nil {
		b.Fatal(err)
	}
	benchSign(b, signer)
}

// BenchmarkSignKey signs with a key and nothing else: the floor.
func BenchmarkSignKey(b *testing.B) {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	key, _ := sign.NewKey(priv)
	signer, err := sign.New(b.Context(), sign.Options{Key: key})
	if err != nil {
		b.Fatal(err)
	}
	benchSign(b, signer)
}
