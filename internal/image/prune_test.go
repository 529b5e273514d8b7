package image

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/testkit"
)

// cacheFile is a file a test puts in a cache: its path under the cache,
// size, and how long ago it was last used.
type cacheFile struct {
	path string
	size int64
	age  time.Duration
}

// cacheGroup is files that a prune keeps or removes together.
type cacheGroup struct {
	name  string
	files []cacheFile
}

// hexKey makes a digest-like name out of one hex character.
func hexKey(c string) string { return strings.Repeat(c, 64) }

// layerEntry is a layer of size bytes in all: a 10-byte meta and its blob.
func layerEntry(k string, size int64, age time.Duration) cacheGroup {
	return cacheGroup{"layer " + k, []cacheFile{
		{cacheFormat + "/" + hexKey(k) + ".json", 10, age},
		{cacheFormat + "/" + hexKey(k) + ".tar.gz", size - 10, age},
	}}
}

// blobEntry is a pulled base layer.
func blobEntry(k string, size int64, age time.Duration) cacheGroup {
	return cacheGroup{"blob " + k, []cacheFile{{"blobs/sha256/" + hexKey(k), size, age}}}
}

// file is one file, named by its path.
func file(path string, size int64, age time.Duration) cacheGroup {
	return cacheGroup{path, []cacheFile{{path, size, age}}}
}

