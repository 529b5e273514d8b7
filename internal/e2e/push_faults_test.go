package e2e

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/registrytest"
)

var (
	pushUploadPut  = regexp.MustCompile(`/blobs/uploads/.+`)
	pushUploadPost = regexp.MustCompile(`/blobs/uploads/$`)
	pushBlobHead   = regexp.MustCompile(`/blobs/sha256:`)
)

// pushBaseline is how many blob bytes a clean push of the sample sends:
// each blob once.
func pushBaseline(t *testing.T, dir string) int64 {
	t.Helper()
	r := registrytest.New(t, registrytest.Options{})
	pushOK(t, dir, nil, "--to", r.Host+"/baseline/hello", "--tag", "x")
	n := registrytest.UploadedBytes(r.Proxy.Requests())
	if n == 0 {
		t.Fatal("a clean push uploaded nothing")
	}
	return n
}

// pushNoBrokenTags fails the test if any tag of repo names something the
// registry does not have.
func pushNoBrokenTags(t *testing.T, r *registrytest.Registry, repo string) {
	t.Helper()
	missing, err := r.Incomplete(testContext(t), repo, registrytest.Auth{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range missing {
		t.Errorf("a tag names something missing: %s", m)
	}
}

func TestPushThroughFaults(t *testing.T) {
	requireE2E(t, "git", "docker-registry")
	dir := must(t, pushSample)
	baseline := pushBaseline(t, dir)
	r := registrytest.New(t, registrytest.Options{})
	rec := pushRecord(t, dir)
	index := regexp.MustCompile(`/manifests/` + regexp.QuoteMeta(rec.Image.Digest) + `$`)
	r.Proxy.Inject(
		registrytest.Fault{Method: http.MethodHead, Path: pushBlobHead, Status: http.StatusTooManyRequests, RetryAfter: "1"},
		registrytest.Fault{Method: http.MethodPost, Path: pushUploadPost, Drop: true},
		registrytest.Fault{Method: http.MethodPut, Path: pushUploadPut, Status: http.StatusInternalServerError},
		registrytest.Fault{Method: http.MethodPut, Path: pushUploadPut, Skip: 2, DropAfter: true},
		registrytest.Fault{Method: http.MethodPut, Path: index, Drop: true},
		registrytest.Fault{Method: http.MethodPut, Path: regexp.MustCompile(`/manifests/stable$`), Status: http.StatusBadGateway},
	)
	start := time.Now()
	res := pushOK(t, dir, nil, "--to", r.Host+"/faulty/hello", "--tag", "stable")
	if d := time.Since(start); d < time.Second {
		t.Errorf("the push took %s; it did not wait out Retry-After: 1", d)
	}
	for _, q := range r.Proxy.Requests() {
		if q.Fault == "drop-after" && q.Status != http.StatusCreated {
			t.Errorf("the upload that was to land unanswered got %d", q.Status)
		}
	}
	if got := strings.Count(res.Stderr, "retrying in"); got != 6 {
		t.Errorf("%d retries reported, want 6 (one per fault):\n%s", got, res.Stderr)
	}
	// Every blob byte reached the registry exactly once: the upload that
	// landed unanswered was found by HEAD, not sent again.
	if n := registrytest.UploadedBytes(r.Proxy.Requests()); n != baseline {
		t.Errorf("uploaded %d bytes through the faults, a clean push uploads %d", n, baseline)
	}
	pushCheckImage(t, r, registrytest.Auth{}, "faulty/hello", "stable", dir)
	pushNoBrokenTags(t, r, "faulty/hello")
}

func TestPushRidesOutARegistryRestart(t *testing.T) {
	requireE2E(t, "git", "docker-registry")
	dir := must(t, pushSample)
	r := registrytest.New(t, registrytest.Options{})
	restarted := make(chan error, 1)
	r.Proxy.Inject(registrytest.Fault{Method: http.MethodPut, Path: pushUploadPut, Skip: 1, Do: func() {
		r.Kill()
		go func() {
			time.Sleep(700 * time.Millisecond)
			restarted <- r.Restart()
		}()
	}})
	res := pushOK(t, dir, nil, "--to", r.Host+"/restart/hello", "--tag", "stable")
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Stderr, "retrying in") {
		t.Errorf("no retry reported while the registry was down:\n%s", res.Stderr)
	}
	pushCheckImage(t, r, registrytest.Auth{}, "restart/hello", "stable", dir)
	pushNoBrokenTags(t, r, "restart/hello")
}

func TestPushRegistryKilledMidPush(t *testing.T) {
	requireE2E(t, "git", "docker-registry")
	dir := must(t, pushSample)
	baseline := pushBaseline(t, dir)
	rec := pushRecord(t, dir)
	for _, tc := range []struct {
		name   string
		method string
		path   *regexp.Regexp
		skip   int
	}{
		{"during the blobs", http.MethodPut, pushUploadPut, 3},
		{"at the index", http.MethodPut, regexp.MustCompile(`/manifests/` + regexp.QuoteMeta(rec.Image.Digest) + `$`), 0},
		{"at the referrers", http.MethodPut, regexp.MustCompile(`/manifests/sha256-`), 0},
		{"at the first tag", http.MethodPut, regexp.MustCompile(`/manifests/(stable|1\.2\.3)$`), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := registrytest.New(t, registrytest.Options{})
			const repo = "killed/hello"
			r.Proxy.Inject(registrytest.Fault{Method: tc.method, Path: tc.path, Skip: tc.skip, Do: func() { r.Kill() }})
			res := pushRun(t, dir, nil, "", "--to", r.Host+"/"+repo, "--tag", "stable", "--tag", "1.2.3", "--retries", "1")
			if res.Code != cli.ExitFailure {
				t.Fatalf("exit %d with the registry killed; want 1\n%s", res.Code, res.Stderr)
			}
			killed := r.Proxy.Requests()
			if err := r.Restart(); err != nil {
				t.Fatal(err)
			}
			// What the registry holds after the crash, asked of the
			// registry: an upload in flight at the kill may have landed
			// although its client never heard back.
			var landed int64
			seen := map[string]bool{}
			for _, q := range killed {
				d := q.Query.Get("digest")
				if !q.Upload() || d == "" || seen[d] {
					continue
				}
				seen[d] = true
				size, ok, err := r.BlobSize(testContext(t), repo, d, registrytest.Auth{})
				if err != nil {
					t.Fatal(err)
				}
				if ok {
					landed += size
				}
			}
			tags, err := r.Tags(testContext(t), repo, registrytest.Auth{})
			if err != nil {
				t.Fatal(err)
			}
			for _, tag := range tags {
				// Referrers' fallback tags may be there: they name whole
				// artifact lists, which pushNoBrokenTags checks.
				if !strings.HasPrefix(tag, "sha256-") {
					t.Errorf("after the failed push the repository has tag %s", tag)
				}
			}
			pushNoBrokenTags(t, r, repo)

			r.Proxy.Reset()
			pushOK(t, dir, nil, "--to", r.Host+"/"+repo, "--tag", "stable", "--tag", "1.2.3")
			// The rerun sends exactly what had not landed.
			if again := registrytest.UploadedBytes(r.Proxy.Requests()); again != baseline-landed {
				t.Errorf("the rerun uploaded %d bytes; %d of %d had landed before the kill, so want %d", again, landed, baseline, baseline-landed)
			}
			pushCheckImage(t, r, registrytest.Auth{}, repo, "stable", dir)
			pushCheckImage(t, r, registrytest.Auth{}, repo, "1.2.3", dir)
			pushNoBrokenTags(t, r, repo)
		})
	}
}
