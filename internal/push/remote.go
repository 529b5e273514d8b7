package push

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"

	"github.com/slipwayci/slipway/internal/registry"
)

// maxReferrerDepth bounds how far referrers of referrers are followed: a
// signature of an attestation of an image is two levels down. maxArtifacts
// bounds what one copy carries along, whatever each listing holds.
const (
	maxReferrerDepth = 4
	maxArtifacts     = 10000
)

// readRemote reads the image with digest d from the repository c speaks
// to, with every artifact that refers to its manifests, and to those
// artifacts in turn: SBOMs, attestations, signatures and promotion
// records travel with the image. Manifests are read now and checked
// against their digests; blobs are streamed from the source when a
// destination needs them, and never when it can mount them.
func readRemote(ctx context.Context, c *registry.Repository, d v1.Hash, jobs int, keep func(context.Context, Referrer) (bool, error)) (*image, error) {
	r := &remoteReader{c: c, img: &image{}, seen: map[v1.Hash]bool{}}
	root, err := r.visit(ctx, v1.Descriptor{Digest: d})
	if err != nil {
		return nil, fmt.Errorf("reading %s@%s: %w", c.Name(), d, err)
	}
	r.img.root = root
	if r.img.artifacts, r.img.left, err = readReferrers(ctx, c, r.img.manifests, jobs, keep); err != nil {
		return nil, fmt.Errorf("reading what refers to %s@%s: %w", c.Name(), d, err)
	}
	return r.img, nil
}

type remoteReader struct {
	c    *registry.Repository
	img  *image
	seen map[v1.Hash]bool
	// first is a manifest read before the walk began, so it is not read
	// twice.
	first *manifest
}

// visit reads the manifest d names, its children first, and returns d
// completed with the media type and size the registry gave.
func (r *remoteReader) visit(ctx context.Context, d v1.Descriptor) (v1.Descriptor, error) {
	var raw []byte
	var mt types.MediaType
	if f := r.first; f != nil && f.desc.Digest == d.Digest {
		raw, mt = f.raw, f.desc.MediaType
	} else {
		var found bool
		var err error
		if raw, mt, found, err = r.c.Manifest(ctx, d.Digest.String()); err != nil {
			return d, err
		}
		if !found {
			return d, fmt.Errorf("manifest %s is not in %s", d.Digest, r.c.Name())
		}
	}
	if d.MediaType == "" {
		d.MediaType = mt
	}
	d.Size = int64(len(raw))
	if r.seen[d.Digest] {
		return d, nil
	}
	r.seen[d.Digest] = true
	if d.MediaType.IsIndex() {
		idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			return d, fmt.Errorf("parsing index %s: %w", d.Digest, err)
		}
		for _, child := range idx.Manifests {
			if r.seen[child.Digest] {
				continue
			}
			if _, err := r.visit(ctx, child); err != nil {
				return d, err
			}
		}
	} else {
		m, err := v1.ParseManifest(bytes.NewReader(raw))
		if err != nil {
			return d, fmt.Errorf("parsing manifest %s: %w", d.Digest, err)
		}
		for _, b := range append([]v1.Descriptor{m.Config}, m.Layers...) {
			if !b.MediaType.IsDistributable() || r.seen[b.Digest] {
				continue
			}
			r.seen[b.Digest] = true
			r.img.blobs = append(r.img.blobs, registry.Blob{Desc: b, Open: r.opener(b.Digest)})
		}
	}
	r.img.manifests = append(r.img.manifests, manifest{desc: d, raw: raw})
	return d, nil
}

func (r *remoteReader) opener(h v1.Hash) func(context.Context) (io.ReadCloser, error) {
	c := r.c
	return func(ctx context.Context) (io.ReadCloser, error) { return c.OpenBlob(ctx, h) }
}

// readReferrers follows the referrers of manifests, level by level, and
// reads each artifact found. An entry whose manifest is gone, or that does
// not name the subject it is listed under, is no evidence of anything and
// is left behind, as is one keep (if set) refuses, with what refers to it;
// left counts those keep refused.
func readReferrers(ctx context.Context, c *registry.Repository, manifests []manifest, jobs int, keep func(context.Context, Referrer) (bool, error)) (out []artifact, left int, err error) {
	var subjects []v1.Descriptor
	seen := map[v1.Hash]bool{}
	for _, m := range manifests {
		subjects = append(subjects, v1.Descriptor{MediaType: m.desc.MediaType, Digest: m.desc.Digest, Size: m.desc.Size})
		seen[m.desc.Digest] = true
	}
	for depth := 0; depth < maxReferrerDepth && len(subjects) > 0; depth++ {
		lists := make([][]v1.Descriptor, len(subjects))
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(jobs)
		for i, s := range subjects {
			g.Go(func() error {
				var err error
				lists[i], err = c.Referrers(gctx, s.Digest)
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return nil, 0, err
		}
		type job struct {
			subject, desc v1.Descriptor
		}
		var jobsAt []job
		for i, s := range subjects {
			for _, d := range lists[i] {
				if !seen[d.Digest] {
					seen[d.Digest] = true
					jobsAt = append(jobsAt, job{s, d})
				}
			}
		}
		if n := len(out) + len(jobsAt); n > maxArtifacts {
			return nil, 0, fmt.Errorf("more than %d artifacts refer to the image; slipway copies at most that many", maxArtifacts)
		}
		arts := make([]*artifact, len(jobsAt))
		g, gctx = errgroup.WithContext(ctx)
		g.SetLimit(jobs)
		for i, j := range jobsAt {
			g.Go(func() error {
				var err error
				arts[i], err = readArtifact(gctx, c, j.subject, j.desc)
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return nil, 0, err
		}
		subjects = nil
		for _, a := range arts {
			if a == nil {
				continue
			}
			if keep != nil {
				ok, err := keep(ctx, a.referrer())
				if err != nil {
					return nil, 0, err
				}
				if !ok {
					left++
					continue
				}
			}
			out = append(out, *a)
			d := a.manifest.desc
			subjects = append(subjects, v1.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size})
		}
	}
	return out, left, nil
}

// readArtifact reads one referrer of subject as listed by desc; nil if it
// is dangling or refers to something else.
func readArtifact(ctx context.Context, c *registry.Repository, subject, desc v1.Descriptor) (*artifact, error) {
	raw, mt, found, err := c.Manifest(ctx, desc.Digest.String())
	if err != nil || !found {
		return nil, err
	}
	var probe struct {
		ArtifactType string            `json:"artifactType"`
		Config       *v1.Descriptor    `json:"config"`
		Subject      *v1.Descriptor    `json:"subject"`
		Annotations  map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil || probe.Subject == nil || probe.Subject.Digest != subject.Digest {
		return nil, nil
	}
	// The listing is rebuilt from the manifest, as the spec has registries
	// do: what a source's listing says is not taken on trust.
	desc.ArtifactType, desc.Annotations = probe.ArtifactType, probe.Annotations
	if desc.ArtifactType == "" && probe.Config != nil {
		desc.ArtifactType = string(probe.Config.MediaType)
	}
	desc.MediaType = mt
	r := &remoteReader{c: c, img: &image{}, seen: map[v1.Hash]bool{}, first: &manifest{desc: v1.Descriptor{Digest: desc.Digest, MediaType: mt}, raw: raw}}
	if _, err := r.visit(ctx, desc); err != nil {
		return nil, fmt.Errorf("reading referrer %s: %w", desc.Digest, err)
	}
	ms := r.img.manifests
	top := ms[len(ms)-1]
	// The listing's descriptor carries the artifactType and annotations
	// that a fallback index lists; the size is what was read.
	top.desc.Size = int64(len(top.raw))
	return &artifact{subject: subject, manifest: top, children: ms[:len(ms)-1], blobs: r.img.blobs}, nil
}

// maxKeepBlob bounds what Referrer.Blob reads: a bundle or a statement is
// kilobytes, and a listing is not to make us read gigabytes.
const maxKeepBlob = 16 << 20

// referrer describes a for Options.Keep.
func (a *artifact) referrer() Referrer {
	return Referrer{
		Subject: a.subject.Digest, Digest: a.manifest.desc.Digest, ArtifactType: a.manifest.desc.ArtifactType,
		Blob: func(ctx context.Context, mediaType string) ([]byte, error) {
			for _, b := range a.blobs {
				if string(b.Desc.MediaType) != mediaType {
					continue
				}
				if b.Desc.Size > maxKeepBlob {
					return nil, fmt.Errorf("reading %s of %s: %d bytes, more than %d", mediaType, a.manifest.desc.Digest, b.Desc.Size, maxKeepBlob)
				}
				rc, err := b.Open(ctx)
				if err != nil {
					return nil, fmt.Errorf("reading %s of %s: %w", mediaType, a.manifest.desc.Digest, err)
				}
				defer rc.Close()
				data, err := io.ReadAll(io.LimitReader(rc, maxKeepBlob+1))
				if err != nil {
					return nil, fmt.Errorf("reading %s of %s: %w", mediaType, a.manifest.desc.Digest, err)
				}
				return data, nil
			}
			return nil, nil
		},
	}
}