// fillCache writes the groups' files under dir with their mtimes set.
func fillCache(t *testing.T, dir string, now time.Time, groups []cacheGroup) {
	t.Helper()
	for _, g := range groups {
		for _, f := range g.files {
			path := filepath.Join(dir, filepath.FromSlash(f.path))
			writeFile(t, path, strings.Repeat("x", int(f.size)), 0o644)
			at := now.Add(-f.age)
			if err := os.Chtimes(path, at, at); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// survivors names the groups whose files are all still there, and fails
// the test for a group that is only partly there.
func survivors(t *testing.T, dir string, groups []cacheGroup) []string {
	t.Helper()
	var left []string
	for _, g := range groups {
		n := 0
		for _, f := range g.files {
			if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(f.path))); err == nil {
				n++
			}
		}
		switch n {
		case len(g.files):
			left = append(left, g.name)
		case 0:
		default:
			t.Errorf("%s: %d of its %d files were removed", g.name, len(g.files)-n, len(g.files))
		}
	}
	return left
}

func TestPrune(t *testing.T) {
	const h = time.Hour
	tests := []struct {
		name   string
		groups []cacheGroup
		policy prunePolicy
		// sinceAgo is how long ago the run started (default: just now).
		sinceAgo time.Duration
		left     []string
		gone     []string // directories that must be gone
		want     pruned
		wantErr  string
	}{
		{
			name: "age limit",
			groups: []cacheGroup{
				layerEntry("1", 100, 800*h), layerEntry("2", 100, 100*h),
				blobEntry("3", 50, 1000*h), blobEntry("4", 50, 10*h),
			},
			policy: prunePolicy{maxAge: 720 * h},
			left:   []string{"layer 2", "blob 4"},
			want:   pruned{layers: 2, freed: 150, kept: 150},
		},
		{
			name: "size limit drops the least recently used first",
			groups: []cacheGroup{
				layerEntry("1", 100, 2*h), layerEntry("2", 100, 5*h),
				blobEntry("3", 100, 3*h), layerEntry("4", 100, 4*h),
			},
			policy: prunePolicy{maxSize: 250, maxAge: 720 * h},
			left:   []string{"layer 1", "blob 3"},
			want:   pruned{layers: 2, freed: 200, kept: 200},
		},
		{
			name: "what was used in the last hour stays whatever the limits",
			groups: []cacheGroup{
				layerEntry("1", 100, 59*time.Minute), blobEntry("2", 100, 45*time.Minute),
				layerEntry("3", 100, 61*time.Minute), blobEntry("4", 100, 5*h),
			},
			policy: prunePolicy{maxSize: 1, maxAge: 30 * time.Minute},
			left:   []string{"layer 1", "blob 2"},
			want:   pruned{layers: 2, freed: 200, kept: 200},
		},
		{
			name: "what this run used stays, however long it ran",
			groups: []cacheGroup{
				layerEntry("1", 100, 2*h), blobEntry("2", 100, 170*time.Minute),
				layerEntry("3", 100, 4*h),
			},
			sinceAgo: 3 * h,
			policy:   prunePolicy{maxSize: 1, maxAge: h},
			left:     []string{"layer 1", "blob 2"},
			want:     pruned{layers: 1, freed: 100, kept: 200},
		},
		{
			name: "temporary files of killed runs go after an hour",
			groups: []cacheGroup{
				file(cacheFormat+"/."+hexKey("1")+".tar.gz.tmp-123456", 100, 2*h),
				file(cacheFormat+"/."+hexKey("2")+".json.tmp-42", 10, 10*time.Minute),
				file("blobs/sha256/.tmp-987654", 50, 3*h),
				layerEntry("3", 100, 5000*h),
			},
			left: []string{cacheFormat + "/." + hexKey("2") + ".json.tmp-42", "layer 3"},
			want: pruned{temps: 2, freed: 150, kept: 110},
		},
		{
			name: "other formats go, files that are not slipway's stay",
			groups: []cacheGroup{
				{"gzip-best-v0", []cacheFile{{"gzip-best-v0/" + hexKey("a") + ".tar.gz", 90, 2 * h}, {"gzip-best-v0/" + hexKey("a") + ".json", 10, 3 * h}}},
				{"gzip-default-v0", []cacheFile{{"gzip-default-v0/" + hexKey("b") + ".tar.gz", 50, 48 * h}}},
				// Used a moment ago, maybe by a newer slipway next door.
				{"gzip-best-v2", []cacheFile{{"gzip-best-v2/" + hexKey("c") + ".tar.gz", 40, 10 * time.Minute}}},
				layerEntry("1", 100, 2*h),
				file("notes.txt", 7, 1000*h),
				file("gzip-fast/"+hexKey("d")+".tar.gz", 7, 1000*h),
				file("gzip-best-v0.bak/"+hexKey("d")+".tar.gz", 7, 1000*h),
				file(cacheFormat+"/README", 7, 1000*h),
				file(cacheFormat+"/"+hexKey("e")+".json.bak", 7, 1000*h),
				file(cacheFormat+"/.notes.tmp-1", 7, 1000*h),
				file("blobs/sha256/not-a-digest", 7, 1000*h),
				file("blobs/sha256/"+strings.ToUpper(hexKey("f")), 7, 1000*h),
				file("blobs/SHA-256/"+hexKey("f"), 7, 1000*h),
				file("blobs/sha256/.tmp-x", 7, 1000*h),
			},
			policy: prunePolicy{maxSize: 1, maxAge: 720 * h},
			left: []string{
				"gzip-best-v2", "notes.txt", "gzip-fast/" + hexKey("d") + ".tar.gz", "gzip-best-v0.bak/" + hexKey("d") + ".tar.gz",
				cacheFormat + "/README", cacheFormat + "/" + hexKey("e") + ".json.bak", cacheFormat + "/.notes.tmp-1",
				"blobs/sha256/not-a-digest", "blobs/sha256/" + strings.ToUpper(hexKey("f")), "blobs/SHA-256/" + hexKey("f"),
				"blobs/sha256/.tmp-x",
			},
			gone: []string{"gzip-best-v0", "gzip-default-v0"},
			want: pruned{layers: 1, formats: 2, freed: 250, kept: 40},
		},
		{
			name: "size limit 0 is no size limit",
			groups: []cacheGroup{
				layerEntry("1", 1000, 2*h), layerEntry("2", 1000, 300*h), blobEntry("3", 1000, 700*h),
				layerEntry("4", 1000, 800*h),
			},
			policy: prunePolicy{maxSize: 0, maxAge: 720 * h},
			left:   []string{"layer 1", "layer 2", "blob 3"},
			want:   pruned{layers: 1, freed: 1000, kept: 3000},
		},
		{
			name: "a layer was last used when its newest file was; halves of layers go",
			groups: []cacheGroup{
				{"layer 1", []cacheFile{{cacheFormat + "/" + hexKey("1") + ".json", 10, 30 * h}, {cacheFormat + "/" + hexKey("1") + ".tar.gz", 90, 2000 * h}}},
				{"blob without meta", []cacheFile{{cacheFormat + "/" + hexKey("2") + ".tar.gz", 90, 2000 * h}}},
				{"meta without blob", []cacheFile{{cacheFormat + "/" + hexKey("3") + ".json", 10, 2000 * h}}},
			},
			policy: prunePolicy{maxAge: 720 * h},
			left:   []string{"layer 1"},
			want:   pruned{layers: 2, freed: 100, kept: 100},
		},
		{
			name: "an OCI layout is not a cache",
			groups: []cacheGroup{
				file("oci-layout", 30, 1000*h), file("index.json", 300, 1000*h), blobEntry("1", 100, 1000*h),
			},
			policy:  prunePolicy{maxSize: 1, maxAge: h},
			left:    []string{"oci-layout", "index.json", "blob 1"},
			wantErr: "is an OCI image layout, not a cache",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			now := time.Now().Truncate(time.Second)
			fillCache(t, dir, now, tt.groups)
			p := tt.policy
			p.now, p.since = now, now.Add(-tt.sinceAgo)
			got, err := prune(context.Background(), dir, p)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("err = %v, want %q", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.left, survivors(t, dir, tt.groups)); diff != "" {
				t.Errorf("left in the cache (-want +got):\n%s", diff)
			}
			for _, d := range tt.gone {
				if _, err := os.Stat(filepath.Join(dir, d)); err == nil {
					t.Errorf("%s is still there", d)
				}
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(pruned{})); diff != "" {
				t.Errorf("pruned (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPrunedString(t *testing.T) {
	tests := []struct {
		p    pruned
		want string
	}{
		{pruned{layers: 12, freed: 340 << 20, kept: 1 << 30}, "pruned 12 layers, 340.0 MiB; 1.0 GiB kept"},
		{pruned{layers: 1, temps: 1, formats: 2, freed: 2048}, "pruned 1 layer, 1 temporary file, 2 old cache formats, 2.0 KiB; 0 B kept"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

// An entry found used after the scan stays: another slipway had a hit on
// it while this one pruned. Its meta is checked first: a hit marks the
// meta before the blob.
func TestPruneKeepsEntryUsedDuringPrune(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().Truncate(time.Second)
	g := layerEntry("1", 100, 5*time.Hour)
	fillCache(t, dir, now, []cacheGroup{g})
	items, err := scanCache(dir)
	if err != nil || len(items) != 1 {
		t.Fatalf("scan: %d items, %v; want one", len(items), err)
	}
	markUsed(items[0].paths[0])
	gone, err := removeUnused(items[0], now.Add(-time.Hour))
	if gone || err != nil {
		t.Errorf("removeUnused = %v, %v; want the entry kept", gone, err)
	}
	if left := survivors(t, dir, []cacheGroup{g}); len(left) != 1 {
		t.Errorf("the entry was removed")
	}
}

// Bad limits are one line and exit 2, from the command line or an input.
func TestMainCacheLimitErrors(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		args    []string
		wantErr string
	}{
		{name: "size flag", args: []string{"--cache-max-size", "5XB"}, wantErr: `--cache-max-size "5XB": want a size such as 500MB or 2GiB, or 0 for no limit`},
		{name: "negative size", args: []string{"--cache-max-size", "-1GB"}, wantErr: `--cache-max-size "-1GB"`},
		{name: "age flag", args: []string{"--cache-max-age", "30d"}, wantErr: `--cache-max-age "30d": want a Go duration such as 720h, or 0 for no limit`},
		{name: "negative age", args: []string{"--cache-max-age", "-1h"}, wantErr: `--cache-max-age "-1h"`},
		{name: "github input", environ: []string{"GITHUB_ACTIONS=true", "INPUT_CACHE_MAX_SIZE=lots"}, wantErr: `--cache-max-size "lots"`},
		{name: "gitlab variable", environ: []string{"GITLAB_CI=true", "SLIPWAY_CACHE_MAX_AGE=a month"}, wantErr: `--cache-max-age "a month"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			args := append([]string{"--dist", "dist", "--cache", filepath.Join(dir, "cache")}, tt.args...)
			_, stderr, code := runMain(t, dir, testEnviron(tt.environ...), args...)
			if code != cli.ExitUsage {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, cli.ExitUsage, stderr)
			}
			if !strings.Contains(stderr, tt.wantErr) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
				t.Errorf("stderr = %q, want one line with %q", stderr, tt.wantErr)
			}
		})
	}
}

// A second run with one binary changed and a tiny --cache-max-size leaves
// the cache holding exactly the layers of the image it made.
func TestMainPrunesCache(t *testing.T) {
	repo, dist := sampleDist(t)
	cache := filepath.Join(t.TempDir(), "cache")
	args := []string{"--dist", "dist", "--dir", repo, "--cache", cache}
	if _, stderr, code := runMain(t, filepath.Dir(dist), testEnviron(), args...); code != 0 {
		t.Fatalf("first run: exit %d:\n%s", code, stderr)
	}
	before := cachedDigests(t, cache)

	// The first run was a while ago: outside the hour that protects a
	// neighbour's reads.
	old := time.Now().Add(-3 * time.Hour)
	if err := filepath.WalkDir(cache, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(path, old, old)
	}); err != nil {
		t.Fatal(err)
	}
	editRecord(t, dist, func(r *record.Record) {
		a := &r.Artifacts[0]
		bin := filepath.Join(dist, filepath.FromSlash(a.Path))
		data, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, "rebuilt"...)
		writeFile(t, bin, string(data), 0o755)
		a.SHA256, a.Size = sha256Hex(data), int64(len(data))
	})

	_, stderr, code := runMain(t, filepath.Dir(dist), testEnviron(), append(args, "--cache-max-size", "1")...)
	if code != 0 {
		t.Fatalf("second run: exit %d:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "image: cache: pruned 1 layer, ") {
		t.Errorf("stderr = %q, want the one old layer reported pruned", stderr)
	}

	var want []string
	idx := testkit.LayoutIndex(t, filepath.Join(dist, "image"))
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range im.Manifests {
		img, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		ls, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			d, _ := l.Digest()
			if !slices.Contains(want, d.String()) {
				want = append(want, d.String())
			}
		}
	}
	slices.Sort(want)
	got := cachedDigests(t, cache)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("layers in the cache (-want +got):\n%s", diff)
	}
	if len(before) != len(got) {
		t.Errorf("the cache held %d layers after the first run and %d after the second, want as many (one replaced)", len(before), len(got))
	}
	if slices.Equal(before, got) {
		t.Errorf("the changed binary's layer is the same as before")
	}
}

// cachedDigests lists the blob digests of the layers in the cache, and
// fails the test for a meta without its blob.
func cachedDigests(t *testing.T, cache string) []string {
	t.Helper()
	metas, err := filepath.Glob(filepath.Join(cache, cacheFormat, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var digests []string
	for _, m := range metas {
		data, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		var l compressedLayer
		if err := json.Unmarshal(data, &l); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(strings.TrimSuffix(m, ".json") + ".tar.gz"); err != nil {
			t.Errorf("meta without its blob: %v", err)
		}
		digests = append(digests, l.Digest.String())
	}
	blobs, _ := filepath.Glob(filepath.Join(cache, "blobs", "sha256", "*"))
	for _, b := range blobs {
		digests = append(digests, "sha256:"+filepath.Base(b))
	}
	slices.Sort(digests)
	return digests
}
