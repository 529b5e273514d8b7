package image

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/slipwayci/slipway/internal/cli"
)

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

// prune removes from the cache directory dir what p does not keep. It goes
// on past a file it cannot remove and returns the first such error with
// what it did.
func prune(ctx context.Context, dir string, p prunePolicy) (pruned, error) {
	var res pruned
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err == nil {
		// Its blobs/ looks like ours, and is anything but a cache.
		return res, fmt.Errorf("%s is an OCI image layout, not a cache; set --cache to a directory of its own", dir)
	}
	items, err := scanCache(dir)
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

// scanCache lists what slipway wrote in the cache: layers and temporary files
// in the current format's directory, pulled blobs under blobs/ALG/, and
// other formats' directories. Anything else is not slipway's to remove.
func scanCache(cacheDir string) ([]cacheItem, error) {
	ents, err := os.ReadDir(cacheDir)
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
		dir := filepath.Join(cacheDir, e.Name())
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
