package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slipwayci/slipway/internal/clock"
)

// Media types of the files slipway attaches.
const (
	MediaTypeSPDX      = "application/spdx+json"
	MediaTypeCycloneDX = "application/vnd.cyclonedx+json"
	MediaTypeInToto    = "application/vnd.in-toto+json"
)

// AnnotationPredicateType notes an in-toto statement's predicate type on
// its artifact, as cosign and oras do.
const AnnotationPredicateType = "in-toto.io/predicate-type"

// EmptyConfig is the OCI 1.1 empty descriptor, "{}": the config of an
// artifact that has none.
func EmptyConfig() v1.Descriptor {
	return v1.Descriptor{
		MediaType: "application/vnd.oci.empty.v1+json",
		Size:      2,
		Digest:    v1.Hash{Algorithm: "sha256", Hex: "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},
		Data:      []byte("{}"),
	}
}

// ArtifactManifest wraps one layer in an OCI 1.1 artifact manifest: the
// artifactType (default the layer's media type), the empty config, the
// layer, the subject and the annotations. It returns the manifest and its
// descriptor as a referrers listing shows it. The bytes depend only on the
// arguments, so the same attachment made twice has one digest.
func ArtifactManifest(subject, layer v1.Descriptor, artifactType string, annotations map[string]string) ([]byte, v1.Descriptor, error) {
	if artifactType == "" {
		artifactType = string(layer.MediaType)
	}
	subject = v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  artifactType,
		Config:        EmptyConfig(),
		Layers:        []v1.Descriptor{layer},
		Subject:       &subject,
		Annotations:   annotations,
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	h, size, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	return raw, v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: size, Digest: h, ArtifactType: artifactType, Annotations: annotations}, nil
}

// FallbackTag is where the OCI 1.1 distribution spec keeps the referrers
// of subject on a registry without the referrers API: an index tagged
// <alg>-<hex>.
func FallbackTag(subject v1.Hash) string {
	return subject.Algorithm + "-" + subject.Hex
}

// referrersIndex asks the OCI 1.1 referrers endpoint what refers to
// subject. A registry with the API answers 200 and an index (empty if
// nothing does); one without answers 404 (or 400, or 405), and ok is false.
func (r *Repository) referrersIndex(ctx context.Context, subject v1.Hash) (index []byte, ok bool, err error) {
	err = r.retry(ctx, "listing referrers", r.timeout, func(ctx context.Context) error {
		index, ok = nil, false
		resp, err := r.do(ctx, http.MethodGet, r.url("/referrers/%s", subject), nil, map[string]string{"Accept": string(types.OCIImageIndex)})
		if err != nil {
			return err
		}
		defer drain(resp)
		if resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Header.Get("Content-Type"), string(types.OCIImageIndex)) {
			ok = true
			index, err = readLimited(resp.Body, MaxManifestSize)
			return err
		}
		return checkResponse(resp, http.StatusOK, http.StatusNotFound, http.StatusBadRequest, http.StatusMethodNotAllowed)
	})
	if err != nil {
		return nil, false, r.explain(fmt.Errorf("listing referrers of %s: %w", subject, err))
	}
	if ok {
		r.api.Store(apiPresent)
	} else {
		r.api.Store(apiAbsent)
	}
	return index, ok, nil
}

// ReferrersAPI reports whether the registry has the referrers API: known
// from a listing or from a write it acknowledged with OCI-Subject, else
// asked about subject.
func (r *Repository) ReferrersAPI(ctx context.Context, subject v1.Hash) (bool, error) {
	if api := r.api.Load(); api != apiUnknown {
		return api == apiPresent, nil
	}
	_, ok, err := r.referrersIndex(ctx, subject)
	return ok, err
}

