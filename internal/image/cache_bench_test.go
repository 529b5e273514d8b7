package image

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// benchBinary is this test's own binary, a real Go binary of some MB.
func benchBinary(b *testing.B) (string, int64) {
	b.Helper()
	bin, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	st, err := os.Stat(bin)
	if err != nil {
		b.Fatal(err)
	}
	return bin, st.Size()
}

// BenchmarkLayerCacheHit is what an unchanged binary costs on a warm cache:
// hashing the binary to find its entry, and checking the entry.
func BenchmarkLayerCacheHit(b *testing.B) {
	bin, size := benchBinary(b)
	cache := layerCache{dir: filepath.Join(b.TempDir(), "cache")}
	src := binarySource("app", bin, "", date)
	ctx := context.Background()
	if _, _, err := cache.layer(ctx, src); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		if _, hit, err := cache.layer(ctx, src); err != nil || !hit {
			b.Fatalf("hit=%v err=%v, want a hit", hit, err)
		}
	}
}

// BenchmarkLayerCacheMiss is what a changed binary costs: hashing and
// compressing it, what a hit saves.
func BenchmarkLayerCacheMiss(b *testing.B) {
	bin, size := benchBinary(b)
	dir := b.TempDir()
	src := binarySource("app", bin, "", date)
	ctx := context.Background()
	b.SetBytes(size)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		cache := layerCache{dir: filepath.Join(dir, strconv.Itoa(i))}
		if _, hit, err := cache.layer(ctx, src); err != nil || hit {
			b.Fatalf("hit=%v err=%v, want a miss", hit, err)
		}
	}
}
