package image

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// tree is a directory on disk whose files go into a layer: --static-files
// and --file SRC:DEST. Everything in it is opened through an
// os.Root, so a symlink is followed only while it stays inside, whether it
// was there when the tree was listed or was put there before the layer was
// written. A link out would otherwise copy whatever it points at (a
// runner's registry login, say) into an image anyone may pull.
type tree struct {
	root *os.Root
	dir  string // as given, for messages
}

func openTree(dir string) (*tree, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	return &tree{root: root, dir: dir}, nil
}

// Close releases the tree; entries from it can no longer be written.
func (t *tree) Close() error { return t.root.Close() }

// entries lists what is at from, a slash-separated path in the tree ("."
// for all of it), as layer entries at to: one file, or a directory and
// everything below it. Symlinks inside the tree are followed (as ko does
// for kodata); one that leads out of it is refused, as is anything but
// files and directories.
func (t *tree) entries(from, to string) ([]entry, error) {
	if !fs.ValidPath(from) {
		return nil, fmt.Errorf("%s: not a path inside %s", from, t.dir)
	}
	var out []entry
	err := fs.WalkDir(t.root.FS(), from, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return t.explain(name, err)
		}
		st, err := t.root.Stat(filepath.FromSlash(name))
		if err != nil {
			return t.explain(name, err)
		}
		dest := to
		if name != from {
			dest = path.Join(to, strings.TrimPrefix(name, from+"/"))
		}
		switch {
		case st.IsDir() && d.Type()&fs.ModeSymlink != 0:
			// WalkDir does not descend into it; leaving it out quietly
			// would ship an image without those files.
			return fmt.Errorf("%s: a symlink to a directory is not supported", name)
		case st.IsDir():
			out = append(out, entry{name: dest, dir: true, mode: layerMode(st.Mode())})
		case st.Mode().IsRegular():
			// Found unreadable now, a file is a configuration error;
			// found while layering, it would be a failure.
			f, err := t.root.Open(filepath.FromSlash(name))
			if err != nil {
				return t.explain(name, err)
			}
			f.Close()
			m := layerMode(st.Mode())
			out = append(out, entry{name: dest, mode: m, listedMode: m, file: name, root: t.root})
		default:
			return fmt.Errorf("%s: not a regular file or directory", name)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// explain turns the root's refusal of a symlink into one line that says
// where the link goes: os.Root does not export its "escapes" error, so the
// links are followed here, by name, as far as they stay inside.
func (t *tree) explain(name string, err error) error {
	p, link := name, ""
	for hops := 0; hops < 40; hops++ {
		st, lerr := t.root.Lstat(filepath.FromSlash(p))
		if lerr != nil || st.Mode()&fs.ModeSymlink == 0 {
			break
		}
		if link, lerr = t.root.Readlink(filepath.FromSlash(p)); lerr != nil {
			break
		}
		next := path.Join(path.Dir(p), filepath.ToSlash(link))
		if filepath.IsAbs(link) || !fs.ValidPath(next) {
			return fmt.Errorf("%s links to %s, outside the directory; copy the file in instead", name, link)
		}
		p = next
	}
	switch {
	case link != "" && errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s is a symlink to %s, which does not exist", name, link)
	case !fs.ValidPath(name):
		return fmt.Errorf("%s: not a path inside %s", name, t.dir)
	}
	return err
}

// layerMode is the mode a file or directory gets in the layer: 0755 for a
// directory or a file its owner may run, 0644 for any other file, and
// never a bit the source itself lacks, so that what only its owner could
// read stays so in the image.
func layerMode(m fs.FileMode) int64 {
	want := fs.FileMode(0o644)
	if m.IsDir() || m&0o100 != 0 {
		want = 0o755
	}
	return int64(want & m.Perm())
}

// open opens a regular file's contents for writing it into a layer:
// through its tree's root if it has one, and refusing anything that is no
// longer the plain file it was when listed.
func (e entry) open() (*os.File, error) {
	if e.root == nil {
		return os.Open(e.file)
	}
	f, err := e.root.Open(filepath.FromSlash(e.file))
	if err != nil {
		return nil, fmt.Errorf("%s: %w (changed since it was listed?)", e.file, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() || layerMode(st.Mode()) != e.listedMode {
		f.Close()
		return nil, fmt.Errorf("%s changed since it was listed (now %s)", e.file, st.Mode())
	}
	return f, nil
}
