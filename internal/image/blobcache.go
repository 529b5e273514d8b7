package image

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// blobCache keeps the compressed layers of pulled bases, as dir/ALG/HEX, so
// a warm run fetches a base's manifests and config, never its layers again.
type blobCache struct {
	dir string
}

func (c blobCache) get(d v1.Hash, size int64) (io.ReadCloser, bool) {
	file := filepath.Join(c.dir, d.Algorithm, d.Hex)
	st, err := os.Stat(file)
	if err != nil || st.Size() != size {
		return nil, false
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, false
	}
	markUsed(file)
	return &verifier{f: f, h: sha256.New(), want: d, size: size}, true
}

func (c blobCache) put(d v1.Hash, size int64, rc io.ReadCloser) io.ReadCloser {
	file := filepath.Join(c.dir, d.Algorithm, d.Hex)
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return rc // no cache, still a layer
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".tmp-*")
	if err != nil {
		return rc
	}
	return &teeToCache{rc: rc, tmp: tmp, file: file, h: sha256.New(), want: d, size: size}
}

// cacheImage wraps a pulled image so that its layers' compressed bytes
// come from blobs when it has them, and go into it as they are first read.
func cacheImage(img v1.Image, blobs blobStore) v1.Image {
	return &cachedImage{Image: img, blobs: blobs}
}

type cachedImage struct {
	v1.Image
	blobs blobStore
}

func (c *cachedImage) Layers() ([]v1.Layer, error) {
	ls, err := c.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for i, l := range ls {
		out[i] = &cachedBlob{Layer: l, blobs: c.blobs}
	}
	return out, nil
}

func (c *cachedImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	l, err := c.Image.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	return &cachedBlob{Layer: l, blobs: c.blobs}, nil
}

func (c *cachedImage) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	l, err := c.Image.LayerByDiffID(h)
	if err != nil {
		return nil, err
	}
	return &cachedBlob{Layer: l, blobs: c.blobs}, nil
}

// cachedBlob is a layer whose compressed bytes come from the store when
// it has them, and go into it as they are first read.
type cachedBlob struct {
	v1.Layer
	blobs blobStore
}

func (l *cachedBlob) Compressed() (io.ReadCloser, error) {
	d, err := l.Digest()
	if err != nil {
		return nil, err
	}
	size, err := l.Size()
	if err != nil {
		return nil, err
	}
	if rc, ok := l.blobs.get(d, size); ok {
		return rc, nil
	}
	rc, err := l.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	return l.blobs.put(d, size, rc), nil
}

// teeToCache passes a download through and keeps it in the cache if it
// was read to its end and has the digest it should.
type teeToCache struct {
	rc   io.ReadCloser
	tmp  *os.File
	file string
	h    hash.Hash
	want v1.Hash
	size int64
	n    int64
	bad  bool
}

func (t *teeToCache) Read(p []byte) (int, error) {
	n, err := t.rc.Read(p)
	if n > 0 {
		t.h.Write(p[:n])
		t.n += int64(n)
		if _, werr := t.tmp.Write(p[:n]); werr != nil {
			t.bad = true
		}
	}
	return n, err
}

func (t *teeToCache) Close() error {
	err := t.rc.Close()
	t.tmp.Close()
	if !t.bad && t.n == t.size && fmt.Sprintf("%x", t.h.Sum(nil)) == t.want.Hex {
		if os.Rename(t.tmp.Name(), t.file) == nil {
			return err
		}
	}
	os.Remove(t.tmp.Name())
	return err
}
