package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/slipwayci/slipway/internal/registry"
	"github.com/slipwayci/slipway/internal/registrytest"
	"github.com/slipwayci/slipway/internal/sign"
	"github.com/slipwayci/slipway/internal/sigstoretest"
)

const scanPredicate = "https://slipway.dev/attestations/scan/v1"

// signJob is the GitHub job the keyless tests sign as.
var signJob = sigstoretest.GitHub{Repository: "acme/hello", Workflow: ".github/workflows/release.yml", Ref: "refs/tags/v1.2.3"}

// signIdentity is the certificate identity cosign must see for signJob.
var signIdentity = "^" + regexp.QuoteMeta(signJob.Subject()) + "$"

// signDist copies the push sample's dist into a directory of the test's
// own and adds the scan step's statement about its index, so that push
// has every kind of evidence to sign.
func signDist(t *testing.T, dir string) string {
	t.Helper()
	rec := pushRecord(t, dir)
	dist := filepath.Join(t.TempDir(), "dist")
	if err := os.CopyFS(dist, os.DirFS(filepath.Join(dir, "dist"))); err != nil {
		t.Fatal(err)
	}
	h, err := v1.NewHash(rec.Image.Digest)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sign.NewStatement(scanPredicate, map[string]any{"verdict": "pass"}, sign.DigestSubject("hello", h))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dist, "scan.intoto.json"), string(st))
	return dist
}

// keylessFlags point slipway at the local Sigstore: Fulcio, the TSA and
// Rekor v2, and the trusted root each signature is checked against
// before it is published.
func keylessFlags(s *sigstoretest.Stack) []string {
	return []string{"--fulcio-url", s.FulcioURL, "--tsa-url", s.TSAURL, "--rekor-url", s.RekorURL, "--rekor-api", "2", "--trusted-root", s.TrustedRootFile}
}

// cosignKeyless are the flags cosign needs to verify keyless bundles of
// the local Sigstore (it has no CT log, hence no SCT).
func cosignKeyless(s *sigstoretest.Stack, identity string) []string {
	return []string{"--trusted-root", s.TrustedRootFile, "--certificate-identity-regexp", identity,
		"--certificate-oidc-issuer", s.Issuer.URL, "--insecure-ignore-sct"}
}

