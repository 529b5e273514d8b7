package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/slipwayci/slipway/internal/fault"
)

// File is a file or directory from the checkout placed in the image, as a
// Dockerfile's COPY places it: its own layer, owned by root unless Owner
// says otherwise, and each file's own mode (never wider) unless Mode is set.
type File struct {
	// Src is a path under Options.Context; a symlink in it is followed
	// only while it stays inside Context. Empty, Dest is made an empty
	// directory (a Dockerfile's RUN mkdir -p DEST && chown).
	Src string
	// Dest is the absolute path in the image; a Dest ending in "/" puts a
	// file Src inside that directory under its own name.
	Dest string
	// Owner, when set, owns everything copied (COPY --chown).
	Owner *Owner
	// Mode, when not 0, is every copied regular file's mode (COPY
	// --chmod); directories keep theirs, but for an empty Src's.
	Mode int64
}

// Owner is a numeric uid and gid.
type Owner struct{ UID, GID int }

// ParseFile reads SRC:DEST[,chown=UID[:GID]][,chmod=MODE], e.g.
// ui:/app/ui,chown=65532:65532 or config.yaml:/etc/app/,chmod=0640; an
// empty SRC, as in :/data,chown=65532, makes an empty directory.
func ParseFile(s string) (File, error) {
	parts := strings.Split(s, ",")
	src, dest, ok := strings.Cut(parts[0], ":")
	if !ok || dest == "" {
		return File{}, fault.Optionf("file", "{option} %q: want SRC:DEST, e.g. {option} ui:/app/ui", s)
	}
	f := File{Src: src, Dest: dest}
	if !strings.HasPrefix(dest, "/") {
		return File{}, fault.Optionf("file", "{option} %q: the destination %s must be an absolute path in the image, e.g. /app/%s", s, dest, path.Base(filepath.ToSlash(cmp.Or(src, "data"))))
	}
	if path.Clean(dest) == "/" {
		return File{}, fault.Optionf("file", "{option} %q: name a directory under /, e.g. /app", s)
	}
	for _, opt := range parts[1:] {
		k, v, _ := strings.Cut(opt, "=")
		switch k {
		case "chown":
			o, err := parseOwner(v)
			if err != nil {
				return File{}, fault.Optionf("file", "{option} %q: chown=%s: %v", s, v, err)
			}
			f.Owner = &o
		case "chmod":
			m, err := strconv.ParseUint(v, 8, 32)
			if err != nil || m == 0 || m > 0o7777 {
				return File{}, fault.Optionf("file", "{option} %q: chmod=%s is not an octal mode such as 0644 or 0755", s, v)
			}
			f.Mode = int64(m)
		default:
			return File{}, fault.Optionf("file", "{option} %q: unknown option %q; valid: chown=UID[:GID], chmod=MODE", s, k)
		}
	}
	return f, nil
}

// parseOwner reads UID[:GID] (numeric: names mean nothing until the image
// runs); a lone UID is also the GID, as COPY --chown has it.
func parseOwner(s string) (Owner, error) {
	u, g, hasG := strings.Cut(s, ":")
	uid, err := strconv.Atoi(u)
	if err != nil || uid < 0 {
		return Owner{}, errors.New("want numeric UID[:GID], e.g. chown=65532:65532")
	}
	gid := uid
	if hasG {
		if gid, err = strconv.Atoi(g); err != nil || gid < 0 {
			return Owner{}, errors.New("want numeric UID[:GID], e.g. chown=65532:65532")
		}
	}
	return Owner{UID: uid, GID: gid}, nil
}

// ParseBinary reads NAME:/PATH, where a built binary goes instead of
// /usr/local/bin/NAME.
func ParseBinary(s string) (string, string, error) {
	n, dest, ok := strings.Cut(s, ":")
	if !ok || n == "" || !strings.HasPrefix(dest, "/") || strings.HasSuffix(dest, "/") || path.Clean(dest) != dest {
		return "", "", fault.Optionf("binary", "{option} %q: want NAME:/PATH with an absolute, clean path, e.g. {option} server:/app/server", s)
	}
	return n, dest, nil
}

// baseView is what the step needs to know of a base's file system: which
// paths exist, and its users and groups.
type baseView struct {
	has           map[string]bool // no leading "/"
	passwd, group []byte
}

