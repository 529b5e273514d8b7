package promote

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slipwayci/slipway/internal/provenance"
	"github.com/slipwayci/slipway/internal/registry"
	"github.com/slipwayci/slipway/internal/sign"
	"github.com/slipwayci/slipway/internal/trust"
)

const trustedConfig = `
trust:
  keys: [ci.pub]
environments:
  staging:
    repository: HOST/staging/app
    tags: [staging]
  production:
    repository: HOST/prod/app
    tags: [production]
    gates:
      from: staging
      scan: {maxSeverity: medium}
      sbom: true
`

// newTrustedFixture is the fixture with a trust: block trusting one key,
// whose signer it returns.
func newTrustedFixture(t *testing.T, config string) (*fixture, *sign.Signer) {
	f, s, _ := newTrustedFixtureIn(t, config)
	return f, s
}

// newTrustedFixtureIn also returns the directory of the config file.
func newTrustedFixtureIn(t *testing.T, config string) (*fixture, *sign.Signer, string) {
	t.Helper()
	f := newFixture(t)
	dir := t.TempDir()
	priv := writePublicKey(t, filepath.Join(dir, "ci.pub"))
	path := filepath.Join(dir, ".slipway.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(config, "HOST", f.host)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	f.cfg = cfg
	return f, keySigner(t, priv), dir
}

func keySigner(t *testing.T, priv *ecdsa.PrivateKey) *sign.Signer {
	t.Helper()
	k, err := sign.NewKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sign.New(context.Background(), sign.Options{Key: k})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// attachBundle signs statement and attaches the bundle to d as cosign
// v3 does, without checking that the statement names d (as an attacker
// would not).
func (f *fixture) attachBundle(t *testing.T, d name.Digest, s *sign.Signer, statement []byte) {
	t.Helper()
	ctx := context.Background()
	b, err := s.Sign(ctx, statement)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sign.BundleStatement(b)
	if err != nil {
		t.Fatal(err)
	}
	r, err := fastRegistry(nil).Dial(ctx, d.Context(), registry.DialOptions{Push: true, Settle: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := v1.NewHash(d.DigestStr())
	if _, err := r.Attach(ctx, v1.Descriptor{MediaType: types.OCIImageIndex, Digest: h}, registry.Artifact{
		Data: b, MediaType: sign.BundleMediaType, ArtifactType: sign.BundleMediaType,
		Annotations: map[string]string{sign.AnnotationContent: "dsse-envelope", sign.AnnotationPredicateType: st.PredicateType},
	}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) signedScan(t *testing.T, d name.Digest, s *sign.Signer, pass bool, high int, finished time.Time) {
	t.Helper()
	f.attachBundle(t, d, s, scanStatementJSON(append([]string{d.DigestStr()}, f.platforms[d.DigestStr()]...), pass, high, finished))
}

func (f *fixture) signedSBOM(t *testing.T, d name.Digest, s *sign.Signer) {
	t.Helper()
	h, _ := v1.NewHash(d.DigestStr())
	st, err := sign.NewStatement(sign.SPDXPredicate, map[string]any{"spdxVersion": "SPDX-2.3", "name": "app"}, sign.DigestSubject("app", h))
	if err != nil {
		t.Fatal(err)
	}
	f.attachBundle(t, d, s, st)
}

// TestTrustedGatesRefuseForgedEvidence writes each attack on the scan
// and sbom gates first: unsigned, signed by a key not trusted, signed
// for another digest, dated by its payload in the future. Each is
// refused with its reason in the gate's detail; then the honest evidence
// passes and only it is named.
func TestTrustedGatesRefuseForgedEvidence(t *testing.T) {
	f, ci := newTrustedFixture(t, trustedConfig)
	ctx := context.Background()
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	attacker := keySigner(t, priv)

	img := f.publish(t, "staging", true) // unsigned SBOMs
	if _, err := Promote(ctx, f.signedOptions("staging", img, ci)); err != nil {
		t.Fatal(err)
	}
	other := f.publish(t, "staging", false)

	f.attachScan(t, img, true, 0, now)                                         // unsigned
	f.signedScan(t, img, attacker, true, 0, now)                               // untrusted key
	f.signedScan(t, other, ci, true, 0, now)                                   // about another digest…
	moveBundle(t, f, other, img)                                               // …moved onto ours
	f.signedScan(t, img, ci, false, 3, now.Add(-time.Hour))                    // the real, failing scan
	f.attachScan(t, img, true, 0, time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)) // "newest" by its own word

	refusals := func() map[string]string {
		t.Helper()
		o := f.options("production", img)
		res, err := Promote(ctx, o)
		var refused *Refused
		if !errors.As(err, &refused) {
			t.Fatalf("promotion of forged evidence: err = %v, want a refusal", err)
		}
		got := map[string]string{}
		for _, v := range res.Verdicts {
			if !v.Pass {
				got[v.Gate] = v.Detail
			}
		}
		return got
	}
	got := refusals()
	for _, want := range []string{`a scan's verdict is "fail"`, "signed by key sha256:", " unsigned", "signed by a key, not trusted", "about another digest"} {
		if !strings.Contains(got["scan"], want) {
			t.Errorf("scan gate: %q, want it to say %q", got["scan"], want)
		}
	}
	if !strings.HasPrefix(got["sbom"], "no SBOM attached") || strings.Count(got["sbom"], "unsigned") != 2 {
		t.Errorf("sbom gate: %q, want no SBOM and both unsigned ones ignored", got["sbom"])
	}
	if tag := f.tagged(t, "production", "production"); tag != "" {
		t.Fatalf("refused promotions tagged production: %s", tag)
	}

	// A passing scan signed later does not outrank the failing one: with a
	// key alone nothing dates either.
	f.signedScan(t, img, ci, true, 0, now)
	f.signedSBOM(t, img, ci)
	if got := refusals(); len(got) != 1 || !strings.HasPrefix(got["scan"], `a scan's verdict is "fail"`) {
		t.Errorf("undated scans: refusals %v, want the failing scan to decide", got)
	}

	// The honest path: signed evidence only, on an image in staging.
	honest := f.publish(t, "staging", false)
	if _, err := Promote(ctx, f.signedOptions("staging", honest, ci)); err != nil {
		t.Fatal(err)
	}
	f.signedScan(t, honest, ci, true, 0, now)
	f.signedSBOM(t, honest, ci)
	res, err := Promote(ctx, f.options("production", honest))
	if err != nil {
		t.Fatalf("honest promotion: %v (%+v)", err, res.Verdicts)
	}
	for _, v := range res.Verdicts {
		if strings.Contains(v.Detail, "ignored") {
			t.Errorf("honest %s verdict ignores something: %s", v.Gate, v.Detail)
		}
	}
	if tag := f.tagged(t, "production", "production"); tag != honest.DigestStr() {
		t.Fatalf("production tag = %s, want %s", tag, honest.DigestStr())
	}
}

// signedOptions are the options of a promotion whose record s signs.
func (f *fixture) signedOptions(to string, d name.Digest, s *sign.Signer) Options {
	o := f.options(to, d)
	o.Signer = s
	return o
}

// An unsigned record in staging's history (anyone who can push there can
// write one) does not satisfy production's from: staging under trust:; a
// record the promotion signed does.
func TestFromGateNeedsSignedRecords(t *testing.T) {
	f, ci := newTrustedFixture(t, trustedConfig)
	ctx := context.Background()
	forged := f.publish(t, "staging", false)
	if _, err := Promote(ctx, f.options("staging", forged)); err != nil { // as an attacker would append it
		t.Fatal(err)
	}
	f.signedScan(t, forged, ci, true, 0, now)
	f.signedSBOM(t, forged, ci)
	_, err := Promote(ctx, f.options("production", forged))
	var refused *Refused
	if !errors.As(err, &refused) || len(refused.Failing) != 1 || refused.Failing[0].Gate != "from" ||
		!strings.Contains(refused.Failing[0].Detail, "a record not signed by a trusted identity") {
		t.Fatalf("err = %v (%+v), want only the from gate to refuse the unsigned record", err, refused)
	}
	if tag := f.tagged(t, "production", "production"); tag != "" {
		t.Fatalf("production tagged: %s", tag)
	}
	// The same digest history, signed by the promotion: it counts.
	signed := f.publish(t, "staging", false)
	if _, err := Promote(ctx, f.signedOptions("staging", signed, ci)); err != nil {
		t.Fatal(err)
	}
	f.signedScan(t, signed, ci, true, 0, now)
	f.signedSBOM(t, signed, ci)
	res, err := Promote(ctx, f.options("production", signed))
	if err != nil {
		t.Fatalf("signed record: %v (%+v)", err, res.Verdicts)
	}
}

// Under trust:, a rollback returns only to a promotion whose record a
// trusted identity signed: a record forged into the history is no place
// to go back to. Its own record is signed too.
func TestRollbackNeedsASignedRecord(t *testing.T) {
	f, ci := newTrustedFixture(t, trustedConfig)
	ctx := context.Background()
	forged, good, newer := f.publish(t, "staging", false), f.publish(t, "staging", false), f.publish(t, "staging", false)
	if _, err := Promote(ctx, f.options("staging", forged)); err != nil {
		t.Fatal(err)
	}
	for _, d := range []name.Digest{good, newer} {
		if _, err := Promote(ctx, f.signedOptions("staging", d, ci)); err != nil {
			t.Fatal(err)
		}
	}
	o := f.signedOptions("staging", name.Digest{}, ci)
	res, err := Rollback(ctx, o)
	if err != nil || res.Digest.String() != good.DigestStr() {
		t.Fatalf("rollback to the signed record: %v, %+v", err, res)
	}
	// The rollback's own record is signed: the from gate downstream and
	// the next rollback believe it.
	h := f.history(t, "staging")
	signed, err := h.SignedRecords(ctx, res.Entry.Digest, mustVerifier(t, f), now)
	if err != nil || len(signed) == 0 {
		t.Fatalf("the rollback record is not signed: %v %v", signed, err)
	}
	// Back once more would reach the forged record: refused.
	_, err = Rollback(ctx, o)
	var refused *Refused
	if !errors.As(err, &refused) || !strings.Contains(refused.Failing[0].Detail, "is not signed by a trusted identity") {
		t.Fatalf("rollback to the forged record: %v", err)
	}
	if tag := f.tagged(t, "staging", "staging"); tag != good.DigestStr() {
		t.Errorf("staging = %s after the refused rollback, want %s", tag, good.DigestStr())
	}
}

func mustVerifier(t *testing.T, f *fixture) *trust.Verifier {
	t.Helper()
	v, err := f.cfg.Trust.Verifier()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// moveBundle attaches to "to" a copy of every bundle attached to "from".
func moveBundle(t *testing.T, f *fixture, from, to name.Digest) {
	t.Helper()
	ctx := context.Background()
	r, err := fastRegistry(nil).Dial(ctx, from.Context(), registry.DialOptions{Push: true, Settle: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	fh, _ := v1.NewHash(from.DigestStr())
	th, _ := v1.NewHash(to.DigestStr())
	ev := &registryEvidence{src: r, manifests: []v1.Hash{fh}, now: time.Now}
	refs, err := ev.referrers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range refs {
		if d.ArtifactType != sign.BundleMediaType {
			continue
		}
		data, err := ev.statement(ctx, d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Attach(ctx, v1.Descriptor{MediaType: types.OCIImageIndex, Digest: th}, registry.Artifact{
			Data: data, MediaType: sign.BundleMediaType, ArtifactType: sign.BundleMediaType, Annotations: d.Annotations,
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// A digest named in another repository than the from environment's is
// read from the from environment's: its evidence there counts, not what
// the other repository's owner attached. Not there, it is refused.
func TestEvidenceIsReadFromTheFromEnvironment(t *testing.T) {
	f, ci := newTrustedFixture(t, trustedConfig)
	ctx := context.Background()
	img := f.publish(t, "production", false)
	_, err := Promote(ctx, f.options("production", img))
	var refused *Refused
	if !errors.As(err, &refused) || len(refused.Failing) != 1 || !strings.Contains(refused.Failing[0].Detail, "it is not in staging's repository") {
		t.Fatalf("err = %v, want the from gate to refuse a digest staging does not hold", err)
	}

	// The same digest in staging, and elsewhere with signed evidence that
	// staging's copy lacks: elsewhere's does not count.
	staged := f.publish(t, "staging", false)
	if _, err := Promote(ctx, f.signedOptions("staging", staged, ci)); err != nil {
		t.Fatal(err)
	}
	elsewhere, _ := name.NewDigest(strings.Replace(staged.String(), "/staging/app@", "/elsewhere/app@", 1))
	o := f.options("staging", staged)
	o.To = &Environment{Name: "elsewhere", Repository: elsewhere.Context().String(), Tags: []string{"x"}}
	if _, err := Promote(ctx, o); err != nil {
		t.Fatal(err)
	}
	f.platforms[elsewhere.DigestStr()] = f.platforms[staged.DigestStr()]
	f.signedScan(t, elsewhere, ci, true, 0, now)
	f.signedSBOM(t, elsewhere, ci)
	res, err := Promote(ctx, f.options("production", elsewhere))
	if !errors.As(err, &refused) || res.Source != staged.String() {
		t.Fatalf("err = %v, source %s; want a refusal reading %s", err, res.Source, staged)
	}
}

const provenanceConfig = `
trust:
  keys: [ci.pub]
environments:
  staging:
    repository: HOST/staging/app
    tags: [staging]
    gates:
      provenance:
        repository: acme/app
        ref: refs/(heads/main|tags/v.*)
        builder: https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main
`

func (f *fixture) signedProvenance(t *testing.T, d name.Digest, s *sign.Signer, repo, ref string, platforms bool) {
	t.Helper()
	h, _ := v1.NewHash(d.DigestStr())
	subjects := []sign.Subject{sign.DigestSubject("app", h)}
	if platforms {
		for _, p := range f.platforms[d.DigestStr()] {
			ph, _ := v1.NewHash(p)
			subjects = append(subjects, sign.DigestSubject("app", ph))
		}
	}
	var p provenance.Provenance
	p.BuildDefinition.BuildType = provenance.BuildType
	p.BuildDefinition.ExternalParameters.Repository = "https://github.com/" + repo
	p.BuildDefinition.ExternalParameters.Ref = ref
	p.RunDetails.Builder.ID = "https://github.com/" + repo + "/.github/workflows/release.yml@" + ref
	st, err := sign.NewStatement(sign.SLSAProvenancePredicate, p, subjects...)
	if err != nil {
		t.Fatal(err)
	}
	f.attachBundle(t, d, s, st)
}

func TestProvenanceGate(t *testing.T) {
	f, ci := newTrustedFixture(t, provenanceConfig)
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		attach    func(d name.Digest)
		pass      bool
		wantInAll string
	}{
		{"none", func(name.Digest) {}, false, "no signed SLSA provenance"},
		{"another repository", func(d name.Digest) { f.signedProvenance(t, d, ci, "evil/app", "refs/heads/main", true) },
			false, "is from https://github.com/evil/app, not https://github.com/acme/app"},
		{"a branch the pattern leaves out", func(d name.Digest) { f.signedProvenance(t, d, ci, "acme/app", "refs/heads/main-evil", true) },
			false, "built ref refs/heads/main-evil, which does not match"},
		{"the index only", func(d name.Digest) { f.signedProvenance(t, d, ci, "acme/app", "refs/heads/main", false) },
			false, "does not name sha256:"},
		{"unsigned", func(d name.Digest) {
			r, _ := fastRegistry(nil).Dial(ctx, d.Context(), registry.DialOptions{Push: true, Settle: time.Millisecond})
			h, _ := v1.NewHash(d.DigestStr())
			st, _ := sign.NewStatement(sign.SLSAProvenancePredicate, map[string]any{}, sign.DigestSubject("app", h))
			if _, err := r.Attach(ctx, v1.Descriptor{MediaType: types.OCIImageIndex, Digest: h}, registry.Artifact{Data: st, MediaType: registry.MediaTypeInToto,
				Annotations: map[string]string{registry.AnnotationPredicateType: sign.SLSAProvenancePredicate}}); err != nil {
				t.Fatal(err)
			}
		}, false, "ignored: sha256:"},
		{"honest", func(d name.Digest) { f.signedProvenance(t, d, ci, "acme/app", "refs/heads/main", true) }, true, "built from https://github.com/acme/app at refs/heads/main"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := f.publish(t, "staging", false)
			tc.attach(d)
			o := f.options("staging", d)
			o.DryRun = true
			res, err := Promote(ctx, o)
			if tc.pass != (err == nil) {
				t.Fatalf("err = %v, want pass=%v", err, tc.pass)
			}
			if len(res.Verdicts) != 1 || !strings.Contains(res.Verdicts[0].Detail, tc.wantInAll) {
				t.Fatalf("verdicts %+v, want one saying %q", res.Verdicts, tc.wantInAll)
			}
		})
	}
}

func TestProvenanceGateNeedsTrust(t *testing.T) {
	_, err := ParseConfig([]byte("environments:\n  s:\n    repository: r.test/s\n    tags: [s]\n    gates: {provenance: {repository: acme/app}}\n"))
	if err == nil || !strings.Contains(err.Error(), "gates.provenance needs trust:") {
		t.Fatalf("err = %v", err)
	}
	_, err = ParseConfig([]byte("trust: {keys: [k]}\nenvironments:\n  s:\n    repository: r.test/s\n    tags: [s]\n    gates:\n      provenance:\n        repository: acme/app\n        ref: 'refs/(heads'\n"))
	if err == nil || !strings.Contains(err.Error(), "line 9: gates.provenance.ref") {
		t.Fatalf("err = %v", err)
	}
}

// Without trust:, a statement dated in the future by its own finishedOn
// does not outrank a real failing scan: it is set aside, and said so.
func TestUnsignedScanFromTheFutureIsIgnored(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	img := f.publish(t, "staging", true)
	if _, err := Promote(ctx, f.options("staging", img)); err != nil {
		t.Fatal(err)
	}
	f.attachScan(t, img, false, 3, now.Add(-time.Hour))
	f.attachScan(t, img, true, 0, time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC))
	f.clock.Set(now.Add(2 * time.Hour))
	o := f.options("production", img)
	o.DryRun = true
	res, err := Promote(ctx, o)
	var refused *Refused
	if !errors.As(err, &refused) {
		t.Fatalf("err = %v, want a refusal", err)
	}
	for _, v := range res.Verdicts {
		if v.Gate == "scan" && (!strings.HasPrefix(v.Detail, `the newest scan's verdict is "fail"`) || !strings.Contains(v.Detail, "dated in the future (2099-01-01T00:00:00Z)")) {
			t.Errorf("scan verdict: %s", v.Detail)
		}
	}
}

// slipway history marks, under trust:, the records no trusted identity
// signed, in the table and in --json.
func TestHistoryMarksUnsignedRecords(t *testing.T) {
	f, ci, dir := newTrustedFixtureIn(t, trustedConfig)
	ctx := context.Background()
	forged, good := f.publish(t, "staging", false), f.publish(t, "staging", false)
	if _, err := Promote(ctx, f.options("staging", forged)); err != nil {
		t.Fatal(err)
	}
	if _, err := Promote(ctx, f.signedOptions("staging", good, ci)); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runCommand(t, f, dir, nil, "", true, "staging")
	if code != 0 || !strings.HasSuffix(stdout, "not signed by a trusted identity (no evidence for from, soak or --rollback): #1\n") {
		t.Errorf("history: exit %d\n%s%s", code, stdout, stderr)
	}
	stdout, _, _ = runCommand(t, f, dir, nil, "", true, "staging", "--json")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"signed":false`) || !strings.Contains(lines[1], `"signed":true`) {
		t.Errorf("history --json:\n%s", stdout)
	}
}

// Two scans signed in the same second: the failing one decides, whatever
// order they are listed in.
func TestScanGateTieFavoursTheWorse(t *testing.T) {
	g := &ScanGate{MaxSeverity: "high"}
	pass := Scan{Time: now, Verdict: "pass", MaxSeverity: "low", Record: "pass"}
	fail := Scan{Time: now, Verdict: "fail", MaxSeverity: "critical", Record: "fail"}
	for _, scans := range [][]Scan{{pass, fail}, {fail, pass}} {
		if v := scanGate(g, scans, now); v.Pass || v.Evidence != "fail" {
			t.Errorf("scans %v: %+v, want the failing scan to decide", scans, v)
		}
	}
}

// TestPromotionCopiesOnlyVerifiedReferrers is the attack of forged
// evidence riding along: referrers an attacker attached in staging must
// not be copied into production, where the next environment would find
// them. Under trust: only bundles that verify travel on.
func TestPromotionCopiesOnlyVerifiedReferrers(t *testing.T) {
	f, ci := newTrustedFixture(t, trustedConfig)
	ctx := context.Background()
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	attacker := keySigner(t, priv)

	img := f.publish(t, "staging", true) // with unsigned SBOMs
	if _, err := Promote(ctx, f.signedOptions("staging", img, ci)); err != nil {
		t.Fatal(err)
	}
	f.signedScan(t, img, ci, true, 0, now)
	f.signedSBOM(t, img, ci)
	f.attachScan(t, img, true, 0, now)           // unsigned
	f.signedScan(t, img, attacker, true, 0, now) // untrusted key
	res, err := Promote(ctx, f.options("production", img))
	if err != nil {
		t.Fatalf("promotion: %v", err)
	}
	if res.Copy == nil || res.Copy.Stats.LeftBehind == 0 {
		t.Fatalf("copy = %+v, want unverified referrers left behind", res.Copy)
	}

	r, err := fastRegistry(nil).Dial(ctx, f.repo(t, "production"), registry.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := v1.NewHash(img.DigestStr())
	subjects := append([]v1.Hash{h}, hashes(t, f.platforms[img.DigestStr()])...)
	bundles := 0
	for _, s := range subjects {
		refs, err := r.Referrers(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range refs {
			if res.Entry != nil && d.Digest == res.Entry.Ref {
				continue // production's own record of this promotion
			}
			if d.ArtifactType != sign.BundleMediaType {
				t.Errorf("production has a %s referrer %s of %s; only verified bundles should be copied", d.ArtifactType, d.Digest, s)
				continue
			}
			bundles++
		}
	}
	if bundles == 0 {
		t.Error("no signed evidence was copied into production")
	}
}

func hashes(t *testing.T, ds []string) []v1.Hash {
	t.Helper()
	var out []v1.Hash
	for _, d := range ds {
		h, err := v1.NewHash(d)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, h)
	}
	return out
}

// A rollback record nobody trusted signed (anyone who can push to staging
// can append one) undoes nothing under trust:. The attack: staging's
// signed promotions Z, A, B; an unsigned rollback of B. Production's
// from: staging must still count B's signed promotion, and the operator's
// next signed rollback must return to A, undoing B, not go past A to Z
// as if B were already undone.
func TestForgedRollbackUndoesNothing(t *testing.T) {
	f, ci := newTrustedFixture(t, trustedConfig)
	ctx := context.Background()
	z, a, b := f.publish(t, "staging", false), f.publish(t, "staging", false), f.publish(t, "staging", false)
	for _, d := range []name.Digest{z, a, b} {
		if _, err := Promote(ctx, f.signedOptions("staging", d, ci)); err != nil {
			t.Fatal(err)
		}
	}
	// The forged rollback: slipway without a signer, as the attacker runs it.
	if res, err := Rollback(ctx, f.options("staging", name.Digest{})); err != nil || res.Digest.String() != a.DigestStr() {
		t.Fatalf("writing the unsigned rollback: %v, %+v", err, res)
	}

	f.signedScan(t, b, ci, true, 0, now)
	f.signedSBOM(t, b, ci)
	res, err := Promote(ctx, f.options("production", b))
	if err != nil {
		t.Fatalf("production refused B, whose signed staging promotion only an unsigned rollback undoes: %v (%+v)", err, res)
	}

	res, err = Rollback(ctx, f.signedOptions("staging", name.Digest{}, ci))
	if err != nil {
		t.Fatalf("the signed rollback: %v", err)
	}
	if res.Digest.String() != a.DigestStr() || res.Undone == nil || res.Undone.Digest.String() != b.DigestStr() {
		t.Errorf("the signed rollback went to %s undoing %+v; want A (%s), undoing B (%s)", res.Digest, res.Undone, a.DigestStr(), b.DigestStr())
	}
}
