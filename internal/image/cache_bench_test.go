package image

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkLayerCacheHit is what an unchanged binary costs on a warm cache:
// hashing the binary to find its entry, and whatever checks the entry then
// needs. The binary is this test's own, a real Go binary of some MB.
func BenchmarkLayerCacheHit(b *testing.B) {
	bin, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	st, err := os.Stat(bin)
	if err != nil {
		b.Fatal(err)
	}
	cache := layerCache{dir: filepath.Join(b.TempDir(), "cache")}
	src := binarySource("app", bin, "", date)
	ctx := context.Background()
	if _, _, err := cache.layer(ctx, src); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	b.ReportAllocs()
	for b.Loop() {
		if _, hit, err := cache.layer(ctx, src); err != nil || !hit {
			b.Fatalf("hit=%v err=%v, want a hit", hit, err)
		}
	}
}