// Referrers lists what refers to subject: through the referrers API if
// the registry has it, else from the subject's fallback tag. An empty list
// is not an error; more than MaxReferrers is.
func (r *Repository) Referrers(ctx context.Context, subject v1.Hash) ([]v1.Descriptor, error) {
	var raw []byte
	if r.api.Load() != apiAbsent {
		var ok bool
		var err error
		if raw, ok, err = r.referrersIndex(ctx, subject); err != nil {
			return nil, err
		}
		if !ok {
			raw = nil
		}
	}
	if r.api.Load() == apiAbsent {
		var err error
		if raw, _, _, err = r.Manifest(ctx, FallbackTag(subject)); err != nil {
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
	if n := len(idx.Manifests); n > MaxReferrers {
		return nil, fmt.Errorf("reading the referrers of %s: %s lists %d, more than the %d slipway reads", subject, r.repo, n, MaxReferrers)
	}
	return idx.Manifests, nil
}

// AddReferrers lists descs in subject's fallback index, for a registry
// without the referrers API, keeping whatever others put there; it reports
// whether it wrote. Without conditional writes (distribution 2.8 has none),
// two writers adding to one subject at once can lose an entry: Attach reads
// back until its entry stays; a push rerun restores it.
func (r *Repository) AddReferrers(ctx context.Context, subject v1.Hash, descs []v1.Descriptor) (bool, error) {
	tag := FallbackTag(subject)
	raw, _, _, err := r.Manifest(ctx, tag)
	if err != nil {
		return false, err
	}
	next, changed, err := mergeReferrers(raw, descs)
	if err != nil {
		return false, fmt.Errorf("tag %s: %w", tag, err)
	}
	if !changed {
		return false, nil
	}
	return true, r.PutManifest(ctx, tag, types.OCIImageIndex, next)
}

// mergeReferrers adds the descriptors in add that the fallback index raw
// (nil if there is none yet) lacks, keeping whatever others put there. It
// returns the new index and whether it differs from raw.
func mergeReferrers(raw []byte, add []v1.Descriptor) ([]byte, bool, error) {
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{}}
	if raw != nil {
		if err := json.Unmarshal(raw, &idx); err != nil {
			return nil, false, fmt.Errorf("reading the referrers fallback index: %w", err)
		}
		if idx.MediaType != types.OCIImageIndex {
			return nil, false, fmt.Errorf("the referrers fallback tag holds %q, not an OCI image index", idx.MediaType)
		}
	}
	have := map[v1.Hash]bool{}
	for _, d := range idx.Manifests {
		have[d.Digest] = true
	}
	changed := raw == nil
	for _, d := range add {
		if !have[d.Digest] {
			idx.Manifests = append(idx.Manifests, d)
			have[d.Digest] = true
			changed = true
		}
	}
	if !changed {
		return raw, false, nil
	}
	out, err := json.Marshal(idx)
	return out, true, err
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
	layer := v1.Descriptor{MediaType: types.MediaType(a.MediaType), Size: size, Digest: h}
	raw, desc, err := ArtifactManifest(subject, layer, a.ArtifactType, a.Annotations)
	if err != nil {
		return v1.Descriptor{}, err
	}
	empty := EmptyConfig()
	for _, b := range []Blob{{Desc: empty, Open: bytesOpener(empty.Data)}, {Desc: layer, Open: bytesOpener(data)}} {
		if _, err := r.PutBlob(ctx, b, "", true); err != nil {
			return v1.Descriptor{}, err
		}
	}
	if err := r.PutManifest(ctx, desc.Digest.String(), desc.MediaType, raw); err != nil {
		return v1.Descriptor{}, err
	}
	api, err := r.ReferrersAPI(ctx, subject.Digest)
	if err != nil || api {
		return desc, err
	}
	return desc, r.addFallback(ctx, subject.Digest, desc)
}

// addFallback lists desc in subject's fallback index, and reads the index
// back, once at once and once after a pause, until it is there both times:
// a writer that read the index before our write and writes after it drops
// our entry, and the pause gives such a write time to land where we see it.
func (r *Repository) addFallback(ctx context.Context, subject v1.Hash, desc v1.Descriptor) error {
	tag := FallbackTag(subject)
	settled := false
	for range 10 {
		wrote, err := r.AddReferrers(ctx, subject, []v1.Descriptor{desc})
		if err != nil {
			return err
		}
		if wrote {
			settled = false
			continue
		}
		if settled {
			return nil
		}
		settled = true
		if err := clock.Sleep(ctx, r.settle+rand.N(r.settle/2+1)); err != nil {
			return err
		}
	}
	ds, err := r.Referrers(ctx, subject)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(ds, func(d v1.Descriptor) bool { return d.Digest == desc.Digest }) {
		return fmt.Errorf("tag %s: other writers keep replacing it; %s is not listed", tag, desc.Digest)
	}
	return nil
}

func bytesOpener(data []byte) func(context.Context) (io.ReadCloser, error) {
	return func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
}
