package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/promote"
	"github.com/slipwayci/slipway/internal/registry"
	"github.com/slipwayci/slipway/internal/registrytest"
)

// promoteT0 is when the e2e world's clock starts: the scan ran an hour
// before it.
var promoteT0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// promoteScan is a statement as slipway scan writes it about digests: the
// index and every platform manifest it scanned.
func promoteScan(digests []string, pass bool, high int, finished time.Time) string {
	var subjects []string
	for _, d := range digests {
		alg, hex, _ := strings.Cut(d, ":")
		subjects = append(subjects, fmt.Sprintf(`{"name":"hello","digest":{%q:%q}}`, alg, hex))
	}
	return fmt.Sprintf(`{"_type":"https://in-toto.io/Statement/v1","subject":[%s],
"predicateType":"https://slipway.dev/attestations/scan/v1","predicate":{"counts":{"critical":0,"high":%d,"medium":2,"low":1,"unknown":0,"waived":1},
"verdict":{"pass":%v,"failOn":"high"},"startedOn":%q,"finishedOn":%q}}`, strings.Join(subjects, ","), high, pass, finished.Add(-time.Minute).Format(time.RFC3339), finished.Format(time.RFC3339))
}

// promoteDir is a copy of the pushed sample with a scan statement about its
// image in dist/scan.intoto.json, for a test to push and promote.
func promoteDir(t *testing.T, pass bool) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(must(t, pushSample))); err != nil {
		t.Fatal(err)
	}
	rec := pushRecord(t, dir)
	high := 0
	if !pass {
		high = 3
	}
	digests := []string{rec.Image.Digest}
	for _, p := range rec.Image.Platforms {
		digests = append(digests, p.Digest)
	}
	writeFile(t, filepath.Join(dir, "dist", "scan.intoto.json"), promoteScan(digests, pass, high, promoteT0.Add(-time.Hour)))
	return dir
}

// promoteRun runs slipway promote (or, with history set, slipway history)
// in-process at the given time, as cmd/slipway-promote does.
func promoteRun(t *testing.T, dir string, at time.Time, env []string, args ...string) pushResult {
	t.Helper()
	home := t.TempDir()
	environ := []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "SLIPWAY_SUMMARY_FILE=" + filepath.Join(home, "summary.md")}
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(testContext(t), toolTimeout)
	defer cancel()
	c := promote.Command{Now: func() time.Time { return at }, Settle: 50 * time.Millisecond}
	err := c.Promote(ctx, cli.Env{Args: args, Environ: append(environ, env...), Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Dir: dir})
	code := cli.ExitCode(&stderr, "slipway promote", err)
	summary, _ := os.ReadFile(filepath.Join(home, "summary.md"))
	return pushResult{stdout.String(), stderr.String(), string(summary), code}
}

