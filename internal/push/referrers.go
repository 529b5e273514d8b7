package push

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Attachment is a file published as an OCI artifact that refers to one of
// the image's manifests, its subject: SBOMs now, scan evidence and
// signatures later. Each becomes an image manifest with an artifactType,
// the empty config, the file as its one layer, and the subject.
type Attachment struct {
	Path      string
	MediaType string // of the file, e.g. application/spdx+json
	// ArtifactType is what referrers are filtered by; default MediaType.
	ArtifactType string
	Subject      v1.Hash
	// Annotations go on the artifact manifest and its referrers entry.
	Annotations map[string]string
}

// Media types of the files slipway attaches.
const (
	MediaTypeSPDX      = "application/spdx+json"
	MediaTypeCycloneDX = "application/vnd.cyclonedx+json"
	MediaTypeInToto    = "application/vnd.in-toto+json"
)

// emptyConfig is the OCI 1.1 empty descriptor: the config of an artifact
// that has none, "{}".
var emptyConfig = v1.Descriptor{
	MediaType: "application/vnd.oci.empty.v1+json",
	Size:      2,
	Digest:    v1.Hash{Algorithm: "sha256", Hex: "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},
	Data:      []byte("{}"),
}

// artifact is a manifest that refers to one of the image's manifests
// (or to another artifact): an attachment made ready to push, or one
// read from a source repository. children are the manifests an artifact
// that is an index lists, pushed before it.
type artifact struct {
	subject  v1.Descriptor
	manifest manifest
	children []manifest
	blobs    []blob
}

// buildArtifacts turns attachments into artifact manifests whose subjects
// are manifests of img. The bytes depend only on the files and the
// annotations given, so a rerun makes the same digests and finds them.
func buildArtifacts(img *image, atts []Attachment) ([]artifact, error) {
	subjects := map[v1.Hash]v1.Descriptor{}
	for _, m := range img.manifests {
		subjects[m.desc.Digest] = v1.Descriptor{MediaType: m.desc.MediaType, Digest: m.desc.Digest, Size: m.desc.Size}
	}
	var out []artifact
	for _, a := range atts {
		subject, ok := subjects[a.Subject]
		if !ok {
			return nil, fmt.Errorf("attaching %s: its subject %s is not in the image", a.Path, a.Subject)
		}
		path := a.Path
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("attaching %s: %w", path, err)
		}
		h, size, err := v1.SHA256(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("attaching %s: %w", path, err)
		}
		layer := v1.Descriptor{
			MediaType:   types.MediaType(a.MediaType),
			Size:        size,
			Digest:      h,
			Annotations: map[string]string{"org.opencontainers.image.title": filepath.Base(path)},
		}
		art, err := newArtifact(subject, blob{desc: layer, open: func(context.Context) (io.ReadCloser, error) { return os.Open(path) }}, a.ArtifactType, a.Annotations)
		if err != nil {
			return nil, err
		}
		out = append(out, art)
	}
	return out, nil
}

// newArtifact wraps one layer in an OCI 1.1 artifact manifest: the
// artifactType (default the layer's media type), the empty config, the
// layer, the subject and the annotations.
func newArtifact(subject v1.Descriptor, layer blob, artifactType string, annotations map[string]string) (artifact, error) {
	if artifactType == "" {
		artifactType = string(layer.desc.MediaType)
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  artifactType,
		Config:        emptyConfig,
		Layers:        []v1.Descriptor{layer.desc},
		Subject:       &subject,
		Annotations:   annotations,
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return artifact{}, err
	}
	mh, msize, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return artifact{}, err
	}
	return artifact{
		subject: subject,
		manifest: manifest{
			desc: v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: msize, Digest: mh, ArtifactType: artifactType, Annotations: annotations},
			raw:  raw,
		},
		blobs: []blob{
			{desc: emptyConfig, open: func(context.Context) (io.ReadCloser, error) {
				return io.NopCloser(bytes.NewReader(emptyConfig.Data)), nil
			}},
			layer,
		},
	}, nil
}

// fallbackTag is where the OCI 1.1 distribution spec keeps the referrers
// of subject on a registry without the referrers API: an index tagged
// <alg>-<hex>.
func fallbackTag(subject v1.Hash) string {
	return subject.Algorithm + "-" + subject.Hex
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
