package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Repository speaks the distribution API to one repository, one request
// per operation, each operation retried as a whole with the client's
// Backoff and bounded by its Timeout. The library's transport does the
// ping and the token dance; the order of writes, mounts and retries is the
// caller's.
type Repository struct {
	repo      name.Repository
	http      *http.Client
	backoff   Backoff
	timeout   time.Duration
	onRetry   func(op string, err error, wait time.Duration)
	onBytes   func(n int64)
	anonymous bool
	settle    time.Duration
	// requests counts what was sent, token requests included.
	requests atomic.Int64
	// api is apiUnknown until a listing or a write finds out whether the
	// registry has the referrers API.
	api atomic.Int32
}

// What a Repository knows of its registry's referrers API.
const (
	apiUnknown int32 = iota
	apiPresent
	apiAbsent
)

// Limits on what a registry may send.
const (
	// MaxManifestSize bounds a manifest or index read.
	MaxManifestSize = 4 << 20
	// MaxReferrers bounds the referrers listed for one subject: a
	// registry, or whoever can push to it, listing more would have a
	// promotion copy and check them all.
	MaxReferrers = 1000
	// minRate is the slowest transfer a blob's deadline allows for.
	minRate = 64 << 10
)

// manifestTypes is the Accept header for manifests: anything that can be
// pushed under a tag.
var manifestTypes = strings.Join([]string{
	string(types.OCIImageIndex), string(types.OCIManifestSchema1),
	string(types.DockerManifestList), string(types.DockerManifestSchema2),
}, ", ")

// Name is the repository.
func (r *Repository) Name() name.Repository { return r.repo }

// Requests is how many requests were sent so far, token requests included.
func (r *Repository) Requests() int64 { return r.requests.Load() }

type countingTransport struct {
	inner http.RoundTripper
	n     *atomic.Int64
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return t.inner.RoundTrip(r)
}

// retry runs f until it succeeds, fails for good, the retries run out or
// limit passes.
func (r *Repository) retry(ctx context.Context, op string, limit time.Duration, f func(ctx context.Context) error) error {
	octx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	err := r.backoff.do(octx, func(err error, wait time.Duration) {
		if r.onRetry != nil {
			r.onRetry(op, err, wait)
		}
	}, func() error { return f(octx) })
	if err != nil && ctx.Err() == nil && octx.Err() != nil {
		return fmt.Errorf("gave up after %s, retries included: %w", limit, err)
	}
	return err
}

// transferLimit is the deadline of an operation that moves size bytes.
func (r *Repository) transferLimit(size int64) time.Duration {
	return r.timeout + time.Duration(size/minRate)*time.Second
}

// explain says what to do about a 401.
func (r *Repository) explain(err error) error { return explainAuth(err, r.repo, r.anonymous) }

func (r *Repository) url(format string, args ...any) string {
	u := url.URL{Scheme: r.repo.Scheme(), Host: r.repo.RegistryStr(), Path: "/v2/" + r.repo.RepositoryStr() + fmt.Sprintf(format, args...)}
	return u.String()
}

func (r *Repository) do(ctx context.Context, method, u string, body io.Reader, header map[string]string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := r.http.Do(req)
	return resp, redact(err)
}

// redact drops the query from a failed request's URL: an upload URL's
// state is long, opaque and of no use in a message.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil && u.RawQuery != "" {
			u.RawQuery = ""
			ue.URL = u.String()
		}
	}
	return err
}

// drain reads what is left of a body so the connection can be reused.
func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// Blob is content a registry stores by digest. Open is called once per
// upload attempt: a file, or a stream from another registry.
type Blob struct {
	Desc v1.Descriptor
	Open func(ctx context.Context) (io.ReadCloser, error)
}

// BlobOutcome says how a blob reached the repository.
type BlobOutcome int

const (
	Uploaded BlobOutcome = iota
	Existing
	Mounted
)

func (o BlobOutcome) String() string {
	switch o {
	case Existing:
		return "existing"
	case Mounted:
		return "mounted"
	}
	return "uploaded"
}

// PutBlob makes b present in the repository. With check, it first asks
// whether the blob is here already. With from, a repository of the same
// registry that may have it (dialled with it in MountFrom), it asks for a
// cross-repository mount, which costs no bytes, and uploads only if the
// registry declines. A failed attempt starts again from the check: a
// connection dropped after the registry stored the blob must not upload it
// twice.
func (r *Repository) PutBlob(ctx context.Context, b Blob, from string, check bool) (BlobOutcome, error) {
	var out BlobOutcome
	err := r.retry(ctx, "uploading "+b.Desc.Digest.String(), r.transferLimit(b.Desc.Size), func(ctx context.Context) error {
		var err error
		out, err = r.putBlobOnce(ctx, b, from, check)
		return err
	})
	if err != nil {
		return 0, r.explain(fmt.Errorf("uploading blob %s: %w", b.Desc.Digest, err))
	}
	return out, nil
}

