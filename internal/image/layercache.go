package image

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"

	"github.com/slipwayci/slipway/internal/safefile"
)

// layerCache turns sources into gzip blobs on disk. Each blob is kept under
// the digest of its uncompressed tar, which is fixed by the binary's bytes,
// its path, mode and time: an unchanged binary is read and hashed, but
// never compressed again.
//
// Nothing in the directory is trusted: CI restores it from a cache that
// other jobs may write. A hit is used only once its blob is shown to unpack
// to the very tar the source hashed to, and to have the digest and size its
// meta gives; an entry that fails is dropped, with a line on log, and made
// again.
type layerCache struct {
	dir string
	log io.Writer // nil: io.Discard
}

// cacheFormat names how blobs are made; a change in compression makes a
// new key space instead of mixing blobs from two ways of compressing, which
// would give one binary two digests depending on what the cache held.
// Blobs are klauspost/compress's gzip at the default level: two to three
// times as fast as the standard library's for layers a few percent larger.
// Its output is fixed for a version of the library, so the format names
// that version (compressor); TestCacheFormatNamesTheCompressor keeps the
// two in step with go.mod.
const (
	cacheFormat = "gzip-klauspost-v2"
	compressor  = "github.com/klauspost/compress v1.19.2"
)

// compressedLayer is a layer's gzip blob on disk and its two digests.
type compressedLayer struct {
	file   string
	Digest v1.Hash `json:"digest"`
	DiffID v1.Hash `json:"diffID"`
	Size   int64   `json:"size"`
}

// layer returns src compressed, and whether it came from the cache.
func (c layerCache) layer(ctx context.Context, src source) (compressedLayer, bool, error) {
	if err := ctx.Err(); err != nil {
		return compressedLayer{}, false, err
	}
	h := sha256.New()
	if err := src.write(h); err != nil {
		return compressedLayer{}, false, fmt.Errorf("reading layer %s: %w", src.desc, err)
	}
	diffID := v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}
	dir := filepath.Join(c.dir, cacheFormat)
	blob := filepath.Join(dir, diffID.Hex+".tar.gz")
	meta := filepath.Join(dir, diffID.Hex+".json")
	l, err := cached(meta, blob, diffID)
	if err == nil {
		markUsed(meta, blob)
		return l, true, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		if c.log != nil {
			fmt.Fprintf(c.log, "image: cache: dropped the cached layer of %s (%v); making it again\n", src.desc, err)
		}
		// Meta first, the order a prune and a hit go by.
		os.Remove(meta)
		os.Remove(blob)
	}
	if err := ctx.Err(); err != nil {
		return compressedLayer{}, false, err
	}
	l, err = compress(dir, blob, src)
	if err != nil {
		return compressedLayer{}, false, fmt.Errorf("compressing layer %s: %w", src.desc, err)
	}
	if l.DiffID != diffID {
		return compressedLayer{}, false, fmt.Errorf("compressing layer %s: its contents changed while it was read", src.desc)
	}
	data, _ := json.Marshal(l)
	if err := safefile.Write(meta, data, 0o644); err != nil {
		return compressedLayer{}, false, fmt.Errorf("caching layer %s: %w", src.desc, err)
	}
	return l, false, nil
}

// cached returns the entry for diffID, checked: its meta names diffID, and
// its blob has the size and digest the meta gives and unpacks to diffID. An
// entry that is not there is fs.ErrNotExist; one that does not hold up is
// another error, saying why.
func cached(meta, blob string, diffID v1.Hash) (compressedLayer, error) {
	data, err := os.ReadFile(meta)
	if err != nil {
		return compressedLayer{}, err
	}
	var l compressedLayer
	if err := json.Unmarshal(data, &l); err != nil {
		return compressedLayer{}, fmt.Errorf("reading its meta: %w", err)
	}
	if l.DiffID != diffID {
		return compressedLayer{}, fmt.Errorf("its meta names %s", l.DiffID)
	}
	l.file = blob
	return l, checkBlob(l)
}

