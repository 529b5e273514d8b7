package sign_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/slipwayci/slipway/internal/attest"
	"github.com/slipwayci/slipway/internal/ci"
	"github.com/slipwayci/slipway/internal/provenance"
	"github.com/slipwayci/slipway/internal/record"
	slipreg "github.com/slipwayci/slipway/internal/registry"
	"github.com/slipwayci/slipway/internal/registrytest"
	"github.com/slipwayci/slipway/internal/sign"
	"github.com/slipwayci/slipway/internal/sigstoretest"
)

func TestMain(m *testing.M) { os.Exit(sigstoretest.Main(m)) }

const scanPredicate = "https://slipway.dev/attestations/scan/v1"

// newRegistry starts the real registry for a test that cosign checks,
// after making sure cosign and the registry are there.
func newRegistry(t *testing.T) *registrytest.Registry {
	t.Helper()
	if testing.Short() {
		t.Skip("cosign is not run in -short mode")
	}
	sigstoretest.Need(t, "cosign", "docker-registry")
	return registrytest.New(t, registrytest.Options{})
}

func cosignCLI(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	return sigstoretest.Cosign(t, env, args...)
}

// image is an index of two platforms pushed to the real registry.
type image struct {
	repo      name.Repository
	index     v1.Descriptor
	platforms []v1.Descriptor
	attach    sign.Attacher
}

func (im image) ref(d v1.Descriptor) string { return im.repo.Digest(d.Digest.String()).String() }