func (r *Repository) putBlobOnce(ctx context.Context, b Blob, from string, check bool) (BlobOutcome, error) {
	if check {
		exists, err := r.blobExists(ctx, b.Desc.Digest)
		if err != nil {
			return 0, err
		}
		if exists {
			return Existing, nil
		}
	}
	loc, mounted, err := r.startUpload(ctx, b.Desc.Digest, from)
	if err != nil {
		return 0, err
	}
	if mounted {
		return Mounted, nil
	}
	return Uploaded, r.upload(ctx, loc, b)
}

func (r *Repository) blobExists(ctx context.Context, h v1.Hash) (bool, error) {
	resp, err := r.do(ctx, http.MethodHead, r.url("/blobs/%s", h), nil, nil)
	if err != nil {
		return false, err
	}
	defer drain(resp)
	if err := checkResponse(resp, http.StatusOK, http.StatusNotFound); err != nil {
		return false, err
	}
	return resp.StatusCode == http.StatusOK, nil
}

// startUpload opens an upload session, or mounts h from the repository
// from. A registry that refuses the mount outright (some do, rather than
// answer 202) gets a plain upload instead.
func (r *Repository) startUpload(ctx context.Context, h v1.Hash, from string) (loc string, mounted bool, err error) {
	u := r.url("/blobs/uploads/")
	if from != "" {
		u += "?" + url.Values{"mount": {h.String()}, "from": {from}}.Encode()
	}
	resp, err := r.do(ctx, http.MethodPost, u, nil, nil)
	if err != nil {
		return "", false, err
	}
	defer drain(resp)
	if err := checkResponse(resp, http.StatusCreated, http.StatusAccepted); err != nil {
		if ok, _ := retryable(err); from != "" && !ok {
			return r.startUpload(ctx, h, "")
		}
		return "", false, err
	}
	if resp.StatusCode == http.StatusCreated {
		return "", true, nil
	}
	loc, err = location(resp)
	return loc, false, err
}

// location resolves a Location header against the request it answers.
func location(resp *http.Response) (string, error) {
	l := resp.Header.Get("Location")
	if l == "" {
		return "", errors.New("registry sent no Location for the upload")
	}
	u, err := url.Parse(l)
	if err != nil {
		return "", fmt.Errorf("parsing upload Location: %w", err)
	}
	return resp.Request.URL.ResolveReference(u).String(), nil
}

// upload sends the blob in one PUT, the spec's monolithic upload: one
// request instead of a PATCH and a PUT.
func (r *Repository) upload(ctx context.Context, loc string, b Blob) error {
	u, err := url.Parse(loc)
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("digest", b.Desc.Digest.String())
	u.RawQuery = q.Encode()

	rc, err := b.Open(ctx)
	if err != nil {
		return fmt.Errorf("reading blob %s: %w", b.Desc.Digest, err)
	}
	defer rc.Close()
	body := &countingReader{r: rc, onBytes: r.onBytes}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u.String(), body)
	if err != nil {
		return err
	}
	req.ContentLength = b.Desc.Size
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := r.http.Do(req)
	if err != nil {
		body.rollback()
		return redact(err)
	}
	defer drain(resp)
	if err := checkResponse(resp, http.StatusCreated); err != nil {
		body.rollback()
		return err
	}
	return nil
}

// countingReader reports bytes read as they go, for progress, and can take
// them back when the request that read them failed.
type countingReader struct {
	r       io.Reader
	n       int64
	onBytes func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.n += int64(n)
		if c.onBytes != nil {
			c.onBytes(int64(n))
		}
	}
	return n, err
}

func (c *countingReader) rollback() {
	if c.onBytes != nil && c.n > 0 {
		c.onBytes(-c.n)
	}
	c.n = 0
}

// Resolve returns the digest a tag or digest names here, and false if it
// names nothing.
func (r *Repository) Resolve(ctx context.Context, ref string) (v1.Hash, bool, error) {
	var h v1.Hash
	var found bool
	err := r.retry(ctx, "checking "+ref, r.timeout, func(ctx context.Context) error {
		resp, err := r.do(ctx, http.MethodHead, r.url("/manifests/%s", ref), nil, map[string]string{"Accept": manifestTypes})
		if err != nil {
			return err
		}
		defer drain(resp)
		if err := checkResponse(resp, http.StatusOK, http.StatusNotFound); err != nil {
			return err
		}
		if found = resp.StatusCode == http.StatusOK; !found {
			return nil
		}
		if h, err = v1.NewHash(resp.Header.Get("Docker-Content-Digest")); err != nil {
			// Without the header, a digest reference names itself.
			if h, err = v1.NewHash(ref); err != nil {
				return fmt.Errorf("registry sent no Docker-Content-Digest for %s", ref)
			}
		}
		return nil
	})
	if err != nil {
		return v1.Hash{}, false, r.explain(fmt.Errorf("checking manifest %s: %w", ref, err))
	}
	return h, found, nil
}

