package image

import (
	"cmp"
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
	"regexp"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/safefile"
)

// layerCache turns sources into gzip blobs on disk. Each blob is kept under
// the digest of its uncompressed tar, which is fixed by the binary's bytes,
// its path, mode and time: an unchanged binary is read and hashed, but
// never compressed again.
type layerCache struct {
	dir string
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
	if l, ok := readMeta(meta, blob); ok && l.DiffID == diffID {
		markUsed(meta, blob)
		return l, true, nil
	}
	if err := ctx.Err(); err != nil {
		return compressedLayer{}, false, err
	}
	l, err := compress(dir, blob, src)
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

func readMeta(meta, blob string) (compressedLayer, bool) {
	data, err := os.ReadFile(meta)
	if err != nil {
		return compressedLayer{}, false
	}
	var l compressedLayer
	if json.Unmarshal(data, &l) != nil {
		return compressedLayer{}, false
	}
	st, err := os.Stat(blob)
	if err != nil || st.Size() != l.Size {
		return compressedLayer{}, false
	}
	l.file = blob
	return l, true
}

// markUsed sets the files' times to now: in the cache a file's mtime is
// when it was last used, which is what pruning goes by. Meta before blob,
// the order a prune checks them in. A cache that cannot be touched
// (read-only, another owner's) still serves the hit.
func markUsed(files ...string) {
	now := time.Now()
	for _, f := range files {
		os.Chtimes(f, now, now)
	}
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

// baseImage wraps a pulled image so that its layers, once downloaded, are
// read from the cache: a warm run fetches the base's manifests and config,
// never its layers again.
func (c layerCache) baseImage(img v1.Image) v1.Image { return &cachedImage{Image: img, cache: c} }

type cachedImage struct {
	v1.Image
	cache layerCache
}

func (c *cachedImage) Layers() ([]v1.Layer, error) {
	ls, err := c.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for i, l := range ls {
		out[i] = c.cache.blob(l)
	}
	return out, nil
}

func (c *cachedImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	l, err := c.Image.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	return c.cache.blob(l), nil
}

func (c *cachedImage) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	l, err := c.Image.LayerByDiffID(h)
	if err != nil {
		return nil, err
	}
	return c.cache.blob(l), nil
}

func (c layerCache) blob(l v1.Layer) v1.Layer {
	return &cachedBlob{Layer: l, dir: filepath.Join(c.dir, "blobs")}
}

// cachedBlob is a layer whose compressed bytes come from the cache when it
// has them, and go into it as they are first read.
type cachedBlob struct {
	v1.Layer
	dir string
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
	file := filepath.Join(l.dir, d.Algorithm, d.Hex)
	if st, err := os.Stat(file); err == nil && st.Size() == size {
		f, err := os.Open(file)
		if err == nil {
			markUsed(file)
			return &verifier{f: f, h: sha256.New(), want: d, size: size}, nil
		}
	}
	rc, err := l.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return rc, nil // no cache, still a layer
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".tmp-*")
	if err != nil {
		return rc, nil
	}
	return &teeToCache{rc: rc, tmp: tmp, file: file, h: sha256.New(), want: d, size: size}, nil
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

// Pruning. A cache that CI keeps from run to run (actions/cache, GitLab's
// cache:) would only grow, each new binary adding a blob, so after a run
// entries unused for longer than a maximum age go, then the least recently
// used until the cache fits a maximum size. Only names slipway itself
// writes are touched: the directory may be one a user pointed at.

// pruneGrace keeps whatever was used in the last hour: another slipway on
// this machine may have just found the entry and be about to read its blob,
// and deleting it now would fail that build.
const pruneGrace = time.Hour

var (
	hexName = regexp.MustCompile(`^[0-9a-f]{32,128}$`)
	// Temporary files of runs that were killed: safefile's for layers,
	// teeToCache's for pulled blobs.
	layerTemp = regexp.MustCompile(`^\.[0-9a-f]{32,128}\.(json|tar\.gz)\.tmp-[0-9]+$`)
	blobTemp  = regexp.MustCompile(`^\.tmp-[0-9]+$`)
	// Key spaces of other cache formats, such as gzip-best-v0.
	otherFormat = regexp.MustCompile(`^gzip-[a-z0-9]+-v[0-9]+$`)
	algName     = regexp.MustCompile(`^[a-z0-9]+$`)
)

// prunePolicy says what a prune keeps.
type prunePolicy struct {
	maxSize int64         // bytes; 0 is no limit
	maxAge  time.Duration // 0 is no limit
	// since is when this run started: all it used was marked after that,
	// and stays whatever the limits.
	since time.Time
	now   time.Time
}

// pruned is what a prune removed and kept.
type pruned struct {
	layers, temps, formats int
	freed, kept            int64
}

func (p pruned) any() bool { return p.layers+p.temps+p.formats > 0 }

// String is one line: pruned 12 layers, 340.0 MiB; 1.0 GiB kept.
func (p pruned) String() string {
	var what []string
	for _, c := range []struct {
		n         int
		one, many string
	}{
		{p.layers, "layer", "layers"},
		{p.temps, "temporary file", "temporary files"},
		{p.formats, "old cache format", "old cache formats"},
	} {
		switch {
		case c.n == 1:
			what = append(what, "1 "+c.one)
		case c.n > 1:
			what = append(what, fmt.Sprintf("%d %s", c.n, c.many))
		}
	}
	return fmt.Sprintf("pruned %s, %s; %s kept", strings.Join(what, ", "), cli.HumanSize(p.freed), cli.HumanSize(p.kept))
}

type itemKind int

const (
	itemLayer  itemKind = iota // a layer's meta and blob, or a pulled blob
	itemTemp                   // a temporary file left by a killed run
	itemFormat                 // a directory of another cache format
)

// cacheItem is something a prune may remove as one.
type cacheItem struct {
	kind  itemKind
	paths []string // removed in this order: a layer's meta before its blob
	size  int64
	used  time.Time // the newest mtime among its files
}

func (it *cacheItem) add(path string, info fs.FileInfo) {
	it.paths = append(it.paths, path)
	it.size += info.Size()
	if info.ModTime().After(it.used) {
		it.used = info.ModTime()
	}
}

// prune removes what p does not keep. It goes on past a file it cannot
// remove and returns the first such error with what it did.
func (c layerCache) prune(ctx context.Context, p prunePolicy) (pruned, error) {
	var res pruned
	if _, err := os.Stat(filepath.Join(c.dir, "oci-layout")); err == nil {
		// Its blobs/ looks like ours, and is anything but a cache.
		return res, fmt.Errorf("%s is an OCI image layout, not a cache; set --cache to a directory of its own", c.dir)
	}
	items, err := c.scan()
	if err != nil {
		return res, fmt.Errorf("reading the cache: %w", err)
	}
	// Whatever was used after keep stays: by this run, or lately by
	// another slipway on this machine (pruneGrace).
	keep := p.now.Add(-pruneGrace)
	if p.since.Before(keep) {
		keep = p.since
	}
	var firstErr error
	drop := func(it cacheItem) bool {
		ok, err := false, ctx.Err()
		if err == nil {
			ok, err = removeUnused(it, keep)
		}
		firstErr = cmp.Or(firstErr, err)
		if !ok {
			res.kept += it.size
			return false
		}
		res.freed += it.size
		switch it.kind {
		case itemLayer:
			res.layers++
		case itemTemp:
			res.temps++
		case itemFormat:
			res.formats++
		}
		return true
	}
	var lru []cacheItem
	for _, it := range items {
		switch {
		case !it.used.Before(keep):
			res.kept += it.size
		case it.kind != itemLayer:
			drop(it)
		case p.maxAge > 0 && p.now.Sub(it.used) > p.maxAge:
			drop(it)
		default:
			lru = append(lru, it)
		}
	}
	slices.SortStableFunc(lru, func(a, b cacheItem) int { return a.used.Compare(b.used) })
	total := res.kept
	for _, it := range lru {
		total += it.size
	}
	for _, it := range lru {
		if p.maxSize > 0 && total > p.maxSize {
			if drop(it) {
				total -= it.size
			}
			continue
		}
		res.kept += it.size
	}
	return res, firstErr
}

// removeUnused removes the item's files in order, unless one was used
// since keep: another slipway found the entry while this one pruned. It
// tells whether the item is gone.
func removeUnused(it cacheItem, keep time.Time) (bool, error) {
	for _, path := range it.paths {
		info, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return false, err
		}
		if info.Mode().IsRegular() && !info.ModTime().Before(keep) {
			return false, nil
		}
		if err := os.RemoveAll(path); err != nil {
			return false, err
		}
	}
	return true, nil
}

