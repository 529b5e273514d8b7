package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

func writeFile(t *testing.T, path, data string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}

var date = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestBinaryLayerHeaders(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "hello")
	writeFile(t, bin, "binary", 0o700)
	// The disk's mode, owner and time must not reach the layer.
	if err := os.Chtimes(bin, time.Now(), time.Now()); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := binarySource("hello", bin, "", date).write(&b); err != nil {
		t.Fatal(err)
	}
	files, order := readTar(t, &b, 100)
	want := map[string]tarFile{
		"usr/":                {Type: tar.TypeDir, Mode: 0o755, ModTime: date},
		"usr/local/":          {Type: tar.TypeDir, Mode: 0o755, ModTime: date},
		"usr/local/bin/":      {Type: tar.TypeDir, Mode: 0o755, ModTime: date},
		"usr/local/bin/hello": {Type: tar.TypeReg, Mode: 0o755, ModTime: date, Data: "binary"},
	}
	if diff := cmp.Diff(want, files); diff != "" {
		t.Errorf("layer (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"usr/", "usr/local/", "usr/local/bin/", "usr/local/bin/hello"}, order); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

func TestBinaryLayerChecksSHA(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "hello")
	writeFile(t, bin, "binary", 0o755)
	const sumOfBinary = "9a3a45d01531a20e89ac6ae10b0b0beb0492acd7216a368aa062d1a5fecaf9cd"
	if err := binarySource("hello", bin, sumOfBinary, date).write(io.Discard); err != nil {
		t.Fatalf("the recorded SHA-256 was refused: %v", err)
	}
	writeFile(t, bin, "rebuilt", 0o755)
	err := binarySource("hello", bin, sumOfBinary, date).write(io.Discard)
	if err == nil || !strings.Contains(err.Error(), "changed since slipway build") {
		t.Fatalf("err = %v, want a changed-binary error", err)
	}
}

func TestLayerCache(t *testing.T) {
	dir := t.TempDir()
	hello := filepath.Join(dir, "hello")
	ctl := filepath.Join(dir, "helloctl")
	writeFile(t, hello, strings.Repeat("hello ", 1000), 0o755)
	writeFile(t, ctl, "ctl v1", 0o755)
	cache := layerCache{dir: filepath.Join(dir, "cache")}
	ctx := context.Background()

	first, hit, err := cache.layer(ctx, binarySource("hello", hello, "", date))
	if err != nil || hit {
		t.Fatalf("first layer: hit=%v err=%v, want a miss", hit, err)
	}
	if err := validate.Layer(blobLayer{first}); err != nil {
		t.Errorf("the layer does not validate: %v", err)
	}
	// Another binary changing leaves this one's layer as it was, and the
	// cache answers without compressing again.
	writeFile(t, ctl, "ctl v2", 0o755)
	if _, _, err := cache.layer(ctx, binarySource("helloctl", ctl, "", date)); err != nil {
		t.Fatal(err)
	}
	again, hit, err := cache.layer(ctx, binarySource("hello", hello, "", date))
	if err != nil || !hit {
		t.Fatalf("second layer: hit=%v err=%v, want a hit", hit, err)
	}
	if again != first {
		t.Errorf("the cached layer differs: %+v, want %+v", again, first)
	}
	// Without the cache the same bytes come out: the cache saves time, it
	// never changes a digest.
	fresh, _, err := layerCache{dir: t.TempDir()}.layer(ctx, binarySource("hello", hello, "", date))
	if err != nil {
		t.Fatal(err)
	}
	if fresh.Digest != first.Digest || fresh.DiffID != first.DiffID {
		t.Errorf("uncached layer %s, cached %s", fresh.Digest, first.Digest)
	}
	// A different time is a different layer.
	later, _, err := cache.layer(ctx, binarySource("hello", hello, "", date.Add(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	if later.DiffID == first.DiffID {
		t.Errorf("a different mtime gave the same layer")
	}
}

func TestLayerCacheCorrupt(t *testing.T) {
	dir := t.TempDir()
	hello := filepath.Join(dir, "hello")
	writeFile(t, hello, strings.Repeat("hello ", 1000), 0o755)
	cache := layerCache{dir: filepath.Join(dir, "cache")}
	l, _, err := cache.layer(context.Background(), binarySource("hello", hello, "", date))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(l.file)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	writeFile(t, l.file, string(data), 0o644)
	rc, err := blobLayer{l}.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); !errors.Is(err, errCorrupt) {
		t.Errorf("reading a damaged blob: err = %v, want %v", err, errCorrupt)
	}
}

func TestStaticFilesLayer(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "static")
	// Group-writable files, as a umask of 002 makes them, are 0644 and
	// 0755 in the layer; narrower ones stay narrower
	// (TestStaticFilesModesNeverWiderThanSource).
	writeFile(t, filepath.Join(dir, "index.html"), "<h1>hi</h1>", 0o664)
	writeFile(t, filepath.Join(dir, "bin", "run.sh"), "#!/bin/sh", 0o775)
	for _, f := range []string{"index.html", "bin/run.sh"} {
		if err := os.Chmod(filepath.Join(dir, f), map[string]os.FileMode{"index.html": 0o664, "bin/run.sh": 0o775}[f]); err != nil {
			t.Fatal(err)
		}
	}
	// A link that stays inside is followed.
	if err := os.Symlink("index.html", filepath.Join(dir, "home.html")); err != nil {
		t.Fatal(err)
	}
	src, err := staticFilesSource(staticTree(t, dir), date)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := src.write(&b); err != nil {
		t.Fatal(err)
	}
	files, _ := readTar(t, &b, 100)
	want := map[string]tarFile{
		"srv/":                  {Type: tar.TypeDir, Mode: 0o755, ModTime: date},
		"srv/static/":           {Type: tar.TypeDir, Mode: 0o755, ModTime: date},
		"srv/static/bin/":       {Type: tar.TypeDir, Mode: 0o755, ModTime: date},
		"srv/static/bin/run.sh": {Type: tar.TypeReg, Mode: 0o755, ModTime: date, Data: "#!/bin/sh"},
		"srv/static/index.html": {Type: tar.TypeReg, Mode: 0o644, ModTime: date, Data: "<h1>hi</h1>"},
		"srv/static/home.html":  {Type: tar.TypeReg, Mode: 0o644, ModTime: date, Data: "<h1>hi</h1>"},
	}
	if diff := cmp.Diff(want, files); diff != "" {
		t.Errorf("static files layer (-want +got):\n%s", diff)
	}
}
