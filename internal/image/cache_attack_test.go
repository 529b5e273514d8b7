package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/slipwayci/slipway/internal/testkit"
)

// The attack: a cached layer's blob and meta are replaced, the blob by a
// gzip of a layer whose binary runs `echo backdoor`, the meta by that
// blob's digest and size under the old diffID (the key the binary hashes
// to). A run must not put it in an image: the entry is dropped, with a
// notice, and the layer made again from the binary. So too for a blob
// damaged in place, at its old size.
func TestLayerCacheReplacedBlobAndMetaRefused(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, good compressedLayer, meta string)
	}{
		{"blob and meta replaced", func(t *testing.T, good compressedLayer, meta string) {
			evil := binarySource("hello", writeTemp(t, "#!/bin/sh\necho backdoor\n"), "", date)
			bad, err := compress(t.TempDir(), filepath.Join(t.TempDir(), "evil.tar.gz"), evil)
			if err != nil {
				t.Fatal(err)
			}
			copyFile(t, bad.file, good.file)
			bad.DiffID = good.DiffID
			data, _ := json.Marshal(bad)
			writeFile(t, meta, string(data), 0o644)
		}},
		{"blob damaged at its size", func(t *testing.T, good compressedLayer, meta string) {
			data, err := os.ReadFile(good.file)
			if err != nil {
				t.Fatal(err)
			}
			data[len(data)/2] ^= 0xff
			writeFile(t, good.file, string(data), 0o644)
		}},
		{"meta with another digest", func(t *testing.T, good compressedLayer, meta string) {
			l := good
			l.Digest.Hex = strings.Repeat("0", 64)
			data, _ := json.Marshal(l)
			writeFile(t, meta, string(data), 0o644)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			hello := filepath.Join(dir, "hello")
			writeFile(t, hello, strings.Repeat("hello ", 1000), 0o755)
			var log bytes.Buffer
			cache := layerCache{dir: filepath.Join(dir, "cache"), log: &log}
			ctx := context.Background()
			good, _, err := cache.layer(ctx, binarySource("hello", hello, "", date))
			if err != nil {
				t.Fatal(err)
			}
			tt.tamper(t, good, strings.TrimSuffix(good.file, ".tar.gz")+".json")

			got, hit, err := cache.layer(ctx, binarySource("hello", hello, "", date))
			if err != nil {
				t.Fatal(err)
			}
			if hit {
				t.Errorf("the tampered entry was a hit")
			}
			if !strings.HasPrefix(log.String(), "image: cache: dropped the cached layer of /usr/local/bin/hello (") || strings.Count(log.String(), "\n") != 1 {
				t.Errorf("log = %q, want one line saying the entry was dropped", log.String())
			}
			if got.Digest != good.Digest || got.DiffID != good.DiffID || got.Size != good.Size {
				t.Errorf("layer %+v, want %+v as first made", got, good)
			}
			rc, err := blobLayer{got}.Uncompressed()
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			h := sha256.New()
			data, err := io.ReadAll(io.TeeReader(rc, h))
			if err != nil {
				t.Fatalf("reading the layer: %v", err)
			}
			if strings.Contains(string(data), "backdoor") {
				t.Errorf("the backdoor is in the layer")
			}
			if sum := hex.EncodeToString(h.Sum(nil)); sum != good.DiffID.Hex {
				t.Errorf("the layer's contents hash to %s, its diffID is %s", sum, good.DiffID.Hex)
			}
		})
	}
}

func writeTemp(t *testing.T, data string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "bin")
	writeFile(t, file, data, 0o755)
	return file
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, string(data), 0o644)
}

// The attack through the command line: every layer entry in the cache is
// replaced by a backdoor under the old diffID. The next run says so, and
// its image holds the binaries it built, every layer unpacking to the
// diffID its config gives.
func TestMainCacheReplacedByBackdoorRefused(t *testing.T) {
	repo, dist := sampleDist(t)
	cache := filepath.Join(t.TempDir(), "cache")
	args := []string{"--dist", "dist", "--dir", repo, "--cache", cache}
	if _, stderr, code := runMain(t, filepath.Dir(dist), testEnviron(), args...); code != 0 {
		t.Fatalf("first run: exit %d:\n%s", code, stderr)
	}
	metas, err := filepath.Glob(filepath.Join(cache, cacheFormat, "*.json"))
	if err != nil || len(metas) == 0 {
		t.Fatalf("no layers in the cache: %v", err)
	}
	evil := binarySource("hello", writeTemp(t, "#!/bin/sh\necho backdoor\n"), "", date)
	bad, err := compress(t.TempDir(), filepath.Join(t.TempDir(), "evil.tar.gz"), evil)
	if err != nil {
		t.Fatal(err)
	}
	for _, meta := range metas {
		var good compressedLayer
		data, err := os.ReadFile(meta)
		if err != nil || json.Unmarshal(data, &good) != nil {
			t.Fatalf("reading %s: %v", meta, err)
		}
		copyFile(t, bad.file, strings.TrimSuffix(meta, ".json")+".tar.gz")
		forged := bad
		forged.DiffID = good.DiffID
		data, _ = json.Marshal(forged)
		writeFile(t, meta, string(data), 0o644)
	}

	_, stderr, code := runMain(t, filepath.Dir(dist), testEnviron(), args...)
	if code != 0 {
		t.Fatalf("second run: exit %d:\n%s", code, stderr)
	}
	if n := strings.Count(stderr, "image: cache: dropped the cached layer of "); n != len(metas) {
		t.Errorf("%d entries reported dropped, want %d:\n%s", n, len(metas), stderr)
	}
	idx := testkit.LayoutIndex(t, filepath.Join(dist, "image"))
	if err := validate.Index(idx); err != nil {
		t.Errorf("the image does not validate: %v", err)
	}
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		ls, err := imageFor(t, idx, p).Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			rc, err := l.Uncompressed()
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(data), "echo backdoor") {
				t.Errorf("%s: the backdoor is in the image", p)
			}
		}
	}
}