func promoteOK(t *testing.T, dir string, at time.Time, args ...string) pushResult {
	t.Helper()
	r := promoteRun(t, dir, at, nil, args...)
	if r.Code != 0 {
		t.Fatalf("slipway promote %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return r
}

// promoteConfig is .slipway.yaml for a staging registry and a production
// registry: dev and staging share the first, production has the second.
func promoteConfig(staging, production, healthURL string) string {
	return `# Environments of the e2e world.
environments:
  dev:
    repository: ` + staging + `/ci/hello
    tags: [dev]
  staging:
    repository: ` + staging + `/staging/hello
    tags: [staging, "{{.Version}}"]
    gates:
      scan: {maxSeverity: high, maxAge: 2d}
      sbom: true
  production:
    repository: ` + production + `/prod/hello
    tags: [production]
    gates:
      from: staging
      soak: 1h
      scan: {maxSeverity: high, maxAge: 2d}
      sbom: true
      health: {url: "` + healthURL + `", probes: 5, successRate: 80, p95: 2s, timeout: 2s}
      approval: {approvers: [alice]}
`
}

// promoteHealth serves the health gate's URL, failing while down is set.
func promoteHealth(t *testing.T) (string, *atomic.Bool) {
	t.Helper()
	var down atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/healthz", &down
}

// blobsOf lists the blob digests and sizes of the image index d in repo,
// and of every artifact that refers to its manifests, straight from the
// registry.
func blobsOf(t *testing.T, r *registrytest.Registry, repo string, d string) map[string]int64 {
	t.Helper()
	ref, err := name.ParseReference(r.Direct + "/" + repo + "@" + d)
	if err != nil {
		t.Fatal(err)
	}
	opts := pushOpts(r, registrytest.Auth{})
	idx, err := remote.Index(ref, opts...)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	out := map[string]int64{}
	subjects := []v1.Hash{}
	for _, m := range im.Manifests {
		subjects = append(subjects, m.Digest)
		img, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		mf, _ := img.Manifest()
		for _, l := range append([]v1.Descriptor{mf.Config}, mf.Layers...) {
			out[l.Digest.String()] = l.Size
		}
	}
	h, _ := v1.NewHash(d)
	subjects = append(subjects, h)
	for _, s := range subjects {
		fb, err := remote.Get(ref.Context().Tag("sha256-"+s.Hex), opts...)
		if err != nil {
			continue
		}
		var list v1.IndexManifest
		if err := json.Unmarshal(fb.Manifest, &list); err != nil {
			t.Fatal(err)
		}
		for _, a := range list.Manifests {
			art, err := remote.Image(ref.Context().Digest(a.Digest.String()), opts...)
			if err != nil {
				t.Fatal(err)
			}
			mf, _ := art.Manifest()
			for _, l := range append([]v1.Descriptor{mf.Config}, mf.Layers...) {
				out[l.Digest.String()] = l.Size
			}
		}
	}
	return out
}

// uploads counts the blob uploads the registry received, by digest.
func uploads(r *registrytest.Registry) map[string]int {
	out := map[string]int{}
	for _, q := range r.Proxy.Requests() {
		if q.Upload() {
			out[q.Query.Get("digest")]++
		}
	}
	return out
}

// recordLayer is the statement blob of the promotion record with manifest
// digest ref.
func recordLayer(t *testing.T, r *registrytest.Registry, repo, ref string) string {
	t.Helper()
	d, err := name.NewDigest(r.Direct + "/" + repo + "@" + ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(d, pushOpts(r, registrytest.Auth{})...)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := img.Manifest()
	return m.Layers[0].Digest.String()
}

// artifactTypes lists what refers to the index d in repo, by artifact type
// and, for in-toto statements, predicate type.
func artifactTypes(t *testing.T, r *registrytest.Registry, repo, d string) []string {
	t.Helper()
	rp, err := name.NewRepository(r.Host + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	c, err := defaultRegistry(t).Dial(testContext(t), rp, registry.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := v1.NewHash(d)
	refs, err := c.Referrers(testContext(t), h)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, x := range refs {
		s := x.ArtifactType
		if pt := x.Annotations[registry.AnnotationPredicateType]; pt != "" {
			s += " " + pt + " " + x.Annotations["dev.slipway.promotion.environment"]
		}
		out = append(out, strings.TrimSpace(s))
	}
	slices.Sort(out)
	return out
}

func TestPromoteAcrossRegistries(t *testing.T) {
	requireE2E(t, "git", "docker-registry")
	dir := promoteDir(t, true)
	rec := pushRecord(t, dir)
	digest := rec.Image.Digest
	stg, prd := registrytest.New(t, registrytest.Options{}), registrytest.New(t, registrytest.Options{})
	healthURL, down := promoteHealth(t)
	writeFile(t, filepath.Join(dir, ".slipway.yaml"), promoteConfig(stg.Host, prd.Host, healthURL))

	// The pipeline's push, with the scan's evidence attached.
	pushOK(t, dir, nil, "--to", stg.Host+"/ci/hello", "--tag", "main", "--attach", "dist/scan.intoto.json")

	// Into staging, on the same registry: every blob is mounted, and the
	// only bytes uploaded are the promotion record's.
	stg.Proxy.Reset()
	res := promoteOK(t, dir, promoteT0, "--digest", stg.Host+"/ci/hello@"+digest, "--to", "staging")
	outs := pushOutputs(res.Stdout)
	wantBlobs := blobsOf(t, stg, "ci/hello", digest)
	up := uploads(stg)
	statement := recordLayer(t, stg, "staging/hello", outs["record"])
	if len(up) != 1 || up[statement] != 1 {
		t.Errorf("the in-registry promotion uploaded %v; want only the record's statement %s", up, statement)
	}
	var mounted int
	for _, q := range stg.Proxy.Requests() {
		if q.Query.Get("from") == "ci/hello" && q.Status == http.StatusCreated {
			mounted++
		}
	}
	if mounted < len(wantBlobs)-1 { // the empty config is mounted once, or found
		t.Errorf("%d blobs mounted from ci/hello, want the %d of the image and its referrers", mounted, len(wantBlobs))
	}
	if outs["digest"] != digest || outs["refs"] != stg.Host+"/staging/hello@"+digest || outs["tags"] != "staging,1.2.3" {
		t.Errorf("outputs %v", outs)
	}
	for _, tag := range []string{"staging", "1.2.3"} {
		pushCheckImage(t, stg, registrytest.Auth{}, "staging/hello", tag, dir)
	}
	for _, w := range []string{"| scan | ✅ pass |", "| sbom | ✅ pass |", "Recorded as #1"} {
		if !strings.Contains(res.Summary, w) {
			t.Errorf("summary lacks %q:\n%s", w, res.Summary)
		}
	}

	// Production refuses while staging has not soaked, the service is
	// unhealthy and nobody approved: one line per gate, exit 3, and
	// nothing written.
	down.Store(true)
	prd.Proxy.Reset()
	bad := promoteRun(t, dir, promoteT0.Add(10*time.Minute), nil, "--digest", stg.Host+"/staging/hello@"+digest, "--to", "production")
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(bad.Stderr), "\n") {
		if strings.HasPrefix(l, "slipway promote: gate ") {
			lines = append(lines, l[:strings.Index(l, " refused")])
		}
	}
	wantLines := []string{"slipway promote: gate soak", "slipway promote: gate health", "slipway promote: gate approval"}
	if bad.Code != cli.ExitPolicy || !slices.Equal(lines, wantLines) {
		t.Errorf("exit %d, gate lines %q; want 3 and %q\n%s", bad.Code, lines, wantLines, bad.Stderr)
	}
	for _, q := range prd.Proxy.Requests() {
		if q.Method != http.MethodGet && q.Method != http.MethodHead {
			t.Errorf("a refused promotion wrote %s %s", q.Method, q.Path)
		}
	}

	// After the soak, healthy and approved, across registries: each blob
	// of the image and its referrers is uploaded once, streamed from
	// staging.
	down.Store(false)
	prd.Proxy.Reset()
	good := promoteOK(t, dir, promoteT0.Add(2*time.Hour), "--digest", stg.Host+"/staging/hello@"+digest, "--to", "production", "--approved-by", "alice")
	pouts := pushOutputs(good.Stdout)
	up = uploads(prd)
	for d, n := range up {
		if n != 1 {
			t.Errorf("blob %s uploaded %d times to production", d, n)
		}
	}
	var sent int64
	for _, q := range prd.Proxy.Requests() {
		if q.Upload() {
			sent += q.Sent
		}
	}
	var want int64
	for d, size := range wantBlobs {
		if up[d] != 1 {
			t.Errorf("blob %s never reached production", d)
		}
		want += size
	}
	pstatement := recordLayer(t, prd, "prod/hello", pouts["record"])
	// The staging record travelled too, and production's is new.
	sstatement := recordLayer(t, stg, "staging/hello", outs["record"])
	want += blobSize(t, stg, "staging/hello", sstatement) + blobSize(t, prd, "prod/hello", pstatement)
	if sent != want {
		t.Errorf("production received %d blob bytes, want %d: each blob once", sent, want)
	}
	pushCheckImage(t, prd, registrytest.Auth{}, "prod/hello", "production", dir)
	wantTypes := []string{
		"application/vnd.in-toto+json " + promote.PredicateType + " production",
		"application/vnd.in-toto+json " + promote.PredicateType + " staging",
		"application/vnd.in-toto+json " + promote.ScanPredicateType,
	}
	if got := artifactTypes(t, prd, "prod/hello", digest); !slices.Equal(got, wantTypes) {
		t.Errorf("referrers of the index in production:\n%q\nwant\n%q", got, wantTypes)
	}
	for _, w := range []string{"| from | ✅ pass |", "| soak | ✅ pass |", "| health | ✅ pass |", "| approval | ✅ pass | approved by alice"} {
		if !strings.Contains(good.Summary, w) {
			t.Errorf("summary lacks %q:\n%s", w, good.Summary)
		}
	}
	if missing, err := prd.Incomplete(testContext(t), "prod/hello", registrytest.Auth{}); err != nil || len(missing) > 0 {
		t.Errorf("production after the promotion: %v %v", missing, err)
	}
}

func blobSize(t *testing.T, r *registrytest.Registry, repo, d string) int64 {
	t.Helper()
	ref, err := name.NewDigest(r.Direct + "/" + repo + "@" + d)
	if err != nil {
		t.Fatal(err)
	}
	l, err := remote.Layer(ref, pushOpts(r, registrytest.Auth{})...)
	if err != nil {
		t.Fatal(err)
	}
	n, err := l.Size()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestPromoteGatesRefuseAndPass(t *testing.T) {
	requireE2E(t, "git", "docker-registry")
	passing, failing := promoteDir(t, true), promoteDir(t, false)
	digest := pushRecord(t, passing).Image.Digest
	stg, prd := registrytest.New(t, registrytest.Options{}), registrytest.New(t, registrytest.Options{})
	healthURL, _ := promoteHealth(t)
	cfg := promoteConfig(stg.Host, prd.Host, healthURL)
	for _, d := range []string{passing, failing} {
		writeFile(t, filepath.Join(d, ".slipway.yaml"), cfg)
	}
	// One image, three repositories of evidence: none, a failing scan, a
	// passing scan.
	pushOK(t, passing, nil, "--to", stg.Host+"/bare/hello", "--tag", "x", "--sbom=false", "--scan-evidence=false")
	pushOK(t, failing, nil, "--to", stg.Host+"/failing/hello", "--tag", "x", "--attach", "dist/scan.intoto.json")
	pushOK(t, passing, nil, "--to", stg.Host+"/ci/hello", "--tag", "x", "--attach", "dist/scan.intoto.json")

	for _, tc := range []struct {
		name   string
		source string
		at     time.Time
		want   []string // failing gates, in order
	}{
		{"missing evidence", "bare/hello", promoteT0, []string{"scan: no scan attestation", "sbom: no SBOM attached"}},
		{"failing scan", "failing/hello", promoteT0, []string{`scan: the newest scan's verdict is "fail"`}},
		{"stale scan", "ci/hello", promoteT0.Add(72 * time.Hour), []string{"scan: the newest scan is 73h0m0s old; maxAge is 48h0m0s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, dry := range []bool{true, false} {
				args := []string{"--digest", stg.Host + "/" + tc.source + "@" + digest, "--to", "staging"}
				if dry {
					args = append(args, "--dry-run")
				}
				r := promoteRun(t, passing, tc.at, nil, args...)
				var got []string
				for _, l := range strings.Split(strings.TrimSpace(r.Stderr), "\n") {
					if g, ok := strings.CutPrefix(l, "slipway promote: gate "); ok {
						got = append(got, strings.Replace(g, " refused:", ":", 1))
					}
				}
				if r.Code != cli.ExitPolicy || len(got) != len(tc.want) {
					t.Fatalf("dry-run=%v: exit %d, gate lines %q; want 3 and %d lines\n%s", dry, r.Code, got, len(tc.want), r.Stderr)
				}
				for i := range got {
					if !strings.HasPrefix(got[i], tc.want[i]) {
						t.Errorf("line %q, want %q…", got[i], tc.want[i])
					}
				}
			}
			if tags, _ := stg.Tags(testContext(t), "staging/hello", registrytest.Auth{}); len(tags) != 0 {
				t.Errorf("a refused promotion left tags in staging: %v", tags)
			}
		})
	}

	// A dry run that passes shows every verdict and changes nothing.
	dry := promoteOK(t, passing, promoteT0, "--digest", stg.Host+"/ci/hello@"+digest, "--to", "staging", "--dry-run")
	if !strings.Contains(dry.Summary, "Dry run: would move `staging`, `1.2.3`") {
		t.Errorf("dry-run summary:\n%s", dry.Summary)
	}
	if tags, _ := stg.Tags(testContext(t), "staging/hello", registrytest.Auth{}); len(tags) != 0 {
		t.Errorf("a dry run left tags: %v", tags)
	}
	promoteOK(t, passing, promoteT0, "--digest", stg.Host+"/ci/hello@"+digest, "--to", "staging")
	// The digest alone is looked for in gates.from's repository.
	short := promoteRun(t, passing, promoteT0.Add(20*time.Minute), nil, "--digest", digest, "--to", "production", "--approved-by", "bob", "--dry-run")
	if short.Code != cli.ExitPolicy || !strings.Contains(short.Stderr, "gate soak refused: in staging for only 20m0s") || !strings.Contains(short.Stderr, "gate approval refused: bob is not an approver (alice)") {
		t.Errorf("exit %d:\n%s", short.Code, short.Stderr)
	}
	promoteOK(t, passing, promoteT0.Add(61*time.Minute), "--digest", digest, "--to", "production", "--approved-by", "alice", "--dry-run")

	// Configuration errors exit 2 with one line.
	writeFile(t, filepath.Join(failing, ".slipway.yaml"), strings.Replace(cfg, "soak: 1h", "soak: 1h\n      canary: yes", 1))
	r := promoteRun(t, failing, promoteT0, nil, "--digest", digest, "--to", "production")
	if r.Code != cli.ExitUsage || !strings.Contains(r.Stderr, "field canary not found") || strings.Count(r.Stderr, "\n") != 1 {
		t.Errorf("unknown key: exit %d\n%s", r.Code, r.Stderr)
	}
}