// scan lists what slipway wrote in the cache: layers and temporary files
// in the current format's directory, pulled blobs under blobs/ALG/, and
// other formats' directories. Anything else is not slipway's to remove.
func (c layerCache) scan() ([]cacheItem, error) {
	ents, err := os.ReadDir(c.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var items []cacheItem
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(c.dir, e.Name())
		switch {
		case e.Name() == cacheFormat:
			items, err = scanLayers(dir, items)
		case e.Name() == "blobs":
			items, err = scanBlobs(dir, items)
		case otherFormat.MatchString(e.Name()):
			items, err = scanFormat(dir, items)
		}
		if err != nil {
			return nil, err
		}
	}
	return items, nil
}

// scanLayers adds the layers in dir, each a HEX.json meta and HEX.tar.gz
// blob (or what is left of one), and the temporary files.
func scanLayers(dir string, items []cacheItem) ([]cacheItem, error) {
	files, err := regularFiles(dir)
	if err != nil {
		return nil, err
	}
	type pair struct{ meta, blob fs.FileInfo }
	layers := map[string]*pair{}
	var keys []string
	for _, f := range files {
		name := f.Name()
		if layerTemp.MatchString(name) {
			it := cacheItem{kind: itemTemp}
			it.add(filepath.Join(dir, name), f)
			items = append(items, it)
			continue
		}
		key, isMeta := strings.CutSuffix(name, ".json")
		if !isMeta {
			key, _ = strings.CutSuffix(name, ".tar.gz")
		}
		if key == name || !hexName.MatchString(key) {
			continue
		}
		l := layers[key]
		if l == nil {
			l = &pair{}
			layers[key] = l
			keys = append(keys, key)
		}
		if isMeta {
			l.meta = f
		} else {
			l.blob = f
		}
	}
	for _, key := range keys {
		it, l := cacheItem{kind: itemLayer}, layers[key]
		if l.meta != nil {
			it.add(filepath.Join(dir, key+".json"), l.meta)
		}
		if l.blob != nil {
			it.add(filepath.Join(dir, key+".tar.gz"), l.blob)
		}
		items = append(items, it)
	}
	return items, nil
}

