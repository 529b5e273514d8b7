package image

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/mod/modfile"

	"github.com/slipwayci/slipway/internal/testkit"
)

// A hit marks the entry used, so pruning sees when it was last needed.
func TestCacheHitMarksUse(t *testing.T) {
	dir := t.TempDir()
	cache := layerCache{dir: filepath.Join(dir, "cache")}
	blobs := blobCache{dir: filepath.Join(dir, "cache", "blobs")}
	old := time.Now().Add(-48 * time.Hour)
	age := func(paths ...string) {
		t.Helper()
		for _, p := range paths {
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	fresh := func(paths ...string) {
		t.Helper()
		for _, p := range paths {
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if time.Since(st.ModTime()) > time.Hour {
				t.Errorf("%s: last used %s ago, want just now", filepath.Base(p), time.Since(st.ModTime()).Round(time.Hour))
			}
		}
	}

	t.Run("layer", func(t *testing.T) {
		bin := filepath.Join(dir, "hello")
		writeFile(t, bin, strings.Repeat("hello ", 1000), 0o755)
		l, _, err := cache.layer(context.Background(), binarySource("hello", bin, "", date))
		if err != nil {
			t.Fatal(err)
		}
		meta := strings.TrimSuffix(l.file, ".tar.gz") + ".json"
		age(meta, l.file)
		if _, hit, err := cache.layer(context.Background(), binarySource("hello", bin, "", date)); err != nil || !hit {
			t.Fatalf("hit=%v err=%v, want a hit", hit, err)
		}
		fresh(meta, l.file)
	})

	t.Run("pulled blob", func(t *testing.T) {
		rl, err := random.Layer(2048, types.OCILayer)
		if err != nil {
			t.Fatal(err)
		}
		remote := &countingLayer{Layer: rl}
		read := func() {
			t.Helper()
			rc, err := cacheImageLayer(blobs, remote).Compressed()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, rc); err != nil {
				t.Fatal(err)
			}
			if err := rc.Close(); err != nil {
				t.Fatal(err)
			}
		}
		read()
		d, _ := rl.Digest()
		file := filepath.Join(blobs.dir, d.Algorithm, d.Hex)
		age(file)
		read()
		if remote.reads != 1 {
			t.Fatalf("the layer was downloaded %d times, want once", remote.reads)
		}
		fresh(file)
	})
}

// cacheImageLayer is l as an image wrapped by cacheImage gives it.
func cacheImageLayer(blobs blobStore, l v1.Layer) v1.Layer {
	return &cachedBlob{Layer: l, blobs: blobs}
}

type countingLayer struct {
	v1.Layer
	reads int
}

func (l *countingLayer) Compressed() (io.ReadCloser, error) {
	l.reads++
	return l.Layer.Compressed()
}

// Blobs in one key space must all come from one compressor: the format
// names the version of klauspost/compress that go.mod requires, so a bump
// of the library cannot mix its blobs with the old version's.
func TestCacheFormatNamesTheCompressor(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testkit.RepoRoot(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	mf, err := modfile.ParseLax("go.mod", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	path, version, _ := strings.Cut(compressor, " ")
	for _, r := range mf.Require {
		if r.Mod.Path == path {
			if r.Mod.Version != version {
				t.Errorf("go.mod requires %s %s, the cache format was made with %s: give cacheFormat a new name and update compressor", path, r.Mod.Version, version)
			}
			return
		}
	}
	t.Errorf("go.mod does not require %s", path)
}
