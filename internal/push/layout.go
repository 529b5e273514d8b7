package push

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slipwayci/slipway/internal/registry"
)

// image is everything one push sends, in the order it must land: blobs,
// then manifests with children before parents (the root last), then the
// artifacts that refer to them.
type image struct {
	root      v1.Descriptor
	blobs     []registry.Blob
	manifests []manifest
	artifacts []artifact
	// left counts the source's artifacts Options.Keep refused.
	left int
}

// manifest is a manifest's exact bytes: its digest is the hash of these.
type manifest struct {
	desc v1.Descriptor
	raw  []byte
}

// readLayout reads the image (index or single image) with digest d from the
// OCI image layout in dir, checking that every manifest matches its digest
// and every blob is there with its size, so that a broken layout fails here
// and not halfway through a push.
func readLayout(dir string, d v1.Hash) (*image, error) {
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return nil, fmt.Errorf("reading OCI layout: %w", err)
	}
	top, err := v1.ParseIndexManifest(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("reading OCI layout %s: %w", dir, err)
	}
	var root *v1.Descriptor
	for i := range top.Manifests {
		if top.Manifests[i].Digest == d {
			root = &top.Manifests[i]
			break
		}
	}
	if root == nil {
		return nil, fmt.Errorf("reading OCI layout %s: index.json does not list %s; run slipway image again", dir, d)
	}
	r := &layoutReader{dir: dir, img: &image{}, seen: map[v1.Hash]bool{}}
	desc := *root
	desc.Annotations = nil // ref.name is the layout's, not the registry's
	if err := r.visit(desc); err != nil {
		return nil, fmt.Errorf("reading OCI layout %s: %w", dir, err)
	}
	r.img.root = desc
	return r.img, nil
}

type layoutReader struct {
	dir  string
	img  *image
	seen map[v1.Hash]bool
}

func (r *layoutReader) path(h v1.Hash) string {
	return filepath.Join(r.dir, "blobs", h.Algorithm, h.Hex)
}

func (r *layoutReader) visit(d v1.Descriptor) error {
	if r.seen[d.Digest] {
		return nil
	}
	r.seen[d.Digest] = true
	raw, err := os.ReadFile(r.path(d.Digest))
	if err != nil {
		return missing(d, err)
	}
	h, size, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	if h != d.Digest || size != d.Size {
		return fmt.Errorf("manifest %s has digest %s and size %d, not size %d", d.Digest, h, size, d.Size)
	}
	if d.MediaType.IsIndex() {
		idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			return fmt.Errorf("parsing index %s: %w", d.Digest, err)
		}
		for _, child := range idx.Manifests {
			if err := r.visit(child); err != nil {
				return err
			}
		}
	} else {
		m, err := v1.ParseManifest(bytes.NewReader(raw))
		if err != nil {
			return fmt.Errorf("parsing manifest %s: %w", d.Digest, err)
		}
		for _, b := range append([]v1.Descriptor{m.Config}, m.Layers...) {
			if err := r.addBlob(b); err != nil {
				return err
			}
		}
	}
	r.img.manifests = append(r.img.manifests, manifest{desc: d, raw: raw})
	return nil
}

func (r *layoutReader) addBlob(d v1.Descriptor) error {
	// Foreign layers (Windows bases) stay where their URLs point.
	if !d.MediaType.IsDistributable() || r.seen[d.Digest] {
		return nil
	}
	r.seen[d.Digest] = true
	p := r.path(d.Digest)
	st, err := os.Stat(p)
	if err != nil {
		return missing(d, err)
	}
	if st.Size() != d.Size {
		return fmt.Errorf("blob %s is %d bytes, the manifest says %d", d.Digest, st.Size(), d.Size)
	}
	r.img.blobs = append(r.img.blobs, registry.Blob{Desc: d, Open: func(context.Context) (io.ReadCloser, error) { return os.Open(p) }})
	return nil
}

func missing(d v1.Descriptor, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob %s (%s) is missing", d.Digest, d.MediaType)
	}
	return err
}