// cosignOK runs cosign and fails the test unless it succeeds.
func cosignOK(t *testing.T, args ...string) {
	t.Helper()
	if out, err := sigstoretest.Cosign(t, nil, args...); err != nil {
		t.Errorf("cosign %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// cosignRefuses runs cosign and fails the test if it succeeds.
func cosignRefuses(t *testing.T, why string, args ...string) {
	t.Helper()
	if out, err := sigstoretest.Cosign(t, nil, args...); err == nil {
		t.Errorf("cosign accepted %s: cosign %s\n%s", why, strings.Join(args, " "), out)
	}
}

// manifestsOf are the record's index and platform manifests, by digest.
func manifestsOf(t *testing.T, dir string) (index string, platforms []string) {
	rec := pushRecord(t, dir)
	for _, p := range rec.Image.Platforms {
		platforms = append(platforms, p.Digest)
	}
	return rec.Image.Digest, platforms
}

// TestPushSignsKeyless pushes the sample with a GitHub-shaped OIDC token
// in the environment and no --sign: push signs keyless by default, and
// the real cosign CLI verifies the image and every attestation on the
// index and on each platform manifest, and refuses another identity and
// a bundle moved to another image.
func TestPushSignsKeyless(t *testing.T) {
	requireE2E(t, "git", "docker-registry")
	s := sigstoretest.Lease(t)
	sigstoretest.Need(t, "cosign")
	dir := must(t, pushSample)
	dist := signDist(t, dir)
	r := registrytest.New(t, registrytest.Options{})
	repo := r.Host + "/team/hello"
	url, tok := s.Issuer.Runner(signJob)

	res := pushOK(t, dir, []string{"ACTIONS_ID_TOKEN_REQUEST_URL=" + url, "ACTIONS_ID_TOKEN_REQUEST_TOKEN=" + tok},
		append([]string{"--dist", dist, "--to", repo, "--tag", "stable"}, keylessFlags(s)...)...)
	if !strings.Contains(res.Stderr, "signing keyless as "+signJob.Subject()) {
		t.Errorf("push did not say it signs keyless, and as whom:\n%s", res.Stderr)
	}
	if strings.Contains(res.Stdout+res.Stderr+res.Summary, tok) {
		t.Error("push printed the runner's token request token")
	}
	outs := pushOutputs(res.Stdout)
	for _, pt := range []string{sign.CosignSignPredicate, sign.SLSAProvenancePredicate, scanPredicate, sign.SPDXPredicate, sign.CycloneDXPredicate} {
		if !strings.Contains(outs["signed"], pt) {
			t.Errorf("output signed %q lacks %s", outs["signed"], pt)
		}
	}
	if !strings.HasPrefix(outs["signer"], signJob.Subject()) {
		t.Errorf("output signer %q, want %s", outs["signer"], signJob.Subject())
	}
	if !strings.Contains(res.Summary, "signed ") {
		t.Errorf("the summary does not say what was signed:\n%s", res.Summary)
	}

	index, platforms := manifestsOf(t, dir)
	refs := []string{repo + "@" + index}
	for _, p := range platforms {
		refs = append(refs, repo+"@"+p)
	}
	for _, ref := range refs {
		cosignOK(t, append(append([]string{"verify"}, cosignKeyless(s, signIdentity)...), ref)...)
		for _, typ := range []string{"slsaprovenance1", "spdxjson", "cyclonedx"} {
			cosignOK(t, append(append([]string{"verify-attestation", "--type", typ}, cosignKeyless(s, signIdentity)...), ref)...)
		}
	}
	cosignOK(t, append(append([]string{"verify-attestation", "--type", scanPredicate}, cosignKeyless(s, signIdentity)...), refs[0])...)

	// Attacks: another identity; the same bundle moved onto another
	// image (one pushed by ggcr, never signed).
	cosignRefuses(t, "another identity", append(append([]string{"verify"}, cosignKeyless(s, `^https://github\.com/mallory/`)...), refs[0])...)
	other := pushRandomIndex(t, r, "team/other")
	moveBundles(t, r, repo, index, other)
	cosignRefuses(t, "a bundle about another digest", append(append([]string{"verify"}, cosignKeyless(s, signIdentity)...), other)...)
	cosignRefuses(t, "a provenance bundle about another digest", append(append([]string{"verify-attestation", "--type", "slsaprovenance1"}, cosignKeyless(s, signIdentity)...), other)...)
}

// TestPushSignsWithKey signs with a key cosign made (an encrypted cosign
// key, COSIGN_PASSWORD) and a timestamp, and checks what can never work:
// a wrong password and a missing key are one line, exit 2, with no
// password in it and nothing pushed.
func TestPushSignsWithKey(t *testing.T) {
	requireE2E(t, "git", "docker-registry")
	s := sigstoretest.Lease(t)
	sigstoretest.Need(t, "cosign")
	dir := must(t, pushSample)
	r := registrytest.New(t, registrytest.Options{})
	repo := r.Host + "/keyed/hello"
	const password = "key-pa55-e2e-Wörd"
	keys := t.TempDir()
	if out, err := sigstoretest.Cosign(t, []string{"COSIGN_PASSWORD=" + password}, "generate-key-pair", "--output-key-prefix", filepath.Join(keys, "cosign")); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	key, pub := filepath.Join(keys, "cosign.key"), filepath.Join(keys, "cosign.pub")
	flags := []string{"--to", repo, "--tag", "stable", "--sign", key, "--tsa-url", s.TSAURL, "--rekor-url", "none", "--trusted-root", s.TrustedRootFile}

	for _, c := range []struct {
		name, env string
		args      []string
		want      string
	}{
		{"wrong password", "COSIGN_PASSWORD=not-" + password, flags, "COSIGN_PASSWORD"},
		{"no key file", "COSIGN_PASSWORD=" + password, append(append([]string(nil), flags...), "--sign", filepath.Join(keys, "missing.key")), "missing.key"},
		{"a URL that is none", "COSIGN_PASSWORD=" + password, append(append([]string(nil), flags...), "--tsa-url", "timestamp.example"), "--tsa-url"},
	} {
		res := pushRun(t, dir, []string{c.env}, "", c.args...)
		lines := strings.Split(strings.TrimSpace(res.Stderr), "\n")
		last := lines[len(lines)-1]
		if res.Code != 2 || !strings.Contains(last, c.want) || strings.Contains(res.Stdout+res.Stderr, password) {
			t.Errorf("%s: exit %d, last line %q; want exit 2 naming %s, and never the password\n%s", c.name, res.Code, last, c.want, res.Stderr)
		}
		if tagged(t, r, "keyed/hello", "stable") != "" {
			t.Fatalf("%s: the tag was pushed", c.name)
		}
	}

	// A trusted root without the timestamp authority push uses: the
	// signatures would not verify, so nothing is published or tagged.
	var tr map[string]any
	if err := json.Unmarshal(s.TrustedRoot, &tr); err != nil {
		t.Fatal(err)
	}
	delete(tr, "timestampAuthorities")
	otherRoot := filepath.Join(keys, "other_root.json")
	data, _ := json.Marshal(tr)
	writeFile(t, otherRoot, string(data))
	bad := pushRun(t, dir, []string{"COSIGN_PASSWORD=" + password}, "", append(append([]string(nil), flags...), "--trusted-root", otherRoot)...)
	if bad.Code != 1 || !strings.Contains(bad.Stderr, "--trusted-root") || tagged(t, r, "keyed/hello", "stable") != "" {
		t.Errorf("a signature the trusted root refuses: exit %d, tag %q\n%s", bad.Code, tagged(t, r, "keyed/hello", "stable"), bad.Stderr)
	}

	res := pushOK(t, dir, []string{"COSIGN_PASSWORD=" + password}, flags...)
	if strings.Contains(res.Stdout+res.Stderr+res.Summary, password) {
		t.Error("push printed the key's password")
	}
	index, platforms := manifestsOf(t, dir)
	withKey := []string{"--key", pub, "--insecure-ignore-tlog", "--use-signed-timestamps", "--trusted-root", s.TrustedRootFile}
	for _, d := range append([]string{index}, platforms...) {
		cosignOK(t, append(append([]string{"verify"}, withKey...), repo+"@"+d)...)
		cosignOK(t, append(append([]string{"verify-attestation", "--type", "spdxjson"}, withKey...), repo+"@"+d)...)
	}
	cosignOK(t, append(append([]string{"verify-attestation", "--type", "slsaprovenance1"}, withKey...), repo+"@"+index)...)

	// Another key: refused.
	if out, err := sigstoretest.Cosign(t, []string{"COSIGN_PASSWORD="}, "generate-key-pair", "--output-key-prefix", filepath.Join(keys, "other")); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	cosignRefuses(t, "another key", "verify", "--key", filepath.Join(keys, "other.pub"), "--insecure-ignore-tlog", repo+"@"+index)
}

// TestSignImagePushedByGGCR runs slipway sign through the dispatcher on an
// index that go-containerregistry pushed, keyless with a token from a
// file, with a custom predicate: cosign verifies the image (index and
// manifests) and the attestation.
func TestSignImagePushedByGGCR(t *testing.T) {
	requireE2E(t, "git", "docker-registry")
	s := sigstoretest.Lease(t)
	sigstoretest.Need(t, "cosign")
	bin := must(t, slipwayBin)
	r := registrytest.New(t, registrytest.Options{})
	ref := pushRandomIndex(t, r, "ext/app")
	work := t.TempDir()
	tok, err := s.GitHubToken(signJob)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(work, "token"), tok)
	const predicateType = "https://example.com/attestations/test-report/v1"
	writeFile(t, filepath.Join(work, "report.json"), `{"passed": 42, "failed": 0}`)
	env := toolEnv(t)

	// By tag: refused, one line, exit 2.
	out, err := run(t, work, env, filepath.Join(bin, "slipway"), "sign", r.Host+"/ext/app:latest", "--sign", "keyless", "--identity-token", "token")
	if exitStatus(err) != "exit status 2" || !strings.Contains(out.Stderr, "by digest") {
		t.Errorf("slipway sign by tag: %v\n%s", err, out.Stderr)
	}

	args := append([]string{"sign", ref, "--sign", "keyless", "--identity-token", "token",
		"--attest", "report.json", "--type", predicateType}, keylessFlags(s)...)
	out, err = run(t, work, env, filepath.Join(bin, "slipway"), args...)
	if err != nil {
		t.Fatalf("slipway sign: %v\n%s%s", err, out.Stdout, out.Stderr)
	}
	if strings.Contains(out.Stdout+out.Stderr, tok) {
		t.Error("slipway sign printed the OIDC token")
	}
	d, err := name.NewDigest(ref)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(d, pushOpts(r, registrytest.Auth{})...)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	refs := []string{ref}
	for _, m := range im.Manifests {
		refs = append(refs, d.Context().Digest(m.Digest.String()).String())
	}
	for _, x := range refs {
		cosignOK(t, append(append([]string{"verify"}, cosignKeyless(s, signIdentity)...), x)...)
		cosignOK(t, append(append([]string{"verify-attestation", "--type", predicateType}, cosignKeyless(s, signIdentity)...), x)...)
	}
	if n := strings.Count(out.Stdout, "signed "); n != 2*len(refs) {
		t.Errorf("slipway sign listed %d bundles, want %d:\n%s", n, 2*len(refs), out.Stdout)
	}
}

// pushRandomIndex pushes a random two-platform index with ggcr, tagged
// latest, and returns it by digest.
func pushRandomIndex(t *testing.T, r *registrytest.Registry, repo string) string {
	t.Helper()
	return r.Host + "/" + repo + "@" + promoteRandom(t, r, repo, "latest")
}

// moveBundles copies every signature bundle attached to repo@from onto
// the image other, as an attacker with push access to the repository
// would, bypassing sign.Publish's check of the subject.
func moveBundles(t *testing.T, r *registrytest.Registry, repo, from, other string) {
	t.Helper()
	ctx := context.Background()
	client, err := registry.New(registry.Options{})
	if err != nil {
		t.Fatal(err)
	}
	src, err := name.NewRepository(repo)
	if err != nil {
		t.Fatal(err)
	}
	od, err := name.NewDigest(other)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := client.Dial(ctx, src, registry.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dc, err := client.Dial(ctx, od.Context(), registry.DialOptions{Push: true})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := v1.NewHash(from)
	refs, err := sc.Referrers(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	raw, mt, _, err := dc.Manifest(ctx, od.DigestStr())
	if err != nil {
		t.Fatal(err)
	}
	oh, _ := v1.NewHash(od.DigestStr())
	subject := v1.Descriptor{MediaType: mt, Digest: oh, Size: int64(len(raw))}
	moved := 0
	for _, ref := range refs {
		if ref.ArtifactType != sign.BundleMediaType {
			continue
		}
		art, _, _, err := sc.Manifest(ctx, ref.Digest.String())
		if err != nil {
			t.Fatal(err)
		}
		m, err := v1.ParseManifest(bytes.NewReader(art))
		if err != nil {
			t.Fatal(err)
		}
		bundle, err := sc.Blob(ctx, m.Layers[0].Digest, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dc.Attach(ctx, subject, registry.Artifact{Data: bundle, MediaType: sign.BundleMediaType, ArtifactType: sign.BundleMediaType, Annotations: m.Annotations}); err != nil {
			t.Fatal(err)
		}
		moved++
	}
	if moved == 0 {
		t.Fatalf("no bundle refers to %s@%s", repo, from)
	}
}

// TestPushActionSignsKeyless runs the push action under act with the
// keyless inputs pointing at the local Sigstore and the runner's token
// variables as GitHub sets them for id-token: write; cosign verifies what
// it pushed, and nothing the step printed shows the request token.
func TestPushActionSignsKeyless(t *testing.T) {
	requireE2E(t, "act", "git", "rsync", "go", "docker-registry")
	s := sigstoretest.Lease(t)
	sigstoretest.Need(t, "cosign")
	must(t, slipwayBin)
	r := registrytest.New(t, registrytest.Options{})
	wf := sampleWorkflow("push", "", `      - id: push
        uses: ./actions/push
        with:
          to: `+r.Host+`/act/hello
          tags: type=raw,value=stable
          working-directory: `+sampleApp+`
          fulcio-url: `+s.FulcioURL+`
          tsa-url: `+s.TSAURL+`
          rekor-url: `+s.RekorURL+`
          rekor-api: 2
          trusted-root: ${{ env.SLIPWAY_E2E_ROOT }}
      - name: Hand the outputs to the test
        env:
          DIGEST: ${{ steps.push.outputs.digest }}
          SIGNER: ${{ steps.push.outputs.signer }}
          SIGNED: ${{ steps.push.outputs.signed }}
        run: |
          printf '%s' "$DIGEST" > "$SLIPWAY_E2E_OUT/digest"
          printf '%s' "$SIGNER" > "$SLIPWAY_E2E_OUT/signer"
          printf '%s' "$SIGNED" > "$SLIPWAY_E2E_OUT/signed"
`)
	repo, _ := newRepo(t, map[string]string{".github/workflows/push.yml": wf})
	out := t.TempDir()
	url, tok := s.Issuer.Runner(signJob)
	o, err := run(t, repo, toolEnv(t), "act", "push",
		"-W", filepath.Join(".github", "workflows", "push.yml"),
		"-P", "ubuntu-latest=-self-hosted", "--json",
		"--action-cache-path", filepath.Join(t.TempDir(), "act"), "--no-cache-server",
		"--env", "SLIPWAY_E2E_OUT="+out, "--env", "SLIPWAY_E2E_ROOT="+s.TrustedRootFile,
		"--env", "ACTIONS_ID_TOKEN_REQUEST_URL="+url, "--env", "ACTIONS_ID_TOKEN_REQUEST_TOKEN="+tok,
	)
	logOutput(t, "act", o)
	if err != nil {
		t.Fatalf("act: %v", err)
	}
	log := parseActLog(t, o.Stdout)
	if got := log.jobResult(); got != "success" {
		t.Fatalf("job result = %q, want success", got)
	}
	for _, e := range log {
		if e.in("push") && e.Command != "add-mask" && strings.Contains(e.Msg, tok) {
			t.Errorf("the push step printed the request token: %q", e.Msg)
		}
	}
	if got := readFile(t, filepath.Join(out, "signer")); !strings.HasPrefix(got, signJob.Subject()) {
		t.Errorf("signer output %q, want %s", got, signJob.Subject())
	}
	if got := readFile(t, filepath.Join(out, "signed")); !strings.Contains(got, sign.SLSAProvenancePredicate) {
		t.Errorf("signed output %q lacks the provenance", got)
	}
	ref := r.Host + "/act/hello@" + readFile(t, filepath.Join(out, "digest"))
	cosignOK(t, append(append([]string{"verify"}, cosignKeyless(s, signIdentity)...), ref)...)
	cosignOK(t, append(append([]string{"verify-attestation", "--type", "slsaprovenance1"}, cosignKeyless(s, signIdentity)...), ref)...)
}
