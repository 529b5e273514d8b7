package image

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The image step keeps two caches in one directory (--cache): the layers it
// makes, under the digest of their uncompressed tar (layercache.go), and
// the base layers it pulls, under their blob digest (blobcache.go). After a
// run a prune keeps the directory within its limits (prune.go). Each cache
// is used through the one small interface its consumers need.

// layerStore turns a source into its compressed layer, and says whether it
// had the layer already.
type layerStore interface {
	layer(ctx context.Context, src source) (l compressedLayer, hit bool, err error)
}

// blobStore keeps compressed blobs by digest, as ggcr's cache.Cache keeps
// layers, for cachedImage to read a base's layers through.
type blobStore interface {
	// get opens the blob d of size bytes, checked against d as it is
	// read, if the store has it.
	get(d v1.Hash, size int64) (io.ReadCloser, bool)
	// put passes rc, the blob d being downloaded, through, and keeps it
	// once it has been read to its end with the digest it should have.
	put(d v1.Hash, size int64, rc io.ReadCloser) io.ReadCloser
}

var (
	_ layerStore = layerCache{}
	_ blobStore  = blobCache{}
)

// caches are one run's two caches in one directory.
type caches struct {
	layers layerStore
	blobs  blobStore
}

func cachesIn(dir string, log io.Writer) caches {
	return caches{layers: layerCache{dir: dir, log: log}, blobs: blobCache{dir: filepath.Join(dir, "blobs")}}
}

// openCache opens the caches in dir, or in a temporary directory that done
// removes. Entries dropped for not holding up are reported on log.
func openCache(dir string, log io.Writer) (caches, func(), error) {
	if dir != "" {
		return cachesIn(dir, log), func() {}, nil
	}
	tmp, err := os.MkdirTemp("", "slipway-image-*")
	if err != nil {
		return caches{}, nil, fmt.Errorf("creating a temporary directory: %w", err)
	}
	return cachesIn(tmp, log), func() { os.RemoveAll(tmp) }, nil
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