// viewBase reads a base's flattened file system (whiteouts applied).
func viewBase(img v1.Image) (baseView, error) {
	v := baseView{has: map[string]bool{}}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return v, nil
		}
		if err != nil {
			return v, fmt.Errorf("reading the base's files: %w", err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(path.Clean("/"+h.Name), "/"), "/")
		v.has[name] = true
		if h.Typeflag != tar.TypeReg || (name != "etc/passwd" && name != "etc/group") {
			continue
		}
		data, err := io.ReadAll(io.LimitReader(tr, 1<<20))
		if err != nil {
			return v, fmt.Errorf("reading the base's /%s: %w", name, err)
		}
		if name == "etc/passwd" {
			v.passwd = data
		} else {
			v.group = data
		}
	}
}

// checkUser refuses a user or group name the base does not define: the
// container would fail to start with "unable to find user". Numeric ids
// need no entry.
func (v baseView) checkUser(spec, baseName string) error {
	u, g, _ := strings.Cut(spec, ":")
	for _, c := range []struct{ name, file, what string }{{u, "passwd", "user"}, {g, "group", "group"}} {
		if c.name == "" {
			continue
		}
		if _, err := strconv.Atoi(c.name); err == nil {
			continue
		}
		data := v.passwd
		if c.file == "group" {
			data = v.group
		}
		names := entryNames(data)
		for _, n := range names {
			if n == c.name {
				goto next
			}
		}
		if len(names) == 0 {
			return fault.Optionf("user", "{option} %q: base %s has no /etc/%s, so %s %s cannot be found; give numeric ids, e.g. {option} 65532:65532", spec, baseName, c.file, c.what, c.name)
		}
		return fault.Optionf("user", "{option} %q: base %s has no %s %s in /etc/%s (it has %s); give numeric ids, e.g. {option} 10001:10001, or a base that defines %s",
			spec, baseName, c.what, c.name, c.file, strings.Join(names, ", "), c.name)
	next:
	}
	return nil
}

// entryNames is the first field of each line of an /etc/passwd or
// /etc/group.
func entryNames(data []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if n, _, ok := strings.Cut(line, ":"); ok && n != "" {
			out = append(out, n)
		}
	}
	return out
}

// needsView reports whether the options ask anything of the base's files.
func (o Options) needsView() bool {
	u, g, _ := strings.Cut(o.User, ":")
	_, uerr := strconv.Atoi(u)
	_, gerr := strconv.Atoi(g)
	named := (u != "" && uerr != nil) || (g != "" && gerr != nil)
	return named || len(o.Files) > 0 || len(o.Binaries) > 0 || o.Workdir != ""
}

// missingParents is a directory entry, owned by root and 0755, for each
// parent of name the base does not have and no earlier entry made. Parents
// the base has are left out: a layer's entry would replace their owner
// and mode (a /home/nonroot of 0700 would become root's).
func missingParents(name string, has map[string]bool, made map[string]bool) []entry {
	var out []entry
	for dir := path.Dir(name); dir != "." && dir != "/"; dir = path.Dir(dir) {
		if has[dir] || made[dir] {
			continue
		}
		made[dir] = true
		out = append(out, entry{name: dir, dir: true, mode: 0o755})
	}
	return out
}

// addedFile is a regular file a layer adds, for the SBOMs.
type addedFile struct {
	path   string // absolute, in the image
	sha256 string
}

// fileLayers makes one layer per File over the target's base, and a layer
// for a working directory nothing else makes. It returns them with every
// regular file they add.
func fileLayers(ctx context.Context, cache layerStore, o Options, view baseView, date time.Time) ([]mutate.Addendum, []addedFile, error) {
	var adds []mutate.Addendum
	var added []addedFile
	made := map[string]bool{}
	for _, f := range o.Files {
		t, entries, files, err := fileEntries(o.Context, f, view.has, made)
		if err != nil {
			return nil, nil, fault.Optionf("file", "{option} %s:%s: %v", f.Src, f.Dest, err)
		}
		// The tree stays open until the layer is written: its files are
		// read through it.
		l, _, err := cache.layer(ctx, tarSource("/"+strings.TrimPrefix(f.Dest, "/"), entries, date))
		if t != nil {
			t.Close()
		}
		if err != nil {
			return nil, nil, fault.Optionf("file", "{option} %s:%s: %v", f.Src, f.Dest, err)
		}
		adds = append(adds, mutate.Addendum{Layer: blobLayer{l}, History: v1.History{
			Created: v1.Time{Time: date}, CreatedBy: createdBy(f),
		}})
		added = append(added, files...)
	}
	if wd := strings.TrimPrefix(path.Clean(o.Workdir), "/"); o.Workdir != "" && wd != "" && !view.has[wd] && !made[wd] {
		entries := append(missingParents(wd, view.has, made), entry{name: wd, dir: true, mode: 0o755})
		l, _, err := cache.layer(ctx, tarSource("/"+wd, entries, date))
		if err != nil {
			return nil, nil, err
		}
		adds = append(adds, mutate.Addendum{Layer: blobLayer{l}, History: v1.History{
			Created: v1.Time{Time: date}, CreatedBy: "slipway image: WORKDIR /" + wd,
		}})
	}
	return adds, added, nil
}

