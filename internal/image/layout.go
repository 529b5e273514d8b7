package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// annLayout, on the index.json of a layout slipway image writes, marks it
// as slipway's: the next run replaces the whole directory, and may do so
// only to what slipway wrote.
const (
	annLayout   = "dev.slipway.layout"
	layoutMaker = "slipway image"
)

// checkLayoutDir refuses a --layout that a run would destroy: anything but
// nothing, an empty directory, or a layout slipway wrote that holds
// nothing else.
func checkLayoutDir(dir string) error {
	st, err := os.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("--layout %s: %w", dir, err)
	case !st.IsDir():
		return fmt.Errorf("--layout %s is not a directory; give a new or empty directory", dir)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("--layout %s: %w", dir, err)
	}
	if len(ents) == 0 || ownLayout(dir, ents) {
		return nil
	}
	return fmt.Errorf("--layout %s holds files slipway did not write, and writing the layout would replace them; give a new or empty directory", dir)
}

// ownLayout tells whether dir, listed as ents, is a layout slipway wrote:
// marked so, and holding only what an OCI layout holds.
func ownLayout(dir string, ents []fs.DirEntry) bool {
	for _, e := range ents {
		switch e.Name() {
		case "oci-layout", "index.json":
			if !e.Type().IsRegular() {
				return false
			}
		case "blobs":
			if !e.IsDir() {
				return false
			}
		default:
			return false
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return false
	}
	var idx v1.IndexManifest
	return json.Unmarshal(data, &idx) == nil && idx.Annotations[annLayout] == layoutMaker
}

// writeLayout writes the index into a fresh OCI layout at dir, built aside
// and swapped in, so dir holds either the old layout or the new one. It
// checks dir again just before: it may have changed since the run began.
func writeLayout(dir string, idx v1.ImageIndex, ref string) error {
	if err := checkLayoutDir(dir); err != nil {
		return err
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", parent, err)
	}
	staging, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-*")
	if err != nil {
		return fmt.Errorf("creating staging layout: %w", err)
	}
	defer os.RemoveAll(staging)
	if err := os.Chmod(staging, 0o755); err != nil {
		return err
	}
	marked := mutate.Annotations(empty.Index, map[string]string{annLayout: layoutMaker}).(v1.ImageIndex)
	p, err := layout.Write(staging, marked)
	if err != nil {
		return fmt.Errorf("writing OCI layout: %w", err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{annRefName: ref})); err != nil {
		return fmt.Errorf("writing OCI layout: %w", err)
	}
	old := staging + ".old"
	if err := os.Rename(dir, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("replacing %s: %w", dir, err)
	}
	if err := os.Rename(staging, dir); err != nil {
		os.Rename(old, dir)
		return fmt.Errorf("replacing %s: %w", dir, err)
	}
	os.RemoveAll(old)
	return nil
}
