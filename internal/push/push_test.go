package push

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
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
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/slipwayci/slipway/internal/registry"
	"github.com/slipwayci/slipway/internal/registrytest"
)

var fast = registry.Backoff{Retries: 3, Initial: time.Millisecond, Max: 4 * time.Millisecond, MaxRetryAfter: 10 * time.Second}

// fastRegistry is a client that retries at once.
func fastRegistry(t *testing.T) *registry.Client {
	t.Helper()
	c, err := registry.New(registry.Options{Backoff: fast})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testLayout writes a random two-image index into an OCI layout and
// returns the directory and the index.
func testLayout(t *testing.T) (string, v1.ImageIndex) {
	t.Helper()
	dir := t.TempDir()
	idx, err := random.Index(2048, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(idx); err != nil {
		t.Fatal(err)
	}
	return dir, idx
}

// memRegistry serves the in-memory registry behind a recording, faulting
// proxy and returns the proxy.
func memRegistry(t *testing.T, opts ...memreg.Option) *registrytest.Proxy {
	t.Helper()
	srv := httptest.NewServer(memreg.New(append(opts, memreg.Logger(discardLogger()))...))
	t.Cleanup(srv.Close)
	p, err := registrytest.NewProxy(srv.URL, registrytest.ProxyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func repo(t *testing.T, host, path string) name.Repository {
	t.Helper()
	r, err := name.NewRepository(host + "/" + path)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func digestOf(t *testing.T, idx v1.ImageIndex) v1.Hash {
	t.Helper()
	h, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func options(t *testing.T, dir string, idx v1.ImageIndex, to ...name.Repository) Options {
	return Options{Layout: dir, Digest: digestOf(t, idx), To: to, Tags: []string{"1.2.3", "latest"}, Registry: fastRegistry(t)}
}

// pulled fetches repo:tag with the library and checks it is whole.
func pulled(t *testing.T, r name.Repository, tag string, want v1.Hash) {
	t.Helper()
	idx, err := remote.Index(r.Tag(tag))
	if err != nil {
		t.Fatalf("pulling %s:%s: %v", r, tag, err)
	}
	if err := validate.Index(idx); err != nil {
		t.Errorf("%s:%s is not a valid index: %v", r, tag, err)
	}
	if got := digestOf(t, idx); got != want {
		t.Errorf("%s:%s is %s, want %s", r, tag, got, want)
	}
}

// kind sorts the recorded requests into what the ordering rules talk about.
func kind(q registrytest.Request, root v1.Hash, tags []string) string {
	switch {
	case q.Upload():
		return "blob"
	case q.Method != http.MethodPut || !strings.Contains(q.Path, "/manifests/"):
		return ""
	case strings.HasSuffix(q.Path, "/"+root.String()):
		return "index"
	case slices.Contains(tags, q.Path[strings.LastIndex(q.Path, "/")+1:]):
		return "tag"
	}
	return "manifest"
}

func TestPushWritesBlobsThenManifestsThenIndexThenTags(t *testing.T) {
	dir, idx := testLayout(t)
	p := memRegistry(t)
	dst := repo(t, p.Host, "team/app")
	o := options(t, dir, idx, dst)
	res, err := Push(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	pulled(t, dst, "latest", o.Digest)
	pulled(t, dst, "1.2.3", o.Digest)

	var seq []string
	for _, q := range p.Requests() {
		if k := kind(q, o.Digest, o.Tags); k != "" && (len(seq) == 0 || seq[len(seq)-1] != k) {
			seq = append(seq, k)
		}
	}
	if diff := cmp.Diff([]string{"blob", "manifest", "index", "tag"}, seq); diff != "" {
		t.Errorf("order of writes (-want +got):\n%s", diff)
	}
	s := res[0].Stats
	if s.Uploaded != 6 || s.Existing != 0 || s.Manifests != 5 || res[0].Digest != o.Digest || !slices.Equal(res[0].Tags, o.Tags) {
		t.Errorf("result = %+v", res[0])
	}
	if s.Requests == 0 {
		t.Error("no requests counted")
	}
}

func TestRepushUploadsNothing(t *testing.T) {
	dir, idx := testLayout(t)
	p := memRegistry(t)
	dst := repo(t, p.Host, "app")
	o := options(t, dir, idx, dst)
	if _, err := Push(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	p.Reset()
	res, err := Push(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range p.Requests() {
		if q.Method != http.MethodGet && q.Method != http.MethodHead {
			t.Errorf("re-push sent %s %s", q.Method, q.Path)
		}
	}
	if s := res[0].Stats; !s.ImageExisted || s.Uploaded != 0 || s.Manifests != 0 {
		t.Errorf("re-push stats = %+v, want the image found and nothing written", s)
	}
}

func TestPushRetriesTransientFaults(t *testing.T) {
	dir, idx := testLayout(t)
	p := memRegistry(t)
	dst := repo(t, p.Host, "app")
	upload := regexp.MustCompile(`/blobs/uploads/.+`)
	manifests := regexp.MustCompile(`/manifests/`)
	p.Inject(
		registrytest.Fault{Method: http.MethodPut, Path: upload, Status: http.StatusInternalServerError},
		registrytest.Fault{Method: http.MethodPut, Path: upload, Skip: 1, DropAfter: true},
		registrytest.Fault{Method: http.MethodHead, Path: manifests, Status: http.StatusTooManyRequests, RetryAfter: "1"},
		registrytest.Fault{Method: http.MethodPut, Path: manifests, Drop: true},
		registrytest.Fault{Method: http.MethodPost, Status: http.StatusServiceUnavailable, Times: 2},
	)
	o := options(t, dir, idx, dst)
	start := time.Now()
	res, err := Push(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("push took %s; it should have waited out Retry-After: 1", d)
	}
	if got := res[0].Stats.Retries; got != 6 {
		t.Errorf("retries = %d, want 6 (one per fault hit)", got)
	}
	pulled(t, dst, "latest", o.Digest)
	var dropped int
	for _, q := range p.Requests() {
		if q.Fault == "drop-after" && q.Status == http.StatusCreated {
			dropped++
		}
	}
	if dropped != 1 {
		t.Fatalf("%d uploads landed unanswered, want 1", dropped)
	}
	// The blob that landed unanswered was found by HEAD, not sent again.
	if s := res[0].Stats; s.Uploaded+s.Existing != 6 || s.Existing != 1 {
		t.Errorf("stats = %+v, want 5 uploaded and the dropped one found existing", s)
	}
}

func TestPushGivesUpAndLeavesNoTag(t *testing.T) {
	dir, idx := testLayout(t)
	p := memRegistry(t)
	dst := repo(t, p.Host, "app")
	o := options(t, dir, idx, dst)
	rootPut := regexp.MustCompile(`/manifests/` + regexp.QuoteMeta(o.Digest.String()) + `$`)
	p.Inject(registrytest.Fault{Method: http.MethodPut, Path: rootPut, Status: http.StatusServiceUnavailable, Times: 100})

	_, err := Push(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "503 injected") {
		t.Fatalf("error = %v, want the registry's 503", err)
	}
	var tries int
	for _, q := range p.Requests() {
		if q.Method == http.MethodPut && rootPut.MatchString(q.Path) {
			tries++
		}
		if kind(q, o.Digest, o.Tags) == "tag" {
			t.Errorf("a failed push wrote tag %s", q.Path)
		}
	}
	if tries != fast.Retries+1 {
		t.Errorf("index PUT tried %d times, want %d", tries, fast.Retries+1)
	}

	// The rerun finishes without uploading a byte of what landed.
	p.Reset()
	res, err := Push(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if n := registrytest.UploadedBytes(p.Requests()); n != 0 {
		t.Errorf("the rerun uploaded %d bytes", n)
	}
	if s := res[0].Stats; s.Existing != 6 || s.Uploaded != 0 {
		t.Errorf("rerun stats = %+v, want all 6 blobs existing", s)
	}
	pulled(t, dst, "1.2.3", o.Digest)
}

func TestPushDoesNotRetryClientErrors(t *testing.T) {
	dir, idx := testLayout(t)
	p := memRegistry(t)
	p.Inject(registrytest.Fault{Method: http.MethodPost, Status: http.StatusForbidden, Times: 100})
	_, err := Push(context.Background(), options(t, dir, idx, repo(t, p.Host, "app")))
	if err == nil || !strings.Contains(err.Error(), "DENIED") {
		t.Fatalf("error = %v, want the 403", err)
	}
	var posts int
	for _, q := range p.Requests() {
		if q.Method == http.MethodPost {
			posts++
		}
	}
	// One POST per blob, each tried once; some may not start at all once
	// the first fails.
	if posts == 0 || posts > 6 {
		t.Errorf("%d POSTs for 6 blobs; a 403 must not be retried", posts)
	}
}

func TestPushManyDestinations(t *testing.T) {
	dir, idx := testLayout(t)
	// One repository per registry: the in-memory registry shares blobs
	// across repositories, so mounts are tested against the real one
	// (internal/e2e).
	p1, p2, p3 := memRegistry(t), memRegistry(t), memRegistry(t)
	to := []name.Repository{repo(t, p1.Host, "a/app"), repo(t, p2.Host, "b/app"), repo(t, p3.Host, "c/app")}
	o := options(t, dir, idx, to...)
	res, err := Push(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Repo != to[i] || r.Err != nil {
			t.Errorf("result %d = %+v, want %s in order", i, r, to[i])
		}
		pulled(t, to[i], "latest", o.Digest)
	}
}

func TestPushReportsEachFailedDestination(t *testing.T) {
	dir, idx := testLayout(t)
	good, bad := memRegistry(t), memRegistry(t)
	bad.Inject(registrytest.Fault{Status: http.StatusUnauthorized, Times: 1000})
	to := []name.Repository{repo(t, good.Host, "app"), repo(t, bad.Host, "app")}
	res, err := Push(context.Background(), options(t, dir, idx, to...))
	if err == nil || !strings.Contains(err.Error(), "pushing to "+to[1].String()) || strings.Contains(err.Error(), "pushing to "+to[0].String()) {
		t.Fatalf("error = %v, want only the second destination named", err)
	}
	if res[0].Err != nil || res[1].Err == nil {
		t.Errorf("results: %v / %v", res[0].Err, res[1].Err)
	}
	pulled(t, to[0], "latest", digestOf(t, idx))
}

// attachments writes an SPDX and a CycloneDX file about the first image.
func attachments(t *testing.T, idx v1.ImageIndex) []Attachment {
	t.Helper()
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var out []Attachment
	for file, mt := range map[string]string{"a.spdx.json": registry.MediaTypeSPDX, "a.cdx.json": registry.MediaTypeCycloneDX} {
		p := filepath.Join(dir, file)
		if err := os.WriteFile(p, []byte(`{"sbom":"`+file+`"}`), 0o644); err != nil {
			t.Fatal(err)
		}
		out = append(out, Attachment{Path: p, MediaType: mt, Subject: im.Manifests[0].Digest, Annotations: map[string]string{"org.opencontainers.image.created": "2026-01-02T03:04:05Z"}})
	}
	slices.SortFunc(out, func(a, b Attachment) int { return strings.Compare(a.Path, b.Path) })
	return out
}

func TestReferrersThroughTheAPI(t *testing.T) {
	dir, idx := testLayout(t)
	p := memRegistry(t, memreg.WithReferrersSupport(true))
	dst := repo(t, p.Host, "app")
	o := options(t, dir, idx, dst)
	o.Attachments = attachments(t, idx)
	res, err := Push(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Referrers != "api" || res[0].Stats.Artifacts != 2 {
		t.Errorf("result = %+v, want 2 artifacts found through the API", res[0])
	}
	subject := o.Attachments[0].Subject
	refs, err := remote.Referrers(dst.Digest(subject.String()))
	if err != nil {
		t.Fatal(err)
	}
	im, _ := refs.IndexManifest()
	img, err := readLayout(dir, o.Digest)
	if err != nil {
		t.Fatal(err)
	}
	arts, err := buildArtifacts(img, o.Attachments)
	if err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for _, d := range im.Manifests {
		got = append(got, d.Digest.String())
	}
	for _, a := range arts {
		want = append(want, a.manifest.desc.Digest.String())
	}
	slices.Sort(got)
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("referrers of the subject (-want +got):\n%s", diff)
	}
	if _, err := remote.Head(dst.Tag(registry.FallbackTag(subject))); err == nil {
		t.Error("a fallback tag was written to a registry with the referrers API")
	}
}

func TestReferrersThroughTheFallbackTag(t *testing.T) {
	dir, idx := testLayout(t)
	p := memRegistry(t)
	dst := repo(t, p.Host, "app")
	o := options(t, dir, idx, dst)
	o.Attachments = attachments(t, idx)
	res, err := Push(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Referrers != "tag" {
		t.Errorf("referrers = %q, want the tag fallback", res[0].Referrers)
	}
	subject := o.Attachments[0].Subject
	desc, err := remote.Get(dst.Tag(registry.FallbackTag(subject)))
	if err != nil {
		t.Fatalf("fallback tag: %v", err)
	}
	var fb v1.IndexManifest
	if err := json.Unmarshal(desc.Manifest, &fb); err != nil {
		t.Fatal(err)
	}
	if len(fb.Manifests) != 2 {
		t.Fatalf("fallback index lists %d referrers, want 2", len(fb.Manifests))
	}
	for _, d := range fb.Manifests {
		art, err := remote.Image(dst.Digest(d.Digest.String()))
		if err != nil {
			t.Fatalf("artifact %s: %v", d.Digest, err)
		}
		m, _ := art.Manifest()
		if m.Subject == nil || m.Subject.Digest != subject || m.ArtifactType != d.ArtifactType || m.Config.MediaType != "application/vnd.oci.empty.v1+json" || len(m.Layers) != 1 {
			t.Errorf("artifact %s = %+v", d.Digest, m)
		}
	}
	// The tags come after the referrers, and a re-push leaves the
	// fallback index as it is.
	var last string
	for _, q := range p.Requests() {
		if q.Method == http.MethodPut && strings.Contains(q.Path, "/manifests/") {
			last = q.Path
		}
	}
	if !strings.HasSuffix(last, "/1.2.3") && !strings.HasSuffix(last, "/latest") {
		t.Errorf("last manifest written was %s, want a tag", last)
	}
	p.Reset()
	if _, err := Push(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	for _, q := range p.Requests() {
		if q.Method == http.MethodPut {
			t.Errorf("re-push wrote %s", q.Path)
		}
	}
}

func TestReadLayoutRefusesBrokenLayouts(t *testing.T) {
	dir, idx := testLayout(t)
	d := digestOf(t, idx)
	if _, err := readLayout(dir, v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}); err == nil || !strings.Contains(err.Error(), "does not list") {
		t.Errorf("unknown digest: %v", err)
	}
	img, err := readLayout(dir, d)
	if err != nil {
		t.Fatal(err)
	}
	if len(img.blobs) != 6 || len(img.manifests) != 3 || img.manifests[2].desc.Digest != d {
		t.Errorf("read %d blobs and %d manifests, root last; got root %s", len(img.blobs), len(img.manifests), img.manifests[len(img.manifests)-1].desc.Digest)
	}
	victim := img.blobs[3].Desc.Digest
	if err := os.Remove(filepath.Join(dir, "blobs", "sha256", victim.Hex)); err != nil {
		t.Fatal(err)
	}
	if _, err := readLayout(dir, d); err == nil || !strings.Contains(err.Error(), victim.String()+" (") {
		t.Errorf("missing blob: %v", err)
	}
}

func TestPushStopsWhenCancelled(t *testing.T) {
	dir, idx := testLayout(t)
	p := memRegistry(t)
	p.Inject(registrytest.Fault{Status: http.StatusServiceUnavailable, RetryAfter: "5", Times: 1000})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Push(ctx, options(t, dir, idx, repo(t, p.Host, "app")))
	if err == nil {
		t.Fatal("push succeeded against a registry that only answers 503")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("push took %s after its context ended", d)
	}
}

// recorder is a Progress that remembers what it heard.
type recorder struct {
	mu      sync.Mutex
	bytes   int64
	blobs   map[string]int
	retries int
	done    []string
}

func (r *recorder) Start(name.Repository, int64) {}
func (r *recorder) Bytes(_ name.Repository, n int64) {
	r.mu.Lock()
	r.bytes += n
	r.mu.Unlock()
}
func (r *recorder) Blob(_ name.Repository, _ v1.Descriptor, how registry.BlobOutcome) {
	r.mu.Lock()
	r.blobs[how.String()]++
	r.mu.Unlock()
}
func (r *recorder) Retry(name.Repository, string, error, time.Duration) {
	r.mu.Lock()
	r.retries++
	r.mu.Unlock()
}
func (r *recorder) Done(_ name.Repository, line string) {
	r.mu.Lock()
	r.done = append(r.done, line)
	r.mu.Unlock()
}

func TestProgressCountsBytesOnce(t *testing.T) {
	dir, idx := testLayout(t)
	p := memRegistry(t)
	p.Inject(registrytest.Fault{Method: http.MethodPut, Path: regexp.MustCompile(`/blobs/uploads/.+`), Status: http.StatusBadGateway})
	rec := &recorder{blobs: map[string]int{}}
	o := options(t, dir, idx, repo(t, p.Host, "app"))
	o.Progress = rec
	res, err := Push(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if rec.bytes != res[0].Stats.UploadedBytes || rec.blobs["uploaded"] != 6 || rec.retries != 1 || len(rec.done) != 1 {
		t.Errorf("progress heard %d bytes (want %d), blobs %v, %d retries, %d done", rec.bytes, res[0].Stats.UploadedBytes, rec.blobs, rec.retries, len(rec.done))
	}
}

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }
