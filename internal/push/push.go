// Package push publishes an image to registries: every blob, then every
// manifest, then the index, then the artifacts that refer to its images,
// and the tags last, so a tag never names an image that is not all there.
// Blobs already in a repository are skipped, blobs in another repository of
// the same registry are mounted, and failed requests are retried with
// backoff. The image comes from the image step's OCI layout or, for a
// promotion, from another repository, with what refers to it.
package push

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/slipwayci/slipway/internal/registry"
)

// Options configure Push.
type Options struct {
	// Layout is the OCI image layout directory to push from, unless From
	// is set: then the image is copied from that repository, blobs
	// streamed from it (or mounted, on the same registry), with every
	// artifact that refers to it. Digest names the index (or image).
	Layout string
	From   *name.Repository
	Digest v1.Hash
	// Attachments are pushed as referrers of the image's manifests.
	Attachments []Attachment
	To          []name.Repository
	// Tags are written last, in every destination.
	Tags []string
	// Registry reaches the registries: credentials, transport, retries.
	// Nil means anonymous, with no retries.
	Registry *registry.Client
	// Jobs is how many uploads run at once per destination (default 4).
	Jobs int
	// MountFrom lists repositories, such as the base image's, whose blobs
	// may be mounted into a destination on the same registry.
	MountFrom []name.Repository
	// Progress hears what happens; nil for silence. Done hears
	// ResultLine of each destination's result.
	Progress registry.Progress
	// Keep, if set, chooses which artifacts found referring to the image
	// at From are copied: one it refuses is left behind, and so is
	// whatever refers to it. Nil copies them all.
	Keep func(ctx context.Context, r Referrer) (bool, error)
	// Sign, if set, signs the image at each destination once its
	// manifests and artifacts are there and before any tag names it, so
	// that a tag never names an image without its signatures.
	Sign Signer
}

// A Signer attaches signatures for an image already in repo: the root
// (index or manifest) and the manifests an index lists. It returns how
// many bundles it attached.
type Signer interface {
	Sign(ctx context.Context, repo *registry.Repository, root v1.Descriptor, manifests []v1.Descriptor) (int, error)
}

// Referrer is an artifact found referring to a manifest of the image
// being copied, for Options.Keep to judge.
type Referrer struct {
	Subject, Digest v1.Hash
	ArtifactType    string
	// Blob reads the artifact's first blob of the media type given (a
	// bundle's JSON, a statement), at most maxKeepBlob bytes; nil if it
	// has none.
	Blob func(ctx context.Context, mediaType string) ([]byte, error)
}

// Result is what happened at one destination.
type Result struct {
	Repo   name.Repository
	Digest v1.Hash
	// Tags are the tags that now name Digest.
	Tags []string
	// Referrers is how the artifacts are found: "api", "tag" (the
	// sha256-<hex> fallback) or "" when there were none.
	Referrers string
	Stats     Stats
	Duration  time.Duration
	Err       error
}

// Stats count a destination's work.
type Stats struct {
	Uploaded, Existing, Mounted                int
	UploadedBytes, ExistingBytes, MountedBytes int64
	// Manifests written, including artifacts, fallback indexes and tags.
	Manifests int
	// ImageExisted is set when the index was already there, so no blob or
	// manifest of the image needed checking.
	ImageExisted bool
	Artifacts    int
	// Signatures is how many signature bundles were attached.
	Signatures int
	// LeftBehind is how many artifacts of the source Options.Keep
	// refused to copy.
	LeftBehind int
	Requests   int64
	Retries    int
}

// Push pushes to every destination and returns one result for each, in
// the order of o.To, with the failures joined in the error. Destinations on
// different registries go in parallel; on one registry, the first goes
// alone so that the others can mount its blobs instead of uploading them
// again.
func Push(ctx context.Context, o Options) ([]Result, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	img, err := o.read(ctx)
	if err != nil {
		return nil, err
	}
	built, err := buildArtifacts(img, o.Attachments)
	if err != nil {
		return nil, err
	}
	img.artifacts = append(img.artifacts, built...)

	results := make([]Result, len(o.To))
	byRegistry := map[string][]int{}
	var order []string
	for i, repo := range o.To {
		reg := repo.RegistryStr()
		if _, ok := byRegistry[reg]; !ok {
			order = append(order, reg)
		}
		byRegistry[reg] = append(byRegistry[reg], i)
	}
	var wg sync.WaitGroup
	for _, reg := range order {
		idx := byRegistry[reg]
		shared := &registryState{where: map[v1.Hash]string{}}
		wg.Go(func() {
			results[idx[0]] = o.pushTo(ctx, img, o.To[idx[0]], shared)
			var inner sync.WaitGroup
			for _, i := range idx[1:] {
				inner.Go(func() { results[i] = o.pushTo(ctx, img, o.To[i], shared) })
			}
			inner.Wait()
		})
	}
	wg.Wait()

	var errs []error
	for _, r := range results {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("pushing to %s: %w", r.Repo, r.Err))
		}
	}
	return results, errors.Join(errs...)
}

// read reads the image from the layout or the source repository.
func (o *Options) read(ctx context.Context) (*image, error) {
	if o.From == nil {
		return readLayout(o.Layout, o.Digest)
	}
	c, err := o.dialSource(ctx)
	if err != nil {
		return nil, err
	}
	return readRemote(ctx, c, o.Digest, o.Jobs, o.Keep)
}

// dialSource logs in to the source repository to read it.
func (o *Options) dialSource(ctx context.Context) (*registry.Repository, error) {
	src := *o.From
	return o.Registry.Dial(ctx, src, registry.DialOptions{OnRetry: func(op string, err error, wait time.Duration) {
		if o.Progress != nil {
			o.Progress.Retry(src, op, err, wait)
		}
	}})
}

func (o *Options) defaults() error {
	if o.Jobs <= 0 {
		o.Jobs = 4
	}
	if o.Registry == nil {
		c, err := registry.New(registry.Options{})
		if err != nil {
			return err
		}
		o.Registry = c
	}
	return nil
}

// registryState is what the destinations on one registry know of it:
// which repository holds each blob, for mounts.
type registryState struct {
	mu    sync.Mutex
	where map[v1.Hash]string
}

func (s *registryState) holder(h v1.Hash) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.where[h]
}

func (s *registryState) add(h v1.Hash, repo string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.where[h]; !ok {
		s.where[h] = repo
	}
}

// dest is one destination being pushed.
type dest struct {
	o      *Options
	img    *image
	repo   name.Repository
	c      *registry.Repository
	shared *registryState
	// mountFrom are the o.MountFrom repositories on this registry.
	mountFrom []string
	stats     Stats
	mu        sync.Mutex
	retries   atomic.Int64
}

func (o *Options) pushTo(ctx context.Context, img *image, repo name.Repository, shared *registryState) Result {
	start := time.Now()
	d := &dest{o: o, img: img, repo: repo, shared: shared}
	res := Result{Repo: repo, Digest: img.root.Digest}
	res.Referrers, res.Tags, res.Err = d.push(ctx)
	res.Stats = d.stats
	res.Stats.LeftBehind = img.left
	res.Stats.Retries = int(d.retries.Load())
	if d.c != nil {
		res.Stats.Requests = d.c.Requests()
	}
	res.Duration = time.Since(start)
	if o.Progress != nil {
		o.Progress.Done(repo, ResultLine(res))
	}
	return res
}

func (d *dest) push(ctx context.Context) (referrers string, tags []string, err error) {
	if err := d.dial(ctx); err != nil {
		return "", nil, err
	}
	if d.o.Progress != nil {
		var total int64
		for _, b := range d.img.blobs {
			total += b.Desc.Size
		}
		d.o.Progress.Start(d.repo, total)
	}
	// A registry accepts an index only when every manifest it lists is
	// there, and a manifest only when its blobs are: if the index is
	// here, so is the rest, and one request spares one per blob.
	_, found, err := d.c.Resolve(ctx, d.img.root.Digest.String())
	if err != nil {
		return "", nil, err
	}
	if found {
		d.stats.ImageExisted = true
		for _, b := range d.img.blobs {
			d.shared.add(b.Desc.Digest, d.repo.RepositoryStr())
		}
	} else {
		if err := d.putBlobs(ctx, d.img.blobs); err != nil {
			return "", nil, err
		}
		if err := d.putManifests(ctx); err != nil {
			return "", nil, err
		}
	}
	if referrers, err = d.putArtifacts(ctx); err != nil {
		return "", nil, err
	}
	if d.o.Sign != nil {
		if err := d.sign(ctx); err != nil {
			return "", nil, err
		}
	}
	tags, err = d.putTags(ctx)
	return referrers, tags, err
}

func (d *dest) dial(ctx context.Context) error {
	// A source on this registry comes first among the repositories to
	// mount from: a promotion inside one registry moves no blob bytes.
	from := d.o.MountFrom
	if d.o.From != nil {
		from = append([]name.Repository{*d.o.From}, from...)
	}
	for _, m := range from {
		if m.RegistryStr() == d.repo.RegistryStr() && m.RepositoryStr() != d.repo.RepositoryStr() {
			d.mountFrom = append(d.mountFrom, m.RepositoryStr())
		}
	}
	// Blobs may also be mounted from the other destinations on this
	// registry, as they receive them.
	var err error
	d.c, err = d.o.Registry.Dial(ctx, d.repo, registry.DialOptions{
		Push:      true,
		MountFrom: append(slices.Clone(d.o.To), from...),
		OnRetry: func(op string, err error, wait time.Duration) {
			d.retries.Add(1)
			if d.o.Progress != nil {
				d.o.Progress.Retry(d.repo, op, err, wait)
			}
		},
		OnBytes: func(n int64) {
			if d.o.Progress != nil {
				d.o.Progress.Bytes(d.repo, n)
			}
		},
	})
	return err
}

// putBlobs makes every blob present, Jobs at a time. A blob that another
// destination on this registry already holds is mounted from there without
// a check; one that may be in a MountFrom repository is checked first, so a
// rerun never uploads what landed before.
func (d *dest) putBlobs(ctx context.Context, blobs []registry.Blob) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(d.o.Jobs)
	for _, b := range blobs {
		g.Go(func() error {
			from, check := d.shared.holder(b.Desc.Digest), false
			if from == "" && len(d.mountFrom) > 0 {
				from, check = d.mountFrom[0], true
			}
			if from == d.repo.RepositoryStr() {
				from = ""
			}
			how, err := d.c.PutBlob(ctx, b, from, check || from == "")
			if err != nil {
				return err
			}
			d.count(b.Desc, how)
			d.shared.add(b.Desc.Digest, d.repo.RepositoryStr())
			return nil
		})
	}
	return g.Wait()
}

func (d *dest) count(desc v1.Descriptor, how registry.BlobOutcome) {
	d.mu.Lock()
	switch how {
	case registry.Uploaded:
		d.stats.Uploaded++
		d.stats.UploadedBytes += desc.Size
	case registry.Existing:
		d.stats.Existing++
		d.stats.ExistingBytes += desc.Size
	case registry.Mounted:
		d.stats.Mounted++
		d.stats.MountedBytes += desc.Size
	}
	d.mu.Unlock()
	if d.o.Progress != nil {
		d.o.Progress.Blob(d.repo, desc, how)
	}
}

func (d *dest) wrote(n int) {
	d.mu.Lock()
	d.stats.Manifests += n
	d.mu.Unlock()
}

// putManifests writes the image manifests in parallel, then the indexes
// in order, children before parents, the root last. Each goes by digest:
// only putTags names the image.
func (d *dest) putManifests(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(d.o.Jobs)
	var indexes []manifest
	for _, m := range d.img.manifests {
		if m.desc.MediaType.IsIndex() {
			indexes = append(indexes, m)
			continue
		}
		g.Go(func() error {
			err := d.c.PutManifest(gctx, m.desc.Digest.String(), m.desc.MediaType, m.raw)
			d.wrote(1)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, m := range indexes {
		if err := d.c.PutManifest(ctx, m.desc.Digest.String(), m.desc.MediaType, m.raw); err != nil {
			return err
		}
		d.wrote(1)
	}
	return nil
}

// putArtifacts pushes the artifacts the destination lacks, then makes sure
// they can be found: through the referrers API if the registry has one
// (it says so with OCI-Subject when it takes an artifact, or answers the
// endpoint), else through the fallback tag of each subject.
//
// When the image was there before, what refers to each subject is listed
// first, one request a subject, and only what is missing is pushed; an
// unchanged re-push ends there. When it was not, nothing of ours can refer
// to it yet, and the listing is skipped.
func (d *dest) putArtifacts(ctx context.Context) (string, error) {
	arts := d.img.artifacts
	if len(arts) == 0 {
		return "", nil
	}
	var subjects []v1.Hash
	bySubject := map[v1.Hash][]v1.Descriptor{}
	for _, a := range arts {
		s := a.subject.Digest
		if _, ok := bySubject[s]; !ok {
			subjects = append(subjects, s)
		}
		bySubject[s] = append(bySubject[s], a.manifest.desc)
	}

	// listed[s] holds what was found referring to s, when it was looked.
	var listed map[v1.Hash]map[v1.Hash]bool
	present := map[v1.Hash]bool{}
	if d.stats.ImageExisted {
		lists := make([][]v1.Descriptor, len(subjects))
		// The first listing finds out whether the registry has the API,
		// so that the others go straight to the right place.
		var err error
		if lists[0], err = d.c.Referrers(ctx, subjects[0]); err != nil {
			return "", err
		}
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(d.o.Jobs)
		for i, s := range subjects[1:] {
			g.Go(func() error {
				var err error
				lists[i+1], err = d.c.Referrers(gctx, s)
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return "", err
		}
		listed = map[v1.Hash]map[v1.Hash]bool{}
		for i, s := range subjects {
			listed[s] = map[v1.Hash]bool{}
			for _, m := range lists[i] {
				present[m.Digest] = true
				listed[s][m.Digest] = true
			}
		}
	}

	var missing []artifact
	for _, a := range arts {
		if !present[a.manifest.desc.Digest] {
			missing = append(missing, a)
		}
	}
	var blobs []registry.Blob
	var children []manifest
	seen := map[v1.Hash]bool{}
	for _, a := range missing {
		for _, b := range a.blobs {
			if !seen[b.Desc.Digest] {
				seen[b.Desc.Digest] = true
				blobs = append(blobs, b)
			}
		}
		children = append(children, a.children...)
	}
	if err := d.putBlobs(ctx, blobs); err != nil {
		return "", err
	}
	// An artifact that is an index (rare) needs its manifests first.
	for _, m := range children {
		if err := d.c.PutManifest(ctx, m.desc.Digest.String(), m.desc.MediaType, m.raw); err != nil {
			return "", err
		}
		d.wrote(1)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(d.o.Jobs)
	for _, a := range missing {
		g.Go(func() error {
			if err := d.c.PutManifest(gctx, a.manifest.desc.Digest.String(), a.manifest.desc.MediaType, a.manifest.raw); err != nil {
				return err
			}
			d.wrote(1)
			d.mu.Lock()
			d.stats.Artifacts++
			d.mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return "", err
	}
	api, err := d.c.ReferrersAPI(ctx, subjects[0])
	if err != nil {
		return "", err
	}
	if api {
		return "api", nil
	}
	return "tag", d.putFallbackTags(ctx, subjects, bySubject, listed)
}

// putFallbackTags adds each subject's artifacts to its sha256-<hex> index.
// A subject whose listing showed them all is left alone, so an unchanged
// re-push writes nothing.
func (d *dest) putFallbackTags(ctx context.Context, subjects []v1.Hash, bySubject map[v1.Hash][]v1.Descriptor, listed map[v1.Hash]map[v1.Hash]bool) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(d.o.Jobs)
	for _, s := range subjects {
		if l, ok := listed[s]; ok && !slices.ContainsFunc(bySubject[s], func(x v1.Descriptor) bool { return !l[x.Digest] }) {
			continue
		}
		g.Go(func() error {
			wrote, err := d.c.AddReferrers(ctx, s, bySubject[s])
			if wrote {
				d.wrote(1)
			}
			return err
		})
	}
	return g.Wait()
}

// sign has the image signed in this repository: the root and, for an
// index, the manifests it lists.
func (d *dest) sign(ctx context.Context) error {
	root := d.img.manifests[len(d.img.manifests)-1]
	var children []v1.Descriptor
	if root.desc.MediaType.IsIndex() {
		idx, err := v1.ParseIndexManifest(bytes.NewReader(root.raw))
		if err != nil {
			return fmt.Errorf("reading index %s: %w", root.desc.Digest, err)
		}
		children = idx.Manifests
	}
	n, err := d.o.Sign.Sign(ctx, d.c, root.desc, children)
	d.mu.Lock()
	d.stats.Signatures += n
	d.mu.Unlock()
	return err
}

// putTags points every tag at the image, last of all. When the image was
// there before, a tag already naming it is left alone, so a rerun writes
// nothing (and the registry announces no push that changed nothing).
func (d *dest) putTags(ctx context.Context) ([]string, error) {
	root := d.img.manifests[len(d.img.manifests)-1]
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(d.o.Jobs)
	for _, tag := range d.o.Tags {
		g.Go(func() error {
			if d.stats.ImageExisted {
				h, found, err := d.c.Resolve(ctx, tag)
				if err != nil {
					return err
				}
				if found && h == root.desc.Digest {
					return nil
				}
			}
			if err := d.c.PutManifest(ctx, tag, root.desc.MediaType, root.raw); err != nil {
				return err
			}
			d.wrote(1)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return d.o.Tags, nil
}