// scanBlobs adds the pulled blobs, blobs/ALG/HEX, and the temporary files.
func scanBlobs(dir string, items []cacheItem) ([]cacheItem, error) {
	algs, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, a := range algs {
		if !a.IsDir() || !algName.MatchString(a.Name()) {
			continue
		}
		files, err := regularFiles(filepath.Join(dir, a.Name()))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			it := cacheItem{kind: itemLayer}
			switch {
			case hexName.MatchString(f.Name()):
			case blobTemp.MatchString(f.Name()):
				it.kind = itemTemp
			default:
				continue
			}
			it.add(filepath.Join(dir, a.Name(), f.Name()), f)
			items = append(items, it)
		}
	}
	return items, nil
}

// scanFormat adds a directory of another format as one item, last used
// when the newest file in it was.
func scanFormat(dir string, items []cacheItem) ([]cacheItem, error) {
	it := cacheItem{kind: itemFormat, paths: []string{dir}}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		var info fs.FileInfo
		if err == nil {
			info, err = d.Info()
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed by another run meanwhile
		}
		if err != nil {
			return err
		}
		// Files only: their times are writes and marked uses; a
		// directory's changes even when a prune removes from it.
		if info.Mode().IsRegular() {
			it.size += info.Size()
			if info.ModTime().After(it.used) {
				it.used = info.ModTime()
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return append(items, it), nil
}

// regularFiles lists the regular files in dir.
func regularFiles(dir string) ([]fs.FileInfo, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []fs.FileInfo
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed by another run since ReadDir
		}
		if err != nil {
			return nil, err
		}
		files = append(files, info)
	}
	return files, nil
}
