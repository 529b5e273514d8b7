package scan

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/slipwayci/slipway/internal/fault"
	"github.com/slipwayci/slipway/internal/registry"
)

// Image is one platform's image, opened for the scanners.
type Image struct {
	// Name is the image as given: oci:DIR, or a registry reference.
	Name string
	// Digest is what Name resolves to (an index or a manifest); Manifest
	// is the platform's manifest within it.
	Digest   string
	Manifest string
	Platform string
	// Img is the platform's image.
	Img v1.Image
}

// OpenImage opens an OCI image layout (oci:DIR, or oci:DIR@sha256:… for
// one of its manifests) or a registry reference, read through reg (nil:
// anonymously), and returns the images to scan: every platform's of an
// index (evidence about an index must cover each of them), or only
// platform's if given. dir resolves a relative layout path.
func OpenImage(ctx context.Context, reg *registry.Client, ref, platform, dir string) ([]*Image, error) {
	var want *v1.Platform
	if platform != "" {
		p, err := v1.ParsePlatform(platform)
		if err != nil {
			return nil, fault.Optionf("platform", "{option} %q: %v; want os/arch[/variant], e.g. linux/amd64", platform, err)
		}
		want = p
	}
	if layoutDir, ok := strings.CutPrefix(ref, "oci:"); ok {
		return openLayout(layoutDir, ref, dir, want)
	}
	if reg == nil {
		var err error
		if reg, err = registry.New(registry.Options{Backoff: registry.DefaultBackoff()}); err != nil {
			return nil, err
		}
	}
	r, err := reg.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("parsing image reference %q: %w", ref, err)
	}
	desc, err := reg.Get(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", ref, err)
	}
	img := &Image{Name: ref, Digest: desc.Digest.String()}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, fmt.Errorf("reading index %s: %w", ref, err)
		}
		return pick(img, idx, want)
	}
	i, err := desc.Image()
	if err != nil {
		return nil, fmt.Errorf("reading image %s: %w", ref, err)
	}
	return one(single(img, i))
}

func one(img *Image, err error) ([]*Image, error) {
	if err != nil {
		return nil, err
	}
	return []*Image{img}, nil
}

func openLayout(layoutDir, ref, dir string, want *v1.Platform) ([]*Image, error) {
	layoutDir, digest, _ := strings.Cut(layoutDir, "@")
	if !filepath.IsAbs(layoutDir) {
		layoutDir = filepath.Join(dir, layoutDir)
	}
	p, err := layout.FromPath(layoutDir)
	if err != nil {
		return nil, fmt.Errorf("opening OCI layout %s: %w", layoutDir, err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("reading OCI layout %s: %w", layoutDir, err)
	}
	m, err := top.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading OCI layout %s: %w", layoutDir, err)
	}
	var d *v1.Descriptor
	for i := range m.Manifests {
		if digest == "" || m.Manifests[i].Digest.String() == digest {
			d = &m.Manifests[i]
			break
		}
	}
	if d == nil {
		if digest != "" {
			return nil, fault.Invalidf("OCI layout %s has no manifest %s; give one it lists, or none", layoutDir, digest)
		}
		return nil, fmt.Errorf("OCI layout %s is empty", layoutDir)
	}
	img := &Image{Name: strings.TrimSuffix(ref, "@"+digest), Digest: d.Digest.String()}
	if d.MediaType.IsIndex() {
		idx, err := top.ImageIndex(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("reading index %s: %w", d.Digest, err)
		}
		return pick(img, idx, want)
	}
	i, err := top.Image(d.Digest)
	if err != nil {
		return nil, fmt.Errorf("reading image %s: %w", d.Digest, err)
	}
	return one(single(img, i))
}

// FromImage wraps an image already in memory.
func FromImage(name string, i v1.Image) (*Image, error) {
	d, err := i.Digest()
	if err != nil {
		return nil, fmt.Errorf("digesting image: %w", err)
	}
	return single(&Image{Name: name, Digest: d.String()}, i)
}

