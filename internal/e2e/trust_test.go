package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/promote"
	"github.com/slipwayci/slipway/internal/provenance"
	"github.com/slipwayci/slipway/internal/push"
	"github.com/slipwayci/slipway/internal/registry"
	"github.com/slipwayci/slipway/internal/registrytest"
	"github.com/slipwayci/slipway/internal/sign"
	"github.com/slipwayci/slipway/internal/sigstoretest"
)

// trustWorld is a real registry, a real local Fulcio and timestamp
// authority, and a .slipway.yaml whose trust: names one GitHub workflow.
type trustWorld struct {
	reg     *registrytest.Registry
	stack   *sigstoretest.Stack
	dir     string
	job     sigstoretest.GitHub
	trusted *sign.Signer
}

const trustWorldConfig = `trust:
  trustedRoot: trusted_root.json
  identities:
    - issuer: ISSUER
      subject: SUBJECT
      repository: acme/hello
  require: {timestamp: true}
environments:
  staging:
    repository: HOST/staging/hello
    tags: [staging]
  production:
    repository: HOST/prod/hello
    tags: [production]
    gates:
      from: staging
      scan: {maxSeverity: high, maxAge: 2d}
      sbom: true
      provenance:
        repository: acme/hello
        ref: refs/heads/main
        builder: SUBJECT
      approval: {issuer: ISSUER, repository: acme/hello}
`

func newTrustWorld(t *testing.T) *trustWorld {
	t.Helper()
	requireE2E(t, "docker-registry", "cosign", "fulcio", "timestamp-server")
	w := &trustWorld{reg: registrytest.New(t, registrytest.Options{}), stack: sigstoretest.Lease(t), dir: t.TempDir(),
		job: sigstoretest.GitHub{Repository: "acme/hello", Ref: "refs/heads/main"}}
	writeFile(t, filepath.Join(w.dir, "trusted_root.json"), string(w.stack.TrustedRoot))
	cfg := strings.NewReplacer("ISSUER", w.stack.Issuer.URL, "SUBJECT", w.job.Subject(), "HOST", w.reg.Host).Replace(trustWorldConfig)
	writeFile(t, filepath.Join(w.dir, ".slipway.yaml"), cfg)
	w.trusted = w.keyless(t, w.job)
	return w
}