// createdBy is a File's layer in the image's history, as a Dockerfile
// would have made it.
func createdBy(f File) string {
	if f.Src == "" {
		return "slipway image: mkdir " + f.Dest
	}
	return fmt.Sprintf("slipway image: COPY %s %s", f.Src, f.Dest)
}

// fileEntries lists one File's layer: what Src holds at Dest, with its
// missing parents, and the regular files with their SHA-256.
func fileEntries(context string, f File, has, made map[string]bool) (_ *tree, _ []entry, _ []addedFile, err error) {
	if f.Src == "" {
		dest := strings.TrimPrefix(path.Clean(f.Dest), "/")
		dir := entry{name: dest, dir: true, mode: cmp.Or(f.Mode, 0o755)}
		if f.Owner != nil {
			dir.uid, dir.gid = f.Owner.UID, f.Owner.GID
		}
		entries := append(missingParents(dest, has, made), dir)
		made[dest] = true
		return nil, entries, nil, nil
	}
	src := filepath.Clean(filepath.FromSlash(f.Src))
	if filepath.IsAbs(src) {
		rel, err := filepath.Rel(context, src)
		if err != nil || !filepath.IsLocal(rel) {
			return nil, nil, nil, fmt.Errorf("%s is outside %s; copy it into the checkout first", f.Src, context)
		}
		src = rel
	}
	if !filepath.IsLocal(src) && src != "." {
		return nil, nil, nil, fmt.Errorf("%s is outside %s; copy it into the checkout first", f.Src, context)
	}
	t, err := openTree(context)
	if err != nil {
		return nil, nil, nil, err
	}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	from := filepath.ToSlash(src)
	st, err := t.root.Stat(src)
	if errors.Is(err, fs.ErrNotExist) && !isLink(t, src) {
		return nil, nil, nil, fmt.Errorf("%s does not exist in %s", f.Src, context)
	}
	if err != nil {
		return nil, nil, nil, t.explain(from, err)
	}
	dest := strings.TrimPrefix(path.Clean(f.Dest), "/")
	if strings.HasSuffix(f.Dest, "/") && !st.IsDir() {
		dest = path.Join(dest, path.Base(from))
	}
	listed, err := t.entries(from, dest)
	if err != nil {
		return nil, nil, nil, err
	}
	var files []addedFile
	for i := range listed {
		e := &listed[i]
		if f.Owner != nil {
			e.uid, e.gid = f.Owner.UID, f.Owner.GID
		}
		if e.dir {
			continue
		}
		sum, err := hashEntry(*e)
		if err != nil {
			return nil, nil, nil, err
		}
		if f.Mode != 0 {
			e.mode = f.Mode
		}
		files = append(files, addedFile{path: "/" + e.name, sha256: sum})
		made[e.name] = true
	}
	for _, e := range listed {
		if e.dir {
			made[e.name] = true
		}
	}
	entries := append(missingParents(dest, has, made), listed...)
	sort.Slice(files, func(i, j int) bool { return files[i].path < files[j].path })
	return t, entries, files, nil
}

// isLink reports whether name in t is a symlink (which explain describes).
func isLink(t *tree, name string) bool {
	st, err := t.root.Lstat(name)
	return err == nil && st.Mode()&fs.ModeSymlink != 0
}

// hashEntry is the SHA-256 of a listed regular file, read as the layer
// will read it.
func hashEntry(e entry) (string, error) {
	r, err := e.open()
	if err != nil {
		return "", err
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", fmt.Errorf("reading %s: %w", e.file, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// staticAdded lists the regular files of the --static-files layer.
func staticAdded(dir string) ([]addedFile, error) {
	t, err := openTree(dir)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	listed, err := t.entries(".", StaticDir)
	if err != nil {
		return nil, err
	}
	var out []addedFile
	for _, e := range listed {
		if e.dir {
			continue
		}
		sum, err := hashEntry(e)
		if err != nil {
			return nil, err
		}
		out = append(out, addedFile{path: "/" + e.name, sha256: sum})
	}
	return out, nil
}