func pushImage(t *testing.T, r *registrytest.Registry, path string) image {
	t.Helper()
	repo, err := name.NewRepository(r.Host + "/" + path)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := random.Index(256, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	if err := remote.WriteIndex(repo.Digest(d.String()), idx); err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	raw, _ := idx.RawManifest()
	reg, err := slipreg.New(slipreg.Options{})
	if err != nil {
		t.Fatal(err)
	}
	client, err := reg.Dial(t.Context(), repo, slipreg.DialOptions{Push: true})
	if err != nil {
		t.Fatal(err)
	}
	out := image{
		repo:      repo,
		index:     v1.Descriptor{MediaType: im.MediaType, Digest: d, Size: int64(len(raw))},
		platforms: im.Manifests,
		// The one line that ties signing to the registry client.
		attach: sign.AttachFunc(func(ctx context.Context, s v1.Descriptor, data []byte, mt, at string, ann map[string]string) (v1.Descriptor, error) {
			return client.Attach(ctx, s, slipreg.Artifact{Data: data, MediaType: mt, ArtifactType: at, Annotations: ann})
		}),
	}
	return out
}

func mustSign(t *testing.T, s *sign.Signer, st []byte) []byte {
	t.Helper()
	b, err := s.Sign(t.Context(), st)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func publish(t *testing.T, im image, subject v1.Descriptor, bundle []byte) {
	t.Helper()
	if _, err := sign.Publish(t.Context(), im.attach, subject, bundle, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func subjectsOf(im image) []sign.Subject {
	subs := []sign.Subject{sign.DigestSubject(im.repo.String(), im.index.Digest)}
	for _, p := range im.platforms {
		subs = append(subs, sign.DigestSubject(im.repo.String(), p.Digest))
	}
	return subs
}

// signAll signs what slipway push will sign, as internal/attest plans
// it: for the index and each platform, the image itself, SLSA provenance,
// the scan statement and each platform's SPDX and CycloneDX SBOMs.
func signAll(t *testing.T, s *sign.Signer, im image) {
	t.Helper()
	dir := t.TempDir()
	rec := &record.Record{Module: "example.com/demo", Version: "1.0.0", Commit: "0123456789abcdef0123456789abcdef01234567", GoVersion: "go1.26.8", Slipway: "test",
		Image: &record.Image{Ref: im.repo.String(), Digest: im.index.Digest.String(), Base: "static"}}
	for i, p := range im.platforms {
		plat := []string{"linux/amd64", "linux/arm64"}[i]
		rec.Image.Platforms = append(rec.Image.Platforms, record.PlatformImage{Platform: plat, Digest: p.Digest.String(), SBOMs: []record.SBOM{
			writeSBOM(t, dir, plat, "spdx-2.3+json", map[string]any{
				"spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT", "name": "demo " + plat,
				"documentNamespace": "https://slipway.dev/spdx/demo", "creationInfo": map[string]any{"created": "2026-01-02T03:04:05Z", "creators": []string{"Tool: slipway"}},
			}),
			writeSBOM(t, dir, plat, "cyclonedx-1.5+json", map[string]any{"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1}),
		}})
	}
	env := map[string]string{"GITHUB_SERVER_URL": "https://github.com", "GITHUB_WORKFLOW_REF": "slipwayci/demo/.github/workflows/release.yml@refs/heads/main", "GITHUB_RUN_ATTEMPT": "1"}
	prov, err := provenance.Statement(provenance.Input{
		Record: rec, Dir: dir, Getenv: func(k string) string { return env[k] },
		Info: ciInfo(), Started: time.Now().Add(-time.Minute),
	})
	if err != nil {
		t.Fatal(err)
	}
	scan, err := sign.NewStatement(scanPredicate, map[string]any{"verdict": map[string]any{"pass": true}}, sign.DigestSubject(im.repo.String(), im.index.Digest))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := attest.Plan(attest.Input{Index: im.index, Manifests: im.platforms, Record: rec, Dir: dir, Provenance: prov, Scan: scan})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := attest.Sign(t.Context(), s, im.attach, ev, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func writeSBOM(t *testing.T, dir, plat, format string, doc any) record.SBOM {
	t.Helper()
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.ReplaceAll(plat, "/", "_") + "." + strings.SplitN(format, "-", 2)[0] + ".json"
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return record.SBOM{Format: format, Path: name, SHA256: hex.EncodeToString(sum[:])}
}

func keylessSigner(t *testing.T, s *sigstoretest.Stack, job sigstoretest.GitHub, rekor bool) *sign.Signer {
	t.Helper()
	url, tok := s.Issuer.Runner(job)
	o := sign.Options{Token: &sign.GitHubActions{RequestURL: url, RequestToken: tok}, FulcioURL: s.FulcioURL, TSAURL: s.TSAURL}
	if rekor {
		o.RekorURL, o.RekorVersion = s.RekorURL, 2
	}
	signer, err := sign.New(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	return signer
}

// keylessArgs are the flags cosign needs to verify against the local
// Sigstore: its trusted root, the identity, and no SCT (the local Fulcio,
// like GitHub's private instance, has no CT log).
func keylessArgs(s *sigstoretest.Stack, identityRegexp string) []string {
	return []string{"--trusted-root", s.TrustedRootFile,
		"--certificate-identity-regexp", identityRegexp,
		"--certificate-oidc-issuer", s.Issuer.URL,
		"--insecure-ignore-sct"}
}

const demoIdentity = `^https://github\.com/slipwayci/demo/\.github/workflows/release\.yml@refs/heads/main$`

func TestCosignVerifiesKeyless(t *testing.T) {
	s := sigstoretest.Shared(t)
	r := newRegistry(t)
	im := pushImage(t, r, "team/app")
	signAll(t, keylessSigner(t, s, sigstoretest.DefaultGitHub, true), im)

	for _, d := range append([]v1.Descriptor{im.index}, im.platforms...) {
		out, err := cosignCLI(t, nil, append(append([]string{"verify"}, keylessArgs(s, demoIdentity)...), im.ref(d))...)
		if err != nil {
			t.Fatalf("cosign verify %s: %v\n%s", d.Digest, err, out)
		}
	}
	for _, typ := range []string{"slsaprovenance1", "spdxjson", "cyclonedx", scanPredicate} {
		targets := append([]v1.Descriptor{im.index}, im.platforms...)
		if typ == scanPredicate {
			targets = targets[:1] // the scan statement is about the index
		}
		for _, d := range targets {
			args := append(append([]string{"verify-attestation", "--type", typ}, keylessArgs(s, demoIdentity)...), im.ref(d))
			if out, err := cosignCLI(t, nil, args...); err != nil {
				t.Fatalf("cosign verify-attestation --type %s %s: %v\n%s", typ, d.Digest, err, out)
			}
		}
	}
	// Another identity: cosign refuses the same signatures.
	other := `^https://github\.com/slipwayci/other/`
	if out, err := cosignCLI(t, nil, append(append([]string{"verify"}, keylessArgs(s, other)...), im.ref(im.index))...); err == nil {
		t.Fatalf("cosign verify accepted identity %s:\n%s", other, out)
	}
}

// GitHub's own Sigstore instance has a Fulcio and a timestamp authority
// and no log: cosign verifies such bundles with --insecure-ignore-tlog
// and --use-signed-timestamps.
func TestCosignVerifiesKeylessWithoutLog(t *testing.T) {
	s := sigstoretest.Shared(t)
	r := newRegistry(t)
	im := pushImage(t, r, "team/nolog")
	signer := keylessSigner(t, s, sigstoretest.DefaultGitHub, false)
	st, _ := sign.ImageStatement(im.index.Digest)
	publish(t, im, im.index, mustSign(t, signer, st))

	args := append(append([]string{"verify"}, keylessArgs(s, demoIdentity)...), "--insecure-ignore-tlog", "--use-signed-timestamps", im.ref(im.index))
	if out, err := cosignCLI(t, nil, args...); err != nil {
		t.Fatalf("cosign verify: %v\n%s", err, out)
	}
	// Without those flags cosign looks for a log entry and refuses.
	args = append(append([]string{"verify"}, keylessArgs(s, demoIdentity)...), im.ref(im.index))
	if out, err := cosignCLI(t, nil, args...); err == nil {
		t.Fatalf("cosign verify accepted a bundle with no log entry without --insecure-ignore-tlog:\n%s", out)
	}
}

func TestCosignVerifiesKey(t *testing.T) {
	r := newRegistry(t)
	dir := t.TempDir()
	const password = "pa55-for-the-test-key"
	// A key made by cosign itself, read by slipway.
	if out, err := cosignCLI(t, []string{"COSIGN_PASSWORD=" + password}, "generate-key-pair", "--output-key-prefix", filepath.Join(dir, "cosign")); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	key, err := sign.LoadKey(filepath.Join(dir, "cosign.key"), func() ([]byte, error) { return []byte(password), nil })
	if err != nil {
		t.Fatal(err)
	}
	// The services are started only for the cases that use them.
	for _, tc := range []struct {
		name  string
		setup func(*sigstoretest.Stack) (sign.Options, []string)
		stack bool
	}{
		{"no timestamp", func(*sigstoretest.Stack) (sign.Options, []string) {
			return sign.Options{Key: key}, []string{"--insecure-ignore-tlog"}
		}, false},
		{"timestamp", func(s *sigstoretest.Stack) (sign.Options, []string) {
			return sign.Options{Key: key, TSAURL: s.TSAURL}, []string{"--insecure-ignore-tlog", "--use-signed-timestamps", "--trusted-root", s.TrustedRootFile}
		}, true},
		{"timestamp and log", func(s *sigstoretest.Stack) (sign.Options, []string) {
			return sign.Options{Key: key, TSAURL: s.TSAURL, RekorURL: s.RekorURL, RekorVersion: 2}, []string{"--use-signed-timestamps", "--trusted-root", s.TrustedRootFile}
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s *sigstoretest.Stack
			if tc.stack {
				s = sigstoretest.Shared(t)
			}
			o, args := tc.setup(s)
			im := pushImage(t, r, "team/keyed-"+strings.ReplaceAll(tc.name, " ", "-"))
			signer, err := sign.New(t.Context(), o)
			if err != nil {
				t.Fatal(err)
			}
			signAll(t, signer, im)
			base := append([]string{"--key", filepath.Join(dir, "cosign.pub")}, args...)
			if out, err := cosignCLI(t, nil, append(append([]string{"verify"}, base...), im.ref(im.index))...); err != nil {
				t.Fatalf("cosign verify --key: %v\n%s", err, out)
			}
			for _, typ := range []string{"slsaprovenance1", "spdxjson", "cyclonedx", scanPredicate} {
				d := im.platforms[1]
				if typ == scanPredicate {
					d = im.index
				}
				args := append(append([]string{"verify-attestation", "--type", typ}, base...), im.ref(d))
				if out, err := cosignCLI(t, nil, args...); err != nil {
					t.Fatalf("cosign verify-attestation --key --type %s: %v\n%s", typ, err, out)
				}
			}
		})
	}
}

// Each forgery sits alone on an image of its own, so that cosign has
// nothing else there to accept.
func TestCosignRefusesTampering(t *testing.T) {
	s := sigstoretest.Shared(t)
	r := newRegistry(t)
	signer := keylessSigner(t, s, sigstoretest.DefaultGitHub, true)
	verify := func(im image, d v1.Descriptor, typ string) (string, error) {
		args := append(append([]string{"verify-attestation", "--type", typ}, keylessArgs(s, demoIdentity)...), im.ref(d))
		return cosignCLI(t, nil, args...)
	}

	t.Run("payload byte changed", func(t *testing.T) {
		im := pushImage(t, r, "team/forged-payload")
		st, _ := sign.NewStatement(scanPredicate, map[string]any{"verdict": "fail"}, subjectsOf(im)...)
		forged := flipPayload(t, mustSign(t, signer, st))
		publish(t, im, im.index, forged)
		if out, err := verify(im, im.index, scanPredicate); err == nil {
			t.Fatalf("cosign accepted a changed payload:\n%s", out)
		}
	})
	t.Run("bundle moved to another digest", func(t *testing.T) {
		a, b := pushImage(t, r, "team/moved"), pushImage(t, r, "team/moved")
		st, _ := sign.NewStatement(scanPredicate, map[string]any{"verdict": "pass"}, sign.DigestSubject("", a.index.Digest))
		bundle := mustSign(t, signer, st)
		// Publish refuses to attach a bundle to a digest it is not about...
		if _, err := sign.Publish(t.Context(), b.attach, b.index, bundle, time.Now()); err == nil {
			t.Fatal("Publish attached a bundle to a digest its statement does not name")
		}
		// ...so the attacker attaches it by hand.
		if _, err := b.attach.Attach(t.Context(), b.index, bundle, sign.BundleMediaType, sign.BundleMediaType, nil); err != nil {
			t.Fatal(err)
		}
		if out, err := verify(b, b.index, scanPredicate); err == nil {
			t.Fatalf("cosign accepted a bundle about %s on %s:\n%s", a.index.Digest, b.index.Digest, out)
		}
	})
	t.Run("certificate for another identity", func(t *testing.T) {
		im := pushImage(t, r, "team/other-identity")
		mallory := keylessSigner(t, s, sigstoretest.GitHub{Repository: "mallory/fork"}, true)
		st, _ := sign.NewStatement(scanPredicate, map[string]any{"verdict": "pass"}, subjectsOf(im)...)
		publish(t, im, im.index, mustSign(t, mallory, st))
		if out, err := verify(im, im.index, scanPredicate); err == nil {
			t.Fatalf("cosign accepted mallory's statement:\n%s", out)
		}
	})
}

// flipPayload rewrites the verdict in a bundle's signed statement from
// fail to pass and leaves the signature as it was.
func flipPayload(t *testing.T, b []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
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
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func ciInfo() ci.Info {
	return ci.Info{
		Platform: "github", Repository: "slipwayci/demo", Ref: "refs/heads/main", Branch: "main",
		Commit: "0123456789abcdef0123456789abcdef01234567", RunURL: "https://github.com/slipwayci/demo/actions/runs/4242",
	}
}

// A PEM Ed25519 key, not made by cosign, verifies with cosign --key too.
func TestCosignVerifiesEd25519Key(t *testing.T) {
	r := newRegistry(t)
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	key, err := sign.ParseKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := key.PublicPEM()
	if err != nil {
		t.Fatal(err)
	}
	pubFile := filepath.Join(t.TempDir(), "key.pub")
	if err := os.WriteFile(pubFile, pub, 0o644); err != nil {
		t.Fatal(err)
	}
	signer, err := sign.New(t.Context(), sign.Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	im := pushImage(t, r, "team/ed25519")
	signAll(t, signer, im)
	if out, err := cosignCLI(t, nil, "verify", "--key", pubFile, "--insecure-ignore-tlog", im.ref(im.platforms[0])); err != nil {
		t.Fatalf("cosign verify --key (Ed25519): %v\n%s", err, out)
	}
	if out, err := cosignCLI(t, nil, "verify-attestation", "--type", "slsaprovenance1", "--key", pubFile, "--insecure-ignore-tlog", im.ref(im.index)); err != nil {
		t.Fatalf("cosign verify-attestation --key (Ed25519): %v\n%s", err, out)
	}
}