// checkBlob reads l's blob once, hashing it as it is and as it unpacks.
// This is the price of a hit beyond hashing the source: reading and
// unpacking a blob, but never compressing one.
func checkBlob(l compressedLayer) error {
	f, err := os.Open(l.file)
	if err != nil {
		return err
	}
	defer f.Close()
	zh := sha256.New()
	zr := &countingReader{r: f, h: zh}
	gz, err := gzip.NewReader(zr)
	if err != nil {
		return fmt.Errorf("unpacking its blob: %w", err)
	}
	uh := sha256.New()
	if _, err := io.Copy(uh, gz); err != nil {
		return fmt.Errorf("unpacking its blob: %w", err)
	}
	// Anything after the gzip stream is part of the blob too.
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return err
	}
	switch digest, diffID := fmt.Sprintf("%x", zh.Sum(nil)), fmt.Sprintf("%x", uh.Sum(nil)); {
	case diffID != l.DiffID.Hex:
		return fmt.Errorf("its blob unpacks to sha256:%s", diffID)
	case digest != l.Digest.Hex || zr.n != l.Size:
		return fmt.Errorf("its blob is sha256:%s, %d bytes; its meta says %s, %d bytes", digest, zr.n, l.Digest, l.Size)
	}
	return nil
}

// countingReader counts and hashes what it reads.
type countingReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}

// compress writes src's gzip blob to blob through a temporary file.
func compress(dir, blob string, src source) (compressedLayer, error) {
	var l compressedLayer
	err := safefile.WriteFrom(blob, 0o644, func(w io.Writer) error {
		cw := &countingWriter{w: w, h: sha256.New()}
		diffID, err := gzipTo(cw, src.write)
		if err != nil {
			return err
		}
		l = compressedLayer{
			file:   blob,
			DiffID: diffID,
			Digest: v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", cw.h.Sum(nil))},
			Size:   cw.n,
		}
		return nil
	})
	return l, err
}

// gzipTo compresses what write produces into w and returns the digest of
// the uncompressed stream. The gzip header carries no name and no time, so
// the same bytes in give the same bytes out.
func gzipTo(w io.Writer, write func(io.Writer) error) (v1.Hash, error) {
	zw, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
	if err != nil {
		return v1.Hash{}, err
	}
	h := sha256.New()
	if err := write(io.MultiWriter(zw, h)); err != nil {
		return v1.Hash{}, err
	}
	if err := zw.Close(); err != nil {
		return v1.Hash{}, err
	}
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}, nil
}

// countingWriter counts and hashes what it passes on.
type countingWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}

// blobLayer is a v1.Layer over a compressed blob on disk. Its media type is
// OCI's; an image on a Docker-typed base sets the Docker type in its
// manifest instead (the blob is the same gzip tar either way).
type blobLayer struct{ c compressedLayer }

var _ v1.Layer = blobLayer{}

func (l blobLayer) Digest() (v1.Hash, error)            { return l.c.Digest, nil }
func (l blobLayer) DiffID() (v1.Hash, error)            { return l.c.DiffID, nil }
func (l blobLayer) Size() (int64, error)                { return l.c.Size, nil }
func (l blobLayer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }

// Compressed fails at EOF if the file's bytes no longer match the digest,
// so a damaged cache entry never reaches an image.
func (l blobLayer) Compressed() (io.ReadCloser, error) {
	f, err := os.Open(l.c.file)
	if err != nil {
		return nil, err
	}
	return &verifier{f: f, h: sha256.New(), want: l.c.Digest, size: l.c.Size}, nil
}

func (l blobLayer) Uncompressed() (io.ReadCloser, error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(rc)
	if err != nil {
		rc.Close()
		return nil, err
	}
	return &gunzipReader{Reader: zr, rc: rc}, nil
}

type gunzipReader struct {
	*gzip.Reader
	rc io.Closer
}

func (g *gunzipReader) Close() error {
	g.Reader.Close()
	return g.rc.Close()
}

// errCorrupt reports a blob whose bytes no longer match its digest.
var errCorrupt = errors.New("digest mismatch")

type verifier struct {
	f    *os.File
	h    hash.Hash
	want v1.Hash
	size int64
	n    int64
}

func (v *verifier) Read(p []byte) (int, error) {
	n, err := v.f.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if err == io.EOF {
		if got := fmt.Sprintf("%x", v.h.Sum(nil)); got != v.want.Hex || v.n != v.size {
			return n, fmt.Errorf("reading %s: %w: want %s, got sha256:%s; remove the cache directory", v.f.Name(), errCorrupt, v.want, got)
		}
	}
	return n, err
}

func (v *verifier) Close() error { return v.f.Close() }
