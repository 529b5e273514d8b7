package promote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	memreg "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slipwayci/slipway/internal/push"
	"github.com/slipwayci/slipway/internal/registry"
)

var fast = registry.Backoff{Retries: 3, Initial: time.Millisecond, Max: 4 * time.Millisecond}

// fastRegistry is a client that retries at once, through rt (nil: the
// default transport).
func fastRegistry(rt http.RoundTripper) *registry.Client {
	c, err := registry.New(registry.Options{Backoff: fast, Transport: rt})
	if err != nil {
		panic(err) // only a CA file can fail it
	}
	return c
}

// fakeClock is a settable Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// fixture is an in-memory registry and a config naming repositories on it.
type fixture struct {
	host  string
	cfg   *Config
	clock *fakeClock
	// platforms are the platform manifests of each index published.
	platforms map[string][]string
}

const fixtureConfig = `
environments:
  dev:
    repository: HOST/dev/app
    tags: [dev]
  staging:
    repository: HOST/staging/app
    tags: [staging, "sha-{{.ShortDigest}}"]
  production:
    repository: HOST/prod/app
    tags: [production]
    gates:
      from: staging
      soak: 1h
      scan: {maxSeverity: medium, maxAge: 2d}
      sbom: true
`

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := httptest.NewServer(memreg.New(memreg.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	cfg, err := ParseConfig([]byte(strings.ReplaceAll(fixtureConfig, "HOST", host)))
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{host: host, cfg: cfg, clock: &fakeClock{t: now}, platforms: map[string][]string{}}
}

// publish pushes a random two-platform index into env's repository, with
// an SPDX SBOM on each platform if sbom, and returns its digest.
func (f *fixture) publish(t *testing.T, env string, sbom bool) name.Digest {
	t.Helper()
	dir := t.TempDir()
	idx, err := random.Index(512, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	p, err := layout.Write(filepath.Join(dir, "image"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(idx); err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	im, _ := idx.IndexManifest()
	for _, m := range im.Manifests {
		f.platforms[d.String()] = append(f.platforms[d.String()], m.Digest.String())
	}
	var atts []push.Attachment
	if sbom {
		for i, m := range im.Manifests {
			file := filepath.Join(dir, fmt.Sprintf("%d.spdx.json", i))
			if err := os.WriteFile(file, []byte(`{"spdxVersion":"SPDX-2.3"}`), 0o644); err != nil {
				t.Fatal(err)
			}
			atts = append(atts, push.Attachment{Path: file, MediaType: registry.MediaTypeSPDX, Subject: m.Digest})
		}
	}
	repo := f.repo(t, env)
	if _, err := push.Push(context.Background(), push.Options{Layout: filepath.Join(dir, "image"), Digest: d, To: []name.Repository{repo}, Attachments: atts, Registry: fastRegistry(nil)}); err != nil {
		t.Fatal(err)
	}
	return repo.Digest(d.String())
}

func (f *fixture) repo(t *testing.T, env string) name.Repository {
	t.Helper()
	r, err := name.NewRepository(f.cfg.Environments[env].Repository)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// scanStatementJSON is a statement as slipway scan writes it, about the
// digests given: the index and the platform manifests scanned.
func scanStatementJSON(digests []string, pass bool, high int, finished time.Time) []byte {
	var subjects []string
	for _, d := range digests {
		alg, hex, _ := strings.Cut(d, ":")
		subjects = append(subjects, fmt.Sprintf(`{"name":"app","digest":{%q:%q}}`, alg, hex))
	}
	return fmt.Appendf(nil, `{"_type":%q,"subject":[%s],"predicateType":%q,
"predicate":{"counts":{"critical":0,"high":%d,"medium":1,"low":0,"unknown":0,"waived":2},"verdict":{"pass":%v},"finishedOn":%q}}`,
		StatementType, strings.Join(subjects, ","), ScanPredicateType, high, pass, finished.UTC().Format(time.RFC3339))
}

// attachScan attaches a scan statement of every platform to the image d.
func (f *fixture) attachScan(t *testing.T, d name.Digest, pass bool, high int, finished time.Time) {
	t.Helper()
	f.attachScanOf(t, d, f.platforms[d.DigestStr()], pass, high, finished)
}

// attachScanOf attaches a scan statement of the platform manifests given
// to the index d.
func (f *fixture) attachScanOf(t *testing.T, d name.Digest, platforms []string, pass bool, high int, finished time.Time) {
	t.Helper()
	r, err := fastRegistry(nil).Dial(context.Background(), d.Context(), registry.DialOptions{Push: true, Settle: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := v1.NewHash(d.DigestStr())
	_, err = r.Attach(context.Background(), v1.Descriptor{MediaType: types.OCIImageIndex, Digest: h}, registry.Artifact{
		Data: scanStatementJSON(append([]string{d.DigestStr()}, platforms...), pass, high, finished), MediaType: registry.MediaTypeInToto,
		Annotations: map[string]string{registry.AnnotationPredicateType: ScanPredicateType},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) options(to string, src name.Digest) Options {
	return Options{
		Config: f.cfg, To: f.cfg.Environments[to], Source: src, Registry: fastRegistry(nil), Settle: time.Millisecond,
		Eval: EvalOptions{Now: f.clock.Now}, Actor: "tester", RunURL: "https://ci.example/run/1",
	}
}

func (f *fixture) history(t *testing.T, env string) *History {
	t.Helper()
	o := f.options(env, name.Digest{})
	h, err := o.history(context.Background(), f.cfg.Environments[env], false)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// summarize lists a history as "#seq digest what".
func (f *fixture) summarize(t *testing.T, env string, names map[string]string) []string {
	t.Helper()
	h := f.history(t, env)
	entries, err := h.Entries(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		what := "promote"
		if e.Rollback {
			what = "rollback"
		}
		out = append(out, fmt.Sprintf("#%d %s %s", e.Sequence, names[e.Digest.String()], what))
	}
	return out
}

// tagged returns the digest tag names in env's repository, or "".
func (f *fixture) tagged(t *testing.T, env, tag string) string {
	t.Helper()
	r, err := fastRegistry(nil).Dial(context.Background(), f.repo(t, env), registry.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h, ok, err := r.Resolve(context.Background(), tag)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return ""
	}
	return h.String()
}

func TestPromoteRecordsAndRollsBack(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a, b := f.publish(t, "dev", true), f.publish(t, "dev", true)
	names := map[string]string{a.DigestStr(): "A", b.DigestStr(): "B"}

	res, err := Promote(ctx, f.options("staging", a))
	if err != nil {
		t.Fatal(err)
	}
	if res.Entry == nil || res.Entry.Sequence != 1 || res.Copy == nil || res.Copy.Stats.Artifacts != 2 {
		t.Fatalf("first promotion: %+v", res)
	}
	wantTags := []string{"staging", "sha-" + strings.TrimPrefix(a.DigestStr(), "sha256:")[:12]}
	if diff := cmp.Diff(wantTags, res.Tags); diff != "" {
		t.Errorf("tags (-want +got):\n%s", diff)
	}
	for _, tag := range wantTags {
		if got := f.tagged(t, "staging", tag); got != a.DigestStr() {
			t.Errorf("staging:%s = %s, want A", tag, got)
		}
	}
	rec, err := f.history(t, "staging").Record(ctx, res.Entry)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Digest != a.DigestStr() || rec.Source != a.String() || rec.Actor != "tester" || rec.RunURL != "https://ci.example/run/1" || !rec.Time.Equal(now) || rec.Environment != "staging" {
		t.Errorf("record = %+v", rec)
	}

	// Promoting what is there already records nothing.
	again, err := Promote(ctx, f.options("staging", a))
	if err != nil || again.Entry != nil {
		t.Errorf("promoting A again: entry %+v, err %v; want nothing recorded", again.Entry, err)
	}
	f.clock.Set(now.Add(time.Hour))
	if _, err := Promote(ctx, f.options("staging", b)); err != nil {
		t.Fatal(err)
	}
	if got := f.tagged(t, "staging", "staging"); got != b.DigestStr() {
		t.Errorf("staging = %s after promoting B", names[got])
	}

	rb, err := Rollback(ctx, f.options("staging", name.Digest{}))
	if err != nil {
		t.Fatal(err)
	}
	if rb.Digest.String() != a.DigestStr() || rb.Undone == nil || rb.Undone.Digest.String() != b.DigestStr() {
		t.Errorf("rollback went to %s undoing %+v", names[rb.Digest.String()], rb.Undone)
	}
	if got := f.tagged(t, "staging", "staging"); got != a.DigestStr() {
		t.Errorf("staging = %s after the rollback, want A", names[got])
	}
	// A was promoted before B: nothing before A is left to go back to.
	if _, err := Rollback(ctx, f.options("staging", name.Digest{})); err == nil || !strings.Contains(err.Error(), "nothing to roll back to") {
		t.Errorf("second rollback: %v", err)
	}
	want := []string{"#1 A promote", "#2 B promote", "#3 A rollback"}
	if diff := cmp.Diff(want, f.summarize(t, "staging", names)); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
}

func TestGatesReadTheRegistry(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	good := f.publish(t, "staging", true)
	f.attachScan(t, good, true, 0, now.Add(-time.Hour))
	// staging has no gates: in it goes.
	if _, err := Promote(ctx, f.options("staging", good)); err != nil {
		t.Fatal(err)
	}
	noSBOM := f.publish(t, "staging", false)
	f.attachScan(t, noSBOM, true, 0, now)
	if _, err := Promote(ctx, f.options("staging", noSBOM)); err != nil {
		t.Fatal(err)
	}
	failing := f.publish(t, "staging", true)
	f.attachScan(t, failing, false, 3, now)
	notStaged := f.publish(t, "staging", true)
	f.attachScan(t, notStaged, true, 0, now)

	tests := []struct {
		name   string
		digest name.Digest
		at     time.Time
		pass   bool
		gates  map[string]string // gate → detail prefix of those refusing
	}{
		{"short soak", good, now.Add(30 * time.Minute), false, map[string]string{"soak": "in staging for only 30m0s; needs 1h0m0s"}},
		{"soaked", good, now.Add(2 * time.Hour), true, nil},
		{"stale scan", good, now.Add(72 * time.Hour), false, map[string]string{"scan": "the newest scan is 73h0m0s old"}},
		{"no SBOM", noSBOM, now.Add(2 * time.Hour), false, map[string]string{"sbom": "no SBOM attached"}},
		{"never in staging, failing scan", failing, now.Add(2 * time.Hour), false, map[string]string{
			"from": "the digest was never promoted to staging", "soak": "no promotion to staging", "scan": `the newest scan's verdict is "fail"`}},
		{"never in staging", notStaged, now.Add(2 * time.Hour), false, map[string]string{"from": "the digest was never promoted to staging", "soak": "no promotion"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.clock.Set(tt.at)
			o := f.options("production", tt.digest)
			o.DryRun = true
			res, err := Promote(ctx, o)
			var refused *Refused
			if tt.pass != (err == nil) || !tt.pass && !errors.As(err, &refused) {
				t.Fatalf("err = %v, want pass=%v", err, tt.pass)
			}
			got := map[string]string{}
			for _, v := range res.Verdicts {
				if !v.Pass {
					got[v.Gate] = v.Detail
				}
			}
			for g, prefix := range tt.gates {
				if !strings.HasPrefix(got[g], prefix) {
					t.Errorf("gate %s: %q, want %q…", g, got[g], prefix)
				}
			}
			if len(got) != len(tt.gates) {
				t.Errorf("refusing gates %v, want %v", got, tt.gates)
			}
		})
	}
	// The dry runs changed nothing in production.
	if h, err := f.history(t, "production").Head(ctx); err != nil || h != nil {
		t.Errorf("production's head after dry runs: %+v, %v", h, err)
	}

	// For real: the record keeps every verdict and its evidence.
	f.clock.Set(now.Add(2 * time.Hour))
	res, err := Promote(ctx, f.options("production", good))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := f.history(t, "production").Record(ctx, res.Entry)
	if err != nil {
		t.Fatal(err)
	}
	var gates []string
	for _, v := range rec.Gates {
		if !v.Pass || v.Evidence == "" {
			t.Errorf("recorded verdict %+v: want a pass with its evidence", v)
		}
		gates = append(gates, v.Gate)
	}
	if diff := cmp.Diff([]string{"from", "soak", "scan", "sbom"}, gates); diff != "" {
		t.Errorf("recorded gates (-want +got):\n%s", diff)
	}
	if rec.From != "staging" {
		t.Errorf("record.from = %q", rec.From)
	}
	// The staging record came along with the image, as evidence.
	prodRepo, _ := fastRegistry(nil).Dial(ctx, f.repo(t, "production"), registry.DialOptions{})
	refs, err := prodRepo.Referrers(ctx, res.Digest)
	if err != nil {
		t.Fatal(err)
	}
	envs := map[string]int{}
	for _, d := range refs {
		envs[d.Annotations[annEnvironment]+"|"+d.Annotations[registry.AnnotationPredicateType]]++
	}
	for _, k := range []string{"staging|" + PredicateType, "production|" + PredicateType, "|" + ScanPredicateType} {
		if envs[k] != 1 {
			t.Errorf("production referrers of the index: %v; want one %s", envs, k)
		}
	}
}

func TestFromGateIgnoresRolledBackAndOrphanedRecords(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	bad, other := f.publish(t, "staging", true), f.publish(t, "staging", true)
	for _, d := range []name.Digest{bad, other} {
		if _, err := Promote(ctx, f.options("staging", d)); err != nil {
			t.Fatal(err)
		}
	}
	// other is rolled back: it was found wanting in staging.
	if _, err := Rollback(ctx, f.options("staging", name.Digest{})); err != nil {
		t.Fatal(err)
	}
	f.clock.Set(now.Add(3 * time.Hour))
	o := f.options("production", other)
	o.DryRun = true
	res, err := Promote(ctx, o)
	if err == nil || res.Verdicts[0].Detail != "the digest's promotion to staging was rolled back" {
		t.Errorf("from gate after a rollback: %+v, %v", res.Verdicts[0], err)
	}

	// A record attached to a digest but not in the history (a promotion
	// that lost the race for the head) is no evidence.
	orphan := f.publish(t, "staging", true)
	h := f.history(t, "staging")
	rw, _ := fastRegistry(nil).Dial(ctx, f.repo(t, "staging"), registry.DialOptions{Push: true, Settle: time.Millisecond})
	h.repo = rw
	if _, err := h.write(ctx, &Record{Environment: "staging", Repository: "x", Digest: orphan.DigestStr(), Sequence: 1, Time: now, Tags: []string{"staging"}}); err != nil {
		t.Fatal(err)
	}
	res, _ = Promote(ctx, f.options("production", orphan))
	if res.Verdicts[0].Pass {
		t.Errorf("an orphaned record passed the from gate: %+v", res.Verdicts[0])
	}
}

func TestHistoryRefusesAForeignHead(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	img := f.publish(t, "staging", false)
	h := f.history(t, "staging")
	rw, _ := fastRegistry(nil).Dial(ctx, f.repo(t, "staging"), registry.DialOptions{Push: true})
	h.repo = rw
	d, _ := v1.NewHash(img.DigestStr())
	if err := h.tag(ctx, HeadTag("staging"), d); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Entries(ctx); err == nil || !strings.Contains(err.Error(), "is not a slipway promotion record") {
		t.Errorf("err = %v", err)
	}
}

func TestConcurrentAppendsKeepOneHistory(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var imgs []name.Digest
	names := map[string]string{}
	for i := range 4 {
		d := f.publish(t, "dev", false)
		imgs = append(imgs, d)
		names[d.DigestStr()] = string(rune('A' + i))
	}
	for round := range 6 {
		var wg sync.WaitGroup
		errs := make([]error, len(imgs))
		for i, d := range imgs {
			wg.Go(func() { _, errs[i] = Promote(ctx, f.options("staging", d)) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, %s: %v", round, names[imgs[i].DigestStr()], err)
			}
		}
		h := f.history(t, "staging")
		head, err := h.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.tagged(t, "staging", "staging"); got != head.Digest.String() {
			t.Fatalf("round %d: staging names %s, the head %s", round, names[got], names[head.Digest.String()])
		}
		if _, err := h.Entries(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func TestParseScanStatementFromSlipwayScan(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "scan.intoto.json"))
	if err != nil {
		t.Fatal(err)
	}
	index, _ := v1.NewHash("sha256:d1bb4d31f26e34e078ba202858d4b13e1c8f55110d39c6ec9df0d58cd9dafb0e")
	amd64, _ := v1.NewHash("sha256:81593db6dd993bd9148850404e63d68485237dca7f7a235a34e65b06de12dbc4")
	platforms := []v1.Descriptor{{Digest: amd64, Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}}
	s, ok := parseScan(data, []v1.Hash{index}, platforms)
	want := Scan{Time: time.Date(2026, 11, 22, 5, 39, 38, 0, time.UTC), Verdict: "fail", MaxSeverity: "high"}
	if !ok || !s.Time.Equal(want.Time) || s.Verdict != want.Verdict || s.MaxSeverity != want.MaxSeverity || len(s.Unscanned) != 0 {
		t.Errorf("parsed %+v, %v; want %+v", s, ok, want)
	}
	other, _ := v1.NewHash("sha256:" + strings.Repeat("0", 64))
	if _, ok := parseScan(data, []v1.Hash{other}, platforms); ok {
		t.Error("a statement about another image was taken as evidence")
	}
	// The same statement about an index with a second platform leaves it
	// unscanned.
	arm64 := v1.Descriptor{Digest: other, Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}
	if s, ok := parseScan(data, []v1.Hash{index}, append(platforms, arm64)); !ok || !slices.Equal(s.Unscanned, []string{other.String() + " linux/arm64"}) {
		t.Errorf("two platforms, one scanned: unscanned %q, %v", s.Unscanned, ok)
	}
}

// afterHeadWrite runs rival once, right after the first PUT of the head
// tag through it has been answered and before the promotion that sent it
// sees the answer: the moment another promotion may read the new head.
type afterHeadWrite struct {
	base  http.RoundTripper
	head  string
	once  sync.Once
	rival func()
}

func (a *afterHeadWrite) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := a.base.RoundTrip(req)
	if err == nil && req.Method == http.MethodPut && strings.HasSuffix(req.URL.Path, "/manifests/"+a.head) {
		a.once.Do(a.rival)
	}
	return resp, err
}

// A rival that reads the head just after our write chains its record onto
// ours and moves the head past it. Ours is in the history, so the
// promotion must stand as it is: not counted as a lost race, not appended
// a second time.
func TestRivalChainedOntoOursIsNoLostRace(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a, b := f.publish(t, "dev", false), f.publish(t, "dev", false)
	names := map[string]string{a.DigestStr(): "A", b.DigestStr(): "B"}
	var rivalErr error
	o := f.options("staging", a)
	o.Registry = fastRegistry(&afterHeadWrite{base: http.DefaultTransport, head: HeadTag("staging"), rival: func() {
		_, rivalErr = Promote(ctx, f.options("staging", b))
	}})
	res, err := Promote(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if rivalErr != nil {
		t.Fatalf("rival: %v", rivalErr)
	}
	if diff := cmp.Diff([]string{"#1 A promote", "#2 B promote"}, f.summarize(t, "staging", names)); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	if res.Entry == nil || res.Entry.Sequence != 1 || res.Races != 0 {
		t.Errorf("A reported %+v after %d races, want record #1 and none", res.Entry, res.Races)
	}
	if got := f.tagged(t, "staging", "staging"); got != b.DigestStr() {
		t.Errorf("staging names %s, want B, the head", names[got])
	}
}

// A promotion whose record takes longer to build than a rival's whole
// append (a rollback walks the history; gates read evidence) must not move
// the head over the rival's record once the rival has reported it: ours
// is appended after it instead.
func TestSlowBuildDoesNotDisplaceAFinishedRival(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a, b := f.publish(t, "staging", false), f.publish(t, "staging", false)
	names := map[string]string{a.DigestStr(): "A", b.DigestStr(): "B"}
	open := func() *History {
		o := f.options("staging", name.Digest{})
		h, err := o.history(ctx, f.cfg.Environments["staging"], true)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	record := func(d name.Digest) *Record {
		return &Record{Repository: d.Context().String(), Digest: d.DigestStr(), Tags: []string{"staging"}, Gates: []Verdict{}}
	}
	var rival *Entry
	var rivalErr error
	builds := 0
	slow := open()
	ours, err := slow.Append(ctx, func(ctx context.Context, head *Entry) (*Record, error) {
		if builds++; builds == 1 {
			// The rival starts after our read of the head and reports its
			// record before we have built ours.
			rival, rivalErr = open().Append(ctx, func(context.Context, *Entry) (*Record, error) { return record(b), nil })
		}
		return record(a), nil
	})
	if err != nil || rivalErr != nil {
		t.Fatalf("ours: %v; rival: %v", err, rivalErr)
	}
	if rival == nil || rival.Sequence != 1 {
		t.Fatalf("the rival reported %+v, want record #1", rival)
	}
	if diff := cmp.Diff([]string{"#1 B promote", "#2 A promote"}, f.summarize(t, "staging", names)); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	if ours.Sequence != 2 || slow.Races.Load() != 1 {
		t.Errorf("ours is record #%d after %d races, want #2 after one", ours.Sequence, slow.Races.Load())
	}
}