func single(img *Image, i v1.Image) (*Image, error) {
	d, err := i.Digest()
	if err != nil {
		return nil, fmt.Errorf("digesting image: %w", err)
	}
	cf, err := i.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading image config: %w", err)
	}
	img.Img, img.Manifest = i, d.String()
	if p := cf.Platform(); p != nil {
		img.Platform = p.String()
	}
	return img, nil
}

// pick chooses the images of an index: every platform's, or want's.
func pick(img *Image, idx v1.ImageIndex, want *v1.Platform) ([]*Image, error) {
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading index: %w", err)
	}
	var images []v1.Descriptor
	for _, d := range m.Manifests {
		// Attestation manifests ride along in indexes as unknown/unknown.
		if d.MediaType.IsImage() && (d.Platform == nil || d.Platform.OS != "unknown") {
			images = append(images, d)
		}
	}
	if len(images) == 0 {
		return nil, fmt.Errorf("index %s has no images", img.Digest)
	}
	chosen := images
	if want != nil {
		chosen = nil
		var have []string
		for _, d := range images {
			if d.Platform == nil {
				continue
			}
			have = append(have, d.Platform.String())
			if d.Platform.Satisfies(*want) && len(chosen) == 0 {
				chosen = append(chosen, d)
			}
		}
		if len(chosen) == 0 {
			// The image will not grow the platform: a usage error.
			return nil, fault.Optionf("platform", "{option} %s: image %s has no %s image; it has %s", want, img.Name, want, strings.Join(have, ", "))
		}
	}
	var out []*Image
	for _, d := range chosen {
		i, err := idx.Image(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("reading image %s: %w", d.Digest, err)
		}
		p := *img
		o, err := single(&p, i)
		if err != nil {
			return nil, err
		}
		if d.Platform != nil {
			o.Platform = d.Platform.String()
		}
		out = append(out, o)
	}
	return out, nil
}

// Binary is a Go binary found in an image.
type Binary struct {
	// Path is where it sits in the image, without a leading slash.
	Path string
	// File is a copy of it on disk.
	File string
	// SHA256 is its digest, hex; Info its build information.
	SHA256 string
	Info   *buildinfo.BuildInfo
}

// GoBinaries copies the Go executables out of the image's flattened file
// system into dir. An ELF file is a Go binary if it carries Go's build
// information.
func GoBinaries(ctx context.Context, img v1.Image, dir string) ([]Binary, error) {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	var bins []Binary
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading image files: %w", err)
		}
		if h.Typeflag != tar.TypeReg || h.Size < 4 {
			continue
		}
		br := &peekReader{r: tr}
		if magic, _ := br.peek(4); string(magic) != "\x7fELF" {
			continue
		}
		file := filepath.Join(dir, fmt.Sprintf("bin%d", n))
		sum := sha256.New()
		if err := copyTo(file, io.TeeReader(br, sum)); err != nil {
			return nil, err
		}
		info, err := buildinfo.ReadFile(file)
		if err != nil {
			os.Remove(file) // an ELF file, not a Go one
			continue
		}
		bins = append(bins, Binary{Path: strings.TrimPrefix(path.Clean("/"+h.Name), "/"), File: file,
			SHA256: hex.EncodeToString(sum.Sum(nil)), Info: info})
	}
	return bins, nil
}

// peekReader lets GoBinaries look at a file's first bytes before deciding
// to copy it.
type peekReader struct {
	r    io.Reader
	head []byte
}

func (p *peekReader) peek(n int) ([]byte, error) {
	p.head = make([]byte, n)
	k, err := io.ReadFull(p.r, p.head)
	p.head = p.head[:k]
	return p.head, err
}

func (p *peekReader) Read(b []byte) (int, error) {
	if len(p.head) > 0 {
		n := copy(b, p.head)
		p.head = p.head[n:]
		return n, nil
	}
	return p.r.Read(b)
}

func copyTo(file string, r io.Reader) error {
	f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("copying a binary out of the image: %w", err)
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("copying a binary out of the image: %w", err)
	}
	return f.Close()
}
