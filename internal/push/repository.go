package push

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slipwayci/slipway/internal/clock"
)

// Repository speaks to one repository for what a promotion does besides
// copying an image: resolving and moving tags, reading manifests, small
// blobs and referrers, and attaching records. It is the push's own client,
// with the same retries and the same credentials.
type Repository struct {
	c         *client
	anonymous bool
	settle    time.Duration
}

// DialOptions configure Dial.
type DialOptions struct {
	Keychain  authn.Keychain
	Transport http.RoundTripper
	Backoff   Backoff
	// Push asks for push access; without it, pull only.
	Push bool
	// OnRetry, if set, hears of each retried request.
	OnRetry func(op string, err error, wait time.Duration)
	// Settle is how long Attach waits before it reads a fallback index
	// back a last time (default 200ms).
	Settle time.Duration
}

// Dial logs in to repo.
func Dial(ctx context.Context, repo name.Repository, o DialOptions) (*Repository, error) {
	if o.Transport == nil {
		o.Transport = http.DefaultTransport
	}
	if o.Keychain == nil {
		o.Keychain = authn.NewMultiKeychain()
	}
	auth, err := authn.Resolve(ctx, o.Keychain, repo)
	if err != nil {
		return nil, fmt.Errorf("finding credentials for %s: %w", repo, err)
	}
	scope := transport.PullScope
	if o.Push {
		scope = transport.PushScope
	}
	c, err := dial(ctx, repo, auth, o.Transport, []string{repo.Scope(scope)}, o.Backoff, o.OnRetry)
	anonymous := auth == authn.Anonymous
	if err != nil {
		return nil, explainAuth(err, repo, anonymous)
	}
	if o.Settle <= 0 {
		o.Settle = 200 * time.Millisecond
	}
	return &Repository{c: c, anonymous: anonymous, settle: o.Settle}, nil
}

// Name is the repository.
func (r *Repository) Name() name.Repository { return r.c.repo }

// Requests is how many requests were sent so far.
func (r *Repository) Requests() int64 { return r.c.requests.Load() }

func (r *Repository) explain(err error) error { return explainAuth(err, r.c.repo, r.anonymous) }

// Resolve returns the digest a tag or digest names, and false if it names
// nothing.
func (r *Repository) Resolve(ctx context.Context, ref string) (v1.Hash, bool, error) {
	h, ok, err := r.c.manifestDigest(ctx, ref)
	return h, ok, r.explain(err)
}

// Manifest reads what ref names, with its media type; false if nothing.
// A manifest read by digest is checked against it.
func (r *Repository) Manifest(ctx context.Context, ref string) ([]byte, types.MediaType, bool, error) {
	raw, mt, ok, err := r.c.fetchManifest(ctx, ref)
	return raw, mt, ok, r.explain(err)
}

// PutManifest writes raw under ref, a tag or its digest.
func (r *Repository) PutManifest(ctx context.Context, ref string, mt types.MediaType, raw []byte) error {
	_, err := r.c.putManifest(ctx, ref, mt, raw)
	return r.explain(err)
}

// Blob reads a blob of at most limit bytes, checked against its digest.
func (r *Repository) Blob(ctx context.Context, h v1.Hash, limit int64) ([]byte, error) {
	data, err := r.c.readBlob(ctx, h, limit)
	return data, r.explain(err)
}

// Referrers lists what refers to subject, through the referrers API or
// the fallback tag.
func (r *Repository) Referrers(ctx context.Context, subject v1.Hash) ([]v1.Descriptor, error) {
	ds, err := r.c.listReferrers(ctx, subject)
	return ds, r.explain(err)
}

// Artifact is content to attach to a manifest as an OCI 1.1 artifact.
type Artifact struct {
	Data         []byte
	MediaType    string
	ArtifactType string // default MediaType
	Annotations  map[string]string
}

// Attach pushes a as an artifact whose subject is subject (which must be
// in the repository) and makes it findable among the subject's referrers.
// It returns the artifact manifest's descriptor, as referrers list it.
//
// On a registry without the referrers API the fallback index is read,
// extended and written, then read back: another writer that replaced it in
// between is merged with again, so concurrent attachments to one subject
// both end up listed.
func (r *Repository) Attach(ctx context.Context, subject v1.Descriptor, a Artifact) (v1.Descriptor, error) {
	h, size, err := v1.SHA256(bytes.NewReader(a.Data))
	if err != nil {
		return v1.Descriptor{}, err
	}
	data := a.Data
	layer := blob{
		desc: v1.Descriptor{MediaType: types.MediaType(a.MediaType), Size: size, Digest: h},
		open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
	}
	subject = v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	art, err := newArtifact(subject, layer, a.ArtifactType, a.Annotations)
	if err != nil {
		return v1.Descriptor{}, err
	}
	for _, b := range art.blobs {
		if _, err := r.c.putBlob(ctx, b, "", true); err != nil {
			return v1.Descriptor{}, r.explain(err)
		}
	}
	desc := art.manifest.desc
	hdr, err := r.c.putManifest(ctx, desc.Digest.String(), desc.MediaType, art.manifest.raw)
	if err != nil {
		return v1.Descriptor{}, r.explain(err)
	}
	if hdr.Get("OCI-Subject") != "" {
		r.c.api.Store(apiPresent)
		return desc, nil
	}
	if r.c.api.Load() == apiUnknown {
		_, ok, err := r.c.referrers(ctx, subject.Digest)
		if err != nil {
			return v1.Descriptor{}, r.explain(err)
		}
		if ok {
			r.c.api.Store(apiPresent)
		} else {
			r.c.api.Store(apiAbsent)
		}
	}
	if r.c.api.Load() == apiPresent {
		return desc, nil
	}
	return desc, r.explain(r.addFallback(ctx, subject.Digest, desc))
}

// addFallback lists desc in subject's fallback index, and reads the index
// back, once at once and once after a pause, until it is there both times:
// a writer that read the index before our write and writes after it drops
// our entry, and the pause gives such a write time to land where we see it.
func (r *Repository) addFallback(ctx context.Context, subject v1.Hash, desc v1.Descriptor) error {
	tag := fallbackTag(subject)
	settled := false
	for range 10 {
		raw, err := r.c.getManifest(ctx, tag)
		if err != nil {
			return err
		}
		next, changed, err := mergeReferrers(raw, []v1.Descriptor{desc})
		if err != nil {
			return fmt.Errorf("tag %s: %w", tag, err)
		}
		if !changed {
			if settled {
				return nil
			}
			settled = true
			if err := clock.Sleep(ctx, r.settle+rand.N(r.settle/2+1)); err != nil {
				return err
			}
			continue
		}
		settled = false
		if _, err := r.c.putManifest(ctx, tag, types.OCIImageIndex, next); err != nil {
			return err
		}
	}
	ds, err := r.c.listReferrers(ctx, subject)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(ds, func(d v1.Descriptor) bool { return d.Digest == desc.Digest }) {
		return fmt.Errorf("tag %s: other writers keep replacing it; %s is not listed", tag, desc.Digest)
	}
	return nil
}
