package push

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

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// client speaks the distribution API to one repository, one request per
// method, each retried as a whole by its caller's Backoff. The library's
// transport does the ping and the token dance; everything else is here,
// so the order of writes, mounts and retries is ours.
type client struct {
	repo    name.Repository
	http    *http.Client
	backoff Backoff
	onRetry func(op string, err error, wait time.Duration)
	onBytes func(n int64)
	// requests counts what was sent, token requests included.
	requests *atomic.Int64
	// api is apiUnknown until a listing finds out whether the registry
	// has the referrers API.
	api atomic.Int32
}

// manifestTypes is the Accept header for manifests: anything that can be
// pushed under a tag.
var manifestTypes = strings.Join([]string{
	string(types.OCIImageIndex), string(types.OCIManifestSchema1),
	string(types.DockerManifestList), string(types.DockerManifestSchema2),
}, ", ")

// dial authenticates to repo's registry with scopes: push on repo, pull on
// the repositories blobs may be mounted from.
func dial(ctx context.Context, repo name.Repository, auth authn.Authenticator, base http.RoundTripper, scopes []string, b Backoff, onRetry func(string, error, time.Duration)) (*client, error) {
	c := &client{repo: repo, backoff: b, onRetry: onRetry, requests: &atomic.Int64{}}
	counted := countingTransport{inner: base, n: c.requests}
	var rt http.RoundTripper
	err := c.retry(ctx, "logging in to "+repo.RegistryStr(), func() error {
		var err error
		rt, err = transport.NewWithContext(ctx, repo.Registry, auth, counted, scopes)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("logging in to %s: %w", repo.RegistryStr(), err)
	}
	c.http = &http.Client{Transport: rt}
	return c, nil
}

type countingTransport struct {
	inner http.RoundTripper
	n     *atomic.Int64
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return t.inner.RoundTrip(r)
}

func (c *client) retry(ctx context.Context, op string, f func() error) error {
	return c.backoff.do(ctx, func(err error, wait time.Duration) {
		if c.onRetry != nil {
			c.onRetry(op, err, wait)
		}
	}, f)
}

func (c *client) url(format string, args ...any) string {
	u := url.URL{Scheme: c.repo.Scheme(), Host: c.repo.RegistryStr(), Path: "/v2/" + c.repo.RepositoryStr() + fmt.Sprintf(format, args...)}
	return u.String()
}

func (c *client) do(ctx context.Context, method, u string, body io.Reader, header map[string]string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
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

// blobOutcome says how a blob reached the repository.
type blobOutcome int

const (
	blobUploaded blobOutcome = iota
	blobExisting
	blobMounted
)

// putBlob makes blob b present in the repository. With check, it first
// asks whether the blob is here already. With from, a repository of the
// same registry that may have it, it asks for a cross-repository mount,
// which costs no bytes, and uploads only if the registry declines. A failed
// attempt starts again from the check: a connection dropped after the
// registry stored the blob must not upload it twice.
func (c *client) putBlob(ctx context.Context, b blob, from string, check bool) (blobOutcome, error) {
	var out blobOutcome
	err := c.retry(ctx, "uploading "+b.desc.Digest.String(), func() error {
		var err error
		out, err = c.putBlobOnce(ctx, b, from, check)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("uploading blob %s: %w", b.desc.Digest, err)
	}
	return out, nil
}

func (c *client) putBlobOnce(ctx context.Context, b blob, from string, check bool) (blobOutcome, error) {
	if check {
		exists, err := c.blobExists(ctx, b.desc.Digest)
		if err != nil {
			return 0, err
		}
		if exists {
			return blobExisting, nil
		}
	}
	loc, mounted, err := c.startUpload(ctx, b.desc.Digest, from)
	if err != nil {
		return 0, err
	}
	if mounted {
		return blobMounted, nil
	}
	return blobUploaded, c.upload(ctx, loc, b)
}

func (c *client) blobExists(ctx context.Context, h v1.Hash) (bool, error) {
	resp, err := c.do(ctx, http.MethodHead, c.url("/blobs/%s", h), nil, nil)
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
func (c *client) startUpload(ctx context.Context, h v1.Hash, from string) (loc string, mounted bool, err error) {
	u := c.url("/blobs/uploads/")
	if from != "" {
		u += "?" + url.Values{"mount": {h.String()}, "from": {from}}.Encode()
	}
	resp, err := c.do(ctx, http.MethodPost, u, nil, nil)
	if err != nil {
		return "", false, err
	}
	defer drain(resp)
	if err := checkResponse(resp, http.StatusCreated, http.StatusAccepted); err != nil {
		if ok, _ := retryable(err); from != "" && !ok {
			return c.startUpload(ctx, h, "")
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
func (c *client) upload(ctx context.Context, loc string, b blob) error {
	u, err := url.Parse(loc)
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("digest", b.desc.Digest.String())
	u.RawQuery = q.Encode()

	rc, err := b.open(ctx)
	if err != nil {
		return fmt.Errorf("reading blob %s: %w", b.desc.Digest, err)
	}
	defer rc.Close()
	body := &countingReader{r: rc, onBytes: c.onBytes}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u.String(), body)
	if err != nil {
		return err
	}
	req.ContentLength = b.desc.Size
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.http.Do(req)
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

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.n += int64(n)
		if r.onBytes != nil {
			r.onBytes(int64(n))
		}
	}
	return n, err
}

func (r *countingReader) rollback() {
	if r.onBytes != nil && r.n > 0 {
		r.onBytes(-r.n)
	}
	r.n = 0
}

// manifestDigest returns the digest ref (a tag or digest) names here, and
// false if it names nothing.
func (c *client) manifestDigest(ctx context.Context, ref string) (v1.Hash, bool, error) {
	var h v1.Hash
	var found bool
	err := c.retry(ctx, "checking "+ref, func() error {
		resp, err := c.do(ctx, http.MethodHead, c.url("/manifests/%s", ref), nil, map[string]string{"Accept": manifestTypes})
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
		return v1.Hash{}, false, fmt.Errorf("checking manifest %s: %w", ref, err)
	}
	return h, found, nil
}

// getManifest fetches ref; nil if there is none.
func (c *client) getManifest(ctx context.Context, ref string) ([]byte, error) {
	raw, _, _, err := c.fetchManifest(ctx, ref)
	return raw, err
}

// putManifest uploads raw as ref and returns the response headers (a
// registry with the referrers API answers OCI-Subject).
func (c *client) putManifest(ctx context.Context, ref string, mt types.MediaType, raw []byte) (http.Header, error) {
	var hdr http.Header
	err := c.retry(ctx, "writing "+ref, func() error {
		resp, err := c.do(ctx, http.MethodPut, c.url("/manifests/%s", ref), bytes.NewReader(raw), map[string]string{"Content-Type": string(mt)})
		if err != nil {
			return err
		}
		defer drain(resp)
		if err := checkResponse(resp, http.StatusOK, http.StatusCreated, http.StatusAccepted); err != nil {
			return err
		}
		hdr = resp.Header
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("writing manifest %s: %w", ref, err)
	}
	return hdr, nil
}

// referrers asks the OCI 1.1 referrers endpoint what refers to subject. A
// registry with the API answers 200 and an index (empty if nothing does);
// one without answers 404 (or 400, or 405), and ok is false.
func (c *client) referrers(ctx context.Context, subject v1.Hash) (index []byte, ok bool, err error) {
	err = c.retry(ctx, "listing referrers", func() error {
		index, ok = nil, false
		resp, err := c.do(ctx, http.MethodGet, c.url("/referrers/%s", subject), nil, map[string]string{"Accept": string(types.OCIImageIndex)})
		if err != nil {
			return err
		}
		defer drain(resp)
		if resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Header.Get("Content-Type"), string(types.OCIImageIndex)) {
			ok = true
			index, err = io.ReadAll(io.LimitReader(resp.Body, 4<<20))
			return err
		}
		return checkResponse(resp, http.StatusOK, http.StatusNotFound, http.StatusBadRequest, http.StatusMethodNotAllowed)
	})
	if err != nil {
		return nil, false, fmt.Errorf("listing referrers of %s: %w", subject, err)
	}
	return index, ok, nil
}

// fetchManifest reads ref (a tag or digest) with its media type; found is
// false if ref names nothing. A manifest read by digest is checked against
// it, so a source registry cannot hand over other bytes.
func (c *client) fetchManifest(ctx context.Context, ref string) (raw []byte, mt types.MediaType, found bool, err error) {
	err = c.retry(ctx, "reading "+ref, func() error {
		raw, mt, found = nil, "", false
		resp, err := c.do(ctx, http.MethodGet, c.url("/manifests/%s", ref), nil, map[string]string{"Accept": manifestTypes})
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
		if raw, err = io.ReadAll(io.LimitReader(resp.Body, 4<<20)); err != nil {
			return err
		}
		found = true
		mt = types.MediaType(strings.TrimSpace(strings.Split(resp.Header.Get("Content-Type"), ";")[0]))
		return nil
	})
	if err != nil {
		return nil, "", false, fmt.Errorf("reading manifest %s: %w", ref, err)
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

// openBlob starts reading blob h. The caller retries: a stream that
// fails halfway is opened again.
func (c *client) openBlob(ctx context.Context, h v1.Hash) (io.ReadCloser, error) {
	resp, err := c.do(ctx, http.MethodGet, c.url("/blobs/%s", h), nil, nil)
	if err != nil {
		return nil, err
	}
	if err := checkResponse(resp, http.StatusOK); err != nil {
		drain(resp)
		return nil, fmt.Errorf("reading blob %s from %s: %w", h, c.repo, err)
	}
	return resp.Body, nil
}

// readBlob reads a small blob whole (at most limit bytes), checking it
// against its digest.
func (c *client) readBlob(ctx context.Context, h v1.Hash, limit int64) ([]byte, error) {
	var data []byte
	err := c.retry(ctx, "reading "+h.String(), func() error {
		rc, err := c.openBlob(ctx, h)
		if err != nil {
			return err
		}
		defer rc.Close()
		data, err = io.ReadAll(io.LimitReader(rc, limit+1))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading blob %s: %w", h, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("reading blob %s: larger than %d bytes", h, limit)
	}
	if got, _, _ := v1.SHA256(bytes.NewReader(data)); got != h {
		return nil, fmt.Errorf("reading blob %s: the registry sent content with digest %s", h, got)
	}
	return data, nil
}

// listReferrers lists what refers to subject: through the referrers API
// if the registry has it, else from the subject's fallback tag. An empty
// list is not an error.
func (c *client) listReferrers(ctx context.Context, subject v1.Hash) ([]v1.Descriptor, error) {
	var raw []byte
	api := c.api.Load()
	if api != apiAbsent {
		var ok bool
		var err error
		if raw, ok, err = c.referrers(ctx, subject); err != nil {
			return nil, err
		}
		if ok {
			c.api.Store(apiPresent)
		} else {
			c.api.Store(apiAbsent)
			api = apiAbsent
		}
	}
	if api == apiAbsent {
		var err error
		if raw, err = c.getManifest(ctx, fallbackTag(subject)); err != nil {
			return nil, err
		}
	}
	if raw == nil {
		return nil, nil
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("reading the referrers of %s: %w", subject, err)
	}
	return idx.Manifests, nil
}

// What a client knows of its registry's referrers API.
const (
	apiUnknown int32 = iota
	apiPresent
	apiAbsent
)