func (w *trustWorld) keyless(t *testing.T, job sigstoretest.GitHub) *sign.Signer {
	t.Helper()
	url, tok := w.stack.Issuer.Runner(job)
	s, err := sign.New(testContext(t), sign.Options{Token: &sign.GitHubActions{RequestURL: url, RequestToken: tok}, FulcioURL: w.stack.FulcioURL, TSAURL: w.stack.TSAURL})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// trustImage is a two-platform index in staging's repository.
type trustImage struct {
	ref       name.Digest
	index     v1.Descriptor
	platforms []v1.Hash
	repo      *registry.Repository
}

func (w *trustWorld) publish(t *testing.T) trustImage {
	t.Helper()
	ctx := testContext(t)
	idx, err := random.Index(256, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	p, err := layout.Write(filepath.Join(t.TempDir(), "image"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(idx); err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	repo, _ := name.NewRepository(w.reg.Host + "/staging/hello")
	if _, err := push.Push(ctx, push.Options{Layout: string(p), Digest: d, To: []name.Repository{repo}, Registry: defaultRegistry(t)}); err != nil {
		t.Fatal(err)
	}
	raw, _ := idx.RawManifest()
	mt, _ := idx.MediaType()
	im := trustImage{ref: repo.Digest(d.String()), index: v1.Descriptor{MediaType: mt, Digest: d, Size: int64(len(raw))}}
	manifest, _ := idx.IndexManifest()
	for _, m := range manifest.Manifests {
		im.platforms = append(im.platforms, m.Digest)
	}
	if im.repo, err = defaultRegistry(t).Dial(ctx, repo, registry.DialOptions{Push: true}); err != nil {
		t.Fatal(err)
	}
	return im
}

func (im trustImage) subjects() []sign.Subject {
	out := []sign.Subject{sign.DigestSubject("hello", im.index.Digest)}
	for _, p := range im.platforms {
		out = append(out, sign.DigestSubject("hello", p))
	}
	return out
}

func (im trustImage) digests() []string {
	out := []string{im.index.Digest.String()}
	for _, p := range im.platforms {
		out = append(out, p.String())
	}
	return out
}

// attach attaches data to the index as it is: a bundle as cosign v3
// stores one, anything else as an unsigned in-toto statement.
func (im trustImage) attach(t *testing.T, data []byte, bundle bool) {
	t.Helper()
	a := registry.Artifact{Data: data, MediaType: registry.MediaTypeInToto}
	if bundle {
		st, err := sign.BundleStatement(data)
		if err != nil {
			t.Fatal(err)
		}
		a = registry.Artifact{Data: data, MediaType: sign.BundleMediaType, ArtifactType: sign.BundleMediaType,
			Annotations: map[string]string{sign.AnnotationContent: "dsse-envelope", sign.AnnotationPredicateType: st.PredicateType}}
	}
	if _, err := im.repo.Attach(testContext(t), im.index, a); err != nil {
		t.Fatal(err)
	}
}

func (im trustImage) signed(t *testing.T, s *sign.Signer, statement []byte) {
	t.Helper()
	b, err := s.Sign(testContext(t), statement)
	if err != nil {
		t.Fatal(err)
	}
	im.attach(t, b, true)
}

func (im trustImage) scan(pass bool, finished time.Time) []byte {
	high := 0
	if !pass {
		high = 3
	}
	return []byte(promoteScan(im.digests(), pass, high, finished))
}

func (im trustImage) sbom(t *testing.T) []byte {
	st, err := sign.NewStatement(sign.SPDXPredicate, map[string]any{"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": "hello"}, im.subjects()...)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (im trustImage) provenance(t *testing.T, job sigstoretest.GitHub) []byte {
	var p provenance.Provenance
	p.BuildDefinition.BuildType = provenance.BuildType
	p.BuildDefinition.ExternalParameters.Repository = "https://github.com/" + job.Repository
	p.BuildDefinition.ExternalParameters.Ref = job.Ref
	p.RunDetails.Builder.ID = job.Subject()
	st, err := sign.NewStatement(sign.SLSAProvenancePredicate, p, im.subjects()...)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (im trustImage) imageStatement(t *testing.T) []byte {
	st, err := sign.ImageStatement(im.index.Digest)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// honest attaches everything the pipeline signs, with the trusted
// identity, except what skip names.
func (w *trustWorld) honest(t *testing.T, im trustImage, skip ...string) {
	t.Helper()
	for _, what := range []string{"image", "scan", "sbom", "provenance"} {
		if strings.Contains(strings.Join(skip, ","), what) {
			continue
		}
		switch what {
		case "image":
			im.signed(t, w.trusted, im.imageStatement(t))
		case "scan":
			im.signed(t, w.trusted, im.scan(true, time.Now().Add(-time.Minute)))
		case "sbom":
			im.signed(t, w.trusted, im.sbom(t))
		case "provenance":
			im.signed(t, w.trusted, im.provenance(t, w.job))
		}
	}
}

// intoStaging promotes im into staging (no gates), so production's from
// gate passes and only the attack is left to refuse it.
func (w *trustWorld) intoStaging(t *testing.T, im trustImage) {
	t.Helper()
	url, tok := w.stack.Issuer.Runner(w.job)
	env := []string{"ACTIONS_ID_TOKEN_REQUEST_URL=" + url, "ACTIONS_ID_TOKEN_REQUEST_TOKEN=" + tok}
	r := promoteRun(t, w.dir, time.Now(), env, w.sigstore("--digest", im.ref.String(), "--to", "staging")...)
	if r.Code != 0 || !strings.Contains(r.Stderr, "signing keyless as "+w.job.Subject()) {
		t.Fatalf("into staging: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
}

// sigstore adds to args the flags that point signing at the local
// Sigstore, without a log.
func (w *trustWorld) sigstore(args ...string) []string {
	return append(args, "--fulcio-url", w.stack.FulcioURL, "--tsa-url", w.stack.TSAURL, "--rekor-url", "none")
}

// approved is the environment of a GitHub job in the protected
// environment production, with the runner's OIDC token endpoint.
func (w *trustWorld) approved(t *testing.T) []string {
	url, tok := w.stack.Issuer.Runner(sigstoretest.GitHub{Repository: "acme/hello", Ref: "refs/heads/main", Environment: "production"})
	out := t.TempDir()
	return []string{"GITHUB_ACTIONS=true", "ACTIONS_ID_TOKEN_REQUEST_URL=" + url, "ACTIONS_ID_TOKEN_REQUEST_TOKEN=" + tok,
		"GITHUB_OUTPUT=" + filepath.Join(out, "output"), "GITHUB_STEP_SUMMARY=" + filepath.Join(out, "summary")}
}

func (w *trustWorld) verify(t *testing.T, args ...string) pushResult {
	t.Helper()
	home := t.TempDir()
	var stdout, stderr strings.Builder
	ctx, cancel := context.WithTimeout(testContext(t), toolTimeout)
	defer cancel()
	err := promote.Command{}.Verify(ctx, cli.Env{Args: args, Environ: []string{"HOME=" + home}, Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Dir: w.dir})
	code := cli.ExitCode(&stderr, "slipway verify", err)
	return pushResult{Stdout: stdout.String(), Stderr: stderr.String(), Code: code}
}

// TestTrustRefusesForgedEvidence writes each attack of issue 14 first,
// against a real registry and a real Fulcio and timestamp authority:
// every one is refused with exit 3, one line naming the reason, and
// production untagged. Then the honest path passes, and cosign agrees
// with slipway verify on the same digests.
func TestTrustRefusesForgedEvidence(t *testing.T) {
	w := newTrustWorld(t)
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k, _ := sign.NewKey(priv)
	untrustedKey, err := sign.New(testContext(t), sign.Options{Key: k, TSAURL: w.stack.TSAURL})
	if err != nil {
		t.Fatal(err)
	}
	elsewhere := sigstoretest.GitHub{Repository: "evil/hello", Ref: "refs/heads/main"}

	attacks := []struct {
		name   string
		forge  func(t *testing.T, im trustImage)
		reason string // in the one line about the scan or provenance gate
	}{
		{"forged unsigned scan on an unscanned digest", func(t *testing.T, im trustImage) {
			w.honest(t, im, "scan")
			im.attach(t, im.scan(true, time.Now()), false)
		}, `gate scan refused: no scan attestation on the digest; run slipway scan and push it; ignored: sha256:[0-9a-f]{12} unsigned$`},
		{"scan signed by an untrusted key", func(t *testing.T, im trustImage) {
			w.honest(t, im, "scan")
			im.signed(t, untrustedKey, im.scan(true, time.Now()))
		}, `gate scan refused: no scan attestation .*; ignored: sha256:[0-9a-f]{12} signed by a key, not trusted$`},
		{"scan signed for another digest", func(t *testing.T, im trustImage) {
			w.honest(t, im, "scan")
			other := w.publish(t)
			b, err := w.trusted.Sign(testContext(t), other.scan(true, time.Now()))
			if err != nil {
				t.Fatal(err)
			}
			im.attach(t, b, true)
		}, `gate scan refused: no scan attestation .*; ignored: sha256:[0-9a-f]{12} about another digest$`},
		{"scan dated 2099 beside a real failing scan", func(t *testing.T, im trustImage) {
			w.honest(t, im, "scan")
			// Both signed by the trusted workflow; the passing one first,
			// claiming to have finished in 2099. The timestamp authority
			// says the failing one is newer.
			im.signed(t, w.trusted, im.scan(true, time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)))
			time.Sleep(1100 * time.Millisecond) // RFC 3161 times here have whole seconds
			im.signed(t, w.trusted, im.scan(false, time.Now().Add(-time.Hour)))
		}, `gate scan refused: the newest scan's verdict is "fail", signed by https://github\.com/acme/hello/`},
		{"provenance from another repository", func(t *testing.T, im trustImage) {
			w.honest(t, im, "provenance")
			im.signed(t, w.trusted, im.provenance(t, elsewhere))
		}, `gate provenance refused: provenance sha256:[0-9a-f]{12} is from https://github\.com/evil/hello, not https://github\.com/acme/hello$`},
		{"provenance signed by another repository's workflow", func(t *testing.T, im trustImage) {
			w.honest(t, im, "provenance")
			im.signed(t, w.keyless(t, elsewhere), im.provenance(t, w.job))
		}, `gate provenance refused: no signed SLSA provenance .*; ignored: sha256:[0-9a-f]{12} signed by https://github\.com/evil/hello/\.github/workflows/release\.yml@refs/heads/main \(issuer http://127\.0\.0\.1:\d+\), not trusted$`},
	}
	attacks = append(attacks, struct {
		name   string
		forge  func(t *testing.T, im trustImage)
		reason string
	}{"approval environment asserted without a token", func(t *testing.T, im trustImage) { w.honest(t, im) },
		`gate approval refused: environment production asserted without an OIDC token to prove it`})
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			im := w.publish(t)
			w.intoStaging(t, im)
			a.forge(t, im)
			env := w.approved(t)
			if strings.HasPrefix(a.name, "approval") {
				env = []string{"GITHUB_ACTIONS=true"}
			}
			r := promoteRun(t, w.dir, time.Now(), env, w.sigstore("--digest", im.ref.String(), "--to", "production", "--github-environment", "production")...)
			var refusals []string
			for _, l := range strings.Split(strings.TrimSpace(r.Stderr), "\n") {
				if strings.HasPrefix(l, "slipway promote: gate ") {
					refusals = append(refusals, strings.TrimPrefix(l, "slipway promote: "))
				}
			}
			if r.Code != 3 || len(refusals) != 1 || !regexp.MustCompile(a.reason).MatchString(refusals[0]) {
				t.Fatalf("exit %d, refusals %q; want exit 3 and one matching %s\nstderr:\n%s", r.Code, refusals, a.reason, r.Stderr)
			}
			if tags, _ := w.reg.Tags(testContext(t), "prod/hello", registrytest.Auth{}); len(tags) > 0 {
				t.Fatalf("production tagged after a refusal: %v", tags)
			}
			// Approval is about the job, not the image: verify leaves it out.
			if v := w.verify(t, im.ref.String(), "--env", "production"); v.Code != 3 && !strings.HasPrefix(a.name, "approval") {
				t.Errorf("slipway verify of the forged image: exit %d\n%s%s", v.Code, v.Stdout, v.Stderr)
			}
		})
	}

	t.Run("forged record in staging's history", func(t *testing.T) {
		// Anyone who can push to staging's repository can append a record
		// there; unsigned, production's from gate does not count it.
		im := w.publish(t)
		promoteOK(t, w.dir, time.Now(), "--digest", im.ref.String(), "--to", "staging", "--sign", "off")
		w.honest(t, im)
		r := promoteRun(t, w.dir, time.Now(), w.approved(t), w.sigstore("--digest", im.ref.String(), "--to", "production", "--github-environment", "production")...)
		var refusals []string
		for _, l := range strings.Split(strings.TrimSpace(r.Stderr), "\n") {
			if strings.HasPrefix(l, "slipway promote: gate ") {
				refusals = append(refusals, strings.TrimPrefix(l, "slipway promote: "))
			}
		}
		want := regexp.MustCompile(`^gate from refused: the digest was never promoted to staging; ignored: sha256:[0-9a-f]{12} a record not signed by a trusted identity$`)
		if r.Code != 3 || len(refusals) != 1 || !want.MatchString(refusals[0]) {
			t.Fatalf("exit %d, refusals %q\n%s", r.Code, refusals, r.Stderr)
		}
		if tags, _ := w.reg.Tags(testContext(t), "prod/hello", registrytest.Auth{}); len(tags) > 0 {
			t.Fatalf("production tagged after a refusal: %v", tags)
		}
	})

	t.Run("honest", func(t *testing.T) {
		im := w.publish(t)
		w.intoStaging(t, im)
		w.honest(t, im)
		r := promoteRun(t, w.dir, time.Now(), w.approved(t), w.sigstore("--digest", im.ref.String(), "--to", "production", "--github-environment", "production")...)
		if r.Code != 0 || strings.Contains(r.Stderr, "warning") {
			t.Fatalf("honest promotion: exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
		}
		prod := strings.Replace(im.ref.String(), "/staging/hello@", "/prod/hello@", 1)
		v := w.verify(t, prod, "--env", "production")
		if v.Code != 0 {
			t.Fatalf("slipway verify %s: exit %d\n%s%s", prod, v.Code, v.Stdout, v.Stderr)
		}
		for _, check := range []string{"signature", "from", "scan", "sbom", "provenance"} {
			if !strings.Contains(v.Stdout, check) || strings.Contains(v.Stdout, "FAIL") {
				t.Errorf("verify's table lacks a passing %s:\n%s", check, v.Stdout)
			}
		}
		// cosign agrees, in production's repository: the bundles came along.
		args := []string{"verify", "--trusted-root", w.stack.TrustedRootFile, "--certificate-identity", w.job.Subject(),
			"--certificate-oidc-issuer", w.stack.Issuer.URL, "--insecure-ignore-sct", "--insecure-ignore-tlog", "--use-signed-timestamps"}
		if out, err := sigstoretest.Cosign(t, nil, append(args, prod)...); err != nil {
			t.Fatalf("cosign verify %s: %v\n%s", prod, err, out)
		}
		for _, typ := range []string{"slsaprovenance1", "spdxjson", promote.ScanPredicateType} {
			vargs := append([]string{"verify-attestation", "--type", typ}, args[1:]...)
			if out, err := sigstoretest.Cosign(t, nil, append(vargs, prod)...); err != nil {
				t.Errorf("cosign verify-attestation --type %s: %v\n%s", typ, err, out)
			}
		}
	})

	t.Run("cosign and slipway verify refuse the same unsigned image", func(t *testing.T) {
		// Only a key nobody trusts signed it. (cosign v3.1.3's verify also
		// takes a trusted attestation bundle as the image's signature;
		// slipway's signature check wants the image statement itself.)
		im := w.publish(t)
		im.signed(t, untrustedKey, im.imageStatement(t))
		v := w.verify(t, im.ref.String())
		args := []string{"verify", "--trusted-root", w.stack.TrustedRootFile, "--certificate-identity", w.job.Subject(),
			"--certificate-oidc-issuer", w.stack.Issuer.URL, "--insecure-ignore-sct", "--insecure-ignore-tlog", "--use-signed-timestamps", im.ref.String()}
		out, err := sigstoretest.Cosign(t, nil, args...)
		if v.Code != 3 || err == nil {
			t.Fatalf("slipway verify exit %d (%s), cosign err %v (%s): both should refuse", v.Code, v.Stderr, err, out)
		}
		if !strings.Contains(v.Stderr, "slipway verify: signature failed: no signature on the image verifies under trust:; ignored: ") {
			t.Errorf("slipway verify said:\n%s", v.Stderr)
		}
	})
}
