package image

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

// entry is one file, directory or symlink in a layer. Everything that goes
// into a tar header is here, so a layer's bytes depend on nothing else.
type entry struct {
	name string // relative, forward slashes, no leading "/"
	dir  bool
	link string // symlink target
	mode int64  // permission bits, with sticky/setuid where wanted
	uid  int
	gid  int
	// data or file holds a regular file's contents; file is a path, or a
	// name in root when that is set.
	data []byte
	file string
	root *os.Root
	// listedMode is a tree file's mode when listed, which it must still
	// have when read: mode may be set otherwise (--file chmod=).
	listedMode int64
	// tee, if set, sees the file's contents as they are read.
	tee io.Writer
}

// source is a layer's uncompressed content, written on demand. write must
// produce the same bytes every time it is called.
type source struct {
	desc  string // what the layer holds, for history and messages
	write func(io.Writer) error
}

// tarSource makes a source of entries, with every time set to mtime and
// ownership and modes as the entries say, never as the disk says.
func tarSource(desc string, entries []entry, mtime time.Time) source {
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	return source{desc: desc, write: func(w io.Writer) error { return writeTar(w, entries, mtime) }}
}

func writeTar(w io.Writer, entries []entry, mtime time.Time) error {
	tw := tar.NewWriter(w)
	for _, e := range entries {
		if err := writeEntry(tw, e, mtime); err != nil {
			return err
		}
	}
	return tw.Close()
}

func writeEntry(tw *tar.Writer, e entry, mtime time.Time) error {
	h := &tar.Header{
		Name:    e.name,
		Mode:    e.mode,
		Uid:     e.uid,
		Gid:     e.gid,
		ModTime: mtime,
		Format:  tar.FormatPAX,
	}
	switch {
	case e.dir:
		h.Typeflag, h.Name = tar.TypeDir, strings.TrimSuffix(e.name, "/")+"/"
	case e.link != "":
		h.Typeflag, h.Linkname = tar.TypeSymlink, e.link
	default:
		h.Typeflag = tar.TypeReg
	}
	if h.Typeflag != tar.TypeReg {
		return tw.WriteHeader(h)
	}
	if e.file == "" {
		h.Size = int64(len(e.data))
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(e.data)
		return err
	}
	f, err := e.open()
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	h.Size = st.Size()
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	var r io.Reader = f
	if e.tee != nil {
		r = io.TeeReader(f, e.tee)
	}
	if n, err := io.Copy(tw, r); err != nil {
		return fmt.Errorf("reading %s: %w", e.file, err)
	} else if n != h.Size {
		return fmt.Errorf("reading %s: it changed size while being read", e.file)
	}
	return nil
}

// parents returns directory entries for every parent of name, so a layer
// never relies on the runtime to invent a directory's mode.
func parents(name string) []entry {
	var out []entry
	for dir := path.Dir(name); dir != "." && dir != "/"; dir = path.Dir(dir) {
		out = append(out, entry{name: dir, dir: true, mode: 0o755})
	}
	return out
}

// BinDir is where each binary lands in the image, one layer per binary.
const BinDir = "usr/local/bin"

// binarySource is a layer holding one binary at /usr/local/bin/<name>.
func binarySource(name, file, sha string, mtime time.Time) source {
	target := path.Join(BinDir, name)
	return placedBinarySource(target, parents(target), file, sha, mtime)
}

// placedBinarySource is a layer holding one binary at target, with dirs
// for its parents. As it writes, it checks the binary against the SHA-256 the build
// recorded, which costs nothing more than the read the layer needs anyway.
func placedBinarySource(target string, dirs []entry, file, sha string, mtime time.Time) source {
	entries := append([]entry(nil), dirs...)
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	return source{desc: "/" + target, write: func(w io.Writer) error {
		h := sha256.New()
		bin := entry{name: target, mode: 0o755, file: file, tee: h}
		// write runs once to hash and once to compress: each run gets its
		// own list and its own hash.
		all := append(append([]entry(nil), entries...), bin)
		if err := writeTar(w, all, mtime); err != nil {
			return err
		}
		if sha != "" && hex.EncodeToString(h.Sum(nil)) != sha {
			return fmt.Errorf("binary %s changed since slipway build (its SHA-256 differs from the record); run slipway build again", file)
		}
		return nil
	}}
}

// staticFilesSource is a layer with the tree at /srv/static.
func staticFilesSource(t *tree, mtime time.Time) (source, error) {
	entries, err := t.entries(".", StaticDir)
	if err != nil {
		return source{}, err
	}
	return tarSource("/"+StaticDir, append(parents(StaticDir), entries...), mtime), nil
}

// StaticDir is where --static-files puts its directory in the image.
const StaticDir = "srv/static"
