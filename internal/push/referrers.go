package push

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slipwayci/slipway/internal/registry"
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

// artifact is a manifest that refers to one of the image's manifests
// (or to another artifact): an attachment made ready to push, or one
// read from a source repository. children are the manifests an artifact
// that is an index lists, pushed before it.
type artifact struct {
	subject  v1.Descriptor
	manifest manifest
	children []manifest
	blobs    []registry.Blob
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
		art, err := newArtifact(subject, registry.Blob{Desc: layer, Open: func(context.Context) (io.ReadCloser, error) { return os.Open(path) }}, a.ArtifactType, a.Annotations)
		if err != nil {
			return nil, err
		}
		out = append(out, art)
	}
	return out, nil
}

// newArtifact wraps one layer in an OCI 1.1 artifact manifest (see
// registry.ArtifactManifest), with the blobs it needs pushed first.
func newArtifact(subject v1.Descriptor, layer registry.Blob, artifactType string, annotations map[string]string) (artifact, error) {
	raw, desc, err := registry.ArtifactManifest(subject, layer.Desc, artifactType, annotations)
	if err != nil {
		return artifact{}, err
	}
	empty := registry.EmptyConfig()
	return artifact{
		subject:  subject,
		manifest: manifest{desc: desc, raw: raw},
		blobs: []registry.Blob{
			{Desc: empty, Open: func(context.Context) (io.ReadCloser, error) {
				return io.NopCloser(bytes.NewReader(empty.Data)), nil
			}},
			layer,
		},
	}, nil
}