// PutManifest writes raw under ref, a tag or its digest. A registry that
// answers OCI-Subject has the referrers API, and is remembered to.
func (r *Repository) PutManifest(ctx context.Context, ref string, mt types.MediaType, raw []byte) error {
	err := r.retry(ctx, "writing "+ref, r.timeout, func(ctx context.Context) error {
		resp, err := r.do(ctx, http.MethodPut, r.url("/manifests/%s", ref), bytes.NewReader(raw), map[string]string{"Content-Type": string(mt)})
		if err != nil {
			return err
		}
		defer drain(resp)
		if err := checkResponse(resp, http.StatusOK, http.StatusCreated, http.StatusAccepted); err != nil {
			return err
		}
		if resp.Header.Get("OCI-Subject") != "" {
			r.api.Store(apiPresent)
		}
		return nil
	})
	if err != nil {
		return r.explain(fmt.Errorf("writing manifest %s: %w", ref, err))
	}
	return nil
}

// Manifest reads ref (a tag or digest) with its media type; found is false
// if ref names nothing. A manifest read by digest is checked against it, so
// a registry cannot hand over other bytes.
func (r *Repository) Manifest(ctx context.Context, ref string) (raw []byte, mt types.MediaType, found bool, err error) {
	err = r.retry(ctx, "reading "+ref, r.timeout, func(ctx context.Context) error {
		raw, mt, found = nil, "", false
		resp, err := r.do(ctx, http.MethodGet, r.url("/manifests/%s", ref), nil, map[string]string{"Accept": manifestTypes})
		if err != nil {
			return err
		}
		defer drain(resp)
		if err := checkResponse(resp, http.StatusOK, http.StatusNotFound); err != nil {
			return err
		}
		if resp.StatusCode == http.StatusNotFound {
			return nil
		}
		if raw, err = readLimited(resp.Body, MaxManifestSize); err != nil {
			return err
		}
		found = true
		mt = types.MediaType(strings.TrimSpace(strings.Split(resp.Header.Get("Content-Type"), ";")[0]))
		return nil
	})
	if err != nil {
		return nil, "", false, r.explain(fmt.Errorf("reading manifest %s: %w", ref, err))
	}
	if !found {
		return nil, "", false, nil
	}
	if h, herr := v1.NewHash(ref); herr == nil {
		got, _, _ := v1.SHA256(bytes.NewReader(raw))
		if got != h {
			return nil, "", false, fmt.Errorf("reading manifest %s: the registry sent content with digest %s", ref, got)
		}
	}
	// The body says what it is when the header does not, or says it
	// vaguely (application/json).
	if !mt.IsIndex() && !mt.IsImage() {
		var probe struct {
			MediaType types.MediaType `json:"mediaType"`
		}
		if json.Unmarshal(raw, &probe) == nil && probe.MediaType != "" {
			mt = probe.MediaType
		}
	}
	return raw, mt, true, nil
}

// readLimited reads a body of at most limit bytes; more is an error, not
// a silent truncation.
func readLimited(rd io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(rd, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return data, nil
}

// OpenBlob starts reading blob h. The caller retries: a stream that fails
// halfway is opened again.
func (r *Repository) OpenBlob(ctx context.Context, h v1.Hash) (io.ReadCloser, error) {
	resp, err := r.do(ctx, http.MethodGet, r.url("/blobs/%s", h), nil, nil)
	if err != nil {
		return nil, err
	}
	if err := checkResponse(resp, http.StatusOK); err != nil {
		drain(resp)
		return nil, r.explain(fmt.Errorf("reading blob %s from %s: %w", h, r.repo, err))
	}
	return resp.Body, nil
}

// Blob reads a small blob whole (at most limit bytes), checked against its
// digest.
func (r *Repository) Blob(ctx context.Context, h v1.Hash, limit int64) ([]byte, error) {
	var data []byte
	err := r.retry(ctx, "reading "+h.String(), r.transferLimit(limit), func(ctx context.Context) error {
		rc, err := r.OpenBlob(ctx, h)
		if err != nil {
			return err
		}
		defer rc.Close()
		data, err = io.ReadAll(io.LimitReader(rc, limit+1))
		return err
	})
	if err != nil {
		return nil, r.explain(fmt.Errorf("reading blob %s: %w", h, err))
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("reading blob %s: larger than %d bytes", h, limit)
	}
	if got, _, _ := v1.SHA256(bytes.NewReader(data)); got != h {
		return nil, fmt.Errorf("reading blob %s: the registry sent content with digest %s", h, got)
	}
	return data, nil
}
