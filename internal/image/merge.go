package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/slipwayci/slipway/internal/build"
	"github.com/slipwayci/slipway/internal/fault"
	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/safefile"
	"github.com/slipwayci/slipway/internal/version"
)

// part is one matrix job's result: its dist directory and record.
type part struct {
	dir string
	rec *record.Record
	idx v1.ImageIndex
}

// Merge combines the image results of matrix jobs, each dir a dist with an
// image section, into one index in o.Dist: the layout, the SBOMs, the
// binaries and a record covering them all. The parts must agree on
// everything but their platforms, so the merged index is the one a single
// job building every platform would have made.
func Merge(ctx context.Context, o Options, dirs []string) (*record.Record, error) {
	o.defaults()
	if err := checkLayoutDir(o.Layout); err != nil {
		return nil, fault.As(fault.Invalid, err)
	}
	parts, err := loadParts(ctx, o, dirs)
	if err != nil {
		return nil, err
	}
	first := parts[0]
	anns, err := first.annotations()
	if err != nil {
		return nil, err
	}
	merged := &record.Record{
		Slipway: version.String(), Module: first.rec.Module, Version: first.rec.Version,
		Commit: first.rec.Commit, Date: first.rec.Date, GoVersion: first.rec.GoVersion,
	}
	var targets []*target
	sboms := map[*target][]record.SBOM{}
	seen := map[string]string{}
	for _, p := range parts {
		if err := p.agrees(first, anns); err != nil {
			return nil, err
		}
		for _, pi := range p.rec.Image.Platforms {
			if other, ok := seen[pi.Platform]; ok {
				return nil, fault.Optionf("merge", ": %s is in both %s and %s; give each platform once", pi.Platform, other, p.dir)
			}
			seen[pi.Platform] = p.dir
			t, err := p.target(pi)
			if err != nil {
				return nil, err
			}
			targets = append(targets, t)
			sboms[t] = pi.SBOMs
		}
	}
	entry := ""
	if ep := first.rec.Image.Entrypoint; len(ep) > 0 {
		entry = ep[0]
	}
	tar, err := planTarball(o, targets, entry, merged.Version)
	if err != nil {
		return nil, err
	}
	if err := copyParts(parts, o.Dist, merged, sboms); err != nil {
		return nil, err
	}
	idx := index(targets, anns)
	if err := writeLayout(o.Layout, idx, first.rec.Image.Ref); err != nil {
		return nil, err
	}
	b := &base{spec: first.rec.Image.Base, digest: first.rec.Image.BaseDigest}
	sec, err := section(o, merged, b, idx, targets, first.rec.Image.Ref, first.rec.Image.Entrypoint, sboms)
	if err != nil {
		return nil, err
	}
	if tar != nil {
		if sec.Tarball, err = tar.write(o); err != nil {
			return nil, err
		}
	}
	merged.Image = sec
	if err := merged.Save(o.Dist); err != nil {
		return nil, err
	}
	return merged, nil
}

// loadParts reads each part's record and index, refusing parts without an
// image section or from another commit than the checkout.
func loadParts(ctx context.Context, o Options, dirs []string) ([]*part, error) {
	var parts []*part
	for _, dir := range dirs {
		rec, err := record.Load(dir)
		if err != nil {
			return nil, fault.Optionf("merge", "%s: %v", dir, err)
		}
		if rec.Image == nil {
			return nil, fault.Optionf("merge", "%s: its record has no image section; run slipway image there first", dir)
		}
		if _, err := checkCommit(ctx, o, rec, filepath.Join(dir, record.File)); err != nil {
			return nil, err
		}
		idx, err := refIndex(record.Path(dir, rec.Image.Layout), rec.Image.Digest)
		if err != nil {
			return nil, fault.Optionf("merge", "%s: %v", dir, err)
		}
		parts = append(parts, &part{dir: dir, rec: rec, idx: idx})
	}
	return parts, nil
}

// refIndex opens the index with the given digest in an OCI layout.
func refIndex(dir, digest string) (v1.ImageIndex, error) {
	root, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("reading OCI layout: %w", err)
	}
	h, err := v1.NewHash(digest)
	if err != nil {
		return nil, fmt.Errorf("reading the record's digest: %w", err)
	}
	return root.ImageIndex(h)
}

func (p *part) annotations() (map[string]string, error) {
	im, err := p.idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading %s's index: %w", p.dir, err)
	}
	return im.Annotations, nil
}

// agrees checks that p could have come from the same job as first, but
// for its platforms.
func (p *part) agrees(first *part, anns map[string]string) error {
	a, b := first.rec, p.rec
	for _, f := range []struct{ what, x, y string }{
		{"module", a.Module, b.Module},
		{"version", a.Version, b.Version},
		{"commit", a.Commit, b.Commit},
		{"base", a.Image.Base, b.Image.Base},
		{"entrypoint", strings.Join(a.Image.Entrypoint, " "), strings.Join(b.Image.Entrypoint, " ")},
	} {
		if f.x != f.y {
			return fault.Optionf("merge", ": %s and %s have different %ss (%q, %q)", first.dir, p.dir, f.what, f.x, f.y)
		}
	}
	mine, err := p.annotations()
	if err != nil {
		return err
	}
	keys := map[string]bool{}
	for k := range anns {
		keys[k] = true
	}
	for k := range mine {
		keys[k] = true
	}
	for k := range keys {
		if anns[k] != mine[k] {
			return fault.Optionf("merge", ": %s and %s disagree on %s (%q, %q); run their jobs with the same settings", first.dir, p.dir, k, anns[k], mine[k])
		}
	}
	return nil
}

// target is the part's image for one platform, as Build would have it.
func (p *part) target(pi record.PlatformImage) (*target, error) {
	plat, err := parsePlatform(pi.Platform)
	if err != nil {
		return nil, err
	}
	h, err := v1.NewHash(pi.Digest)
	if err != nil {
		return nil, &fault.OptionError{Option: "merge", Err: fmt.Errorf("%s: %s: %w", p.dir, pi.Platform, err)}
	}
	img, err := p.idx.Image(h)
	if err != nil {
		return nil, fault.Optionf("merge", "%s: %s image %s is not in its layout: %v", p.dir, pi.Platform, pi.Digest, err)
	}
	return &target{platform: plat, image: img, baseDigest: pi.BaseDigest}, nil
}

// copyParts brings each part's binaries and SBOMs into dist, so the
// merged record's paths hold there, and lists the binaries in merged.
func copyParts(parts []*part, dist string, merged *record.Record, sboms map[*target][]record.SBOM) error {
	byPath := map[string]record.Artifact{}
	for _, p := range parts {
		for _, a := range p.rec.Artifacts {
			if old, ok := byPath[a.Path]; ok {
				if old.SHA256 != a.SHA256 {
					return fault.Optionf("merge", ": %s differs between parts (%.12s, %.12s)", a.Path, old.SHA256, a.SHA256)
				}
				continue
			}
			byPath[a.Path] = a
			if err := copyInto(p.dir, dist, a.Path); err != nil {
				return err
			}
			merged.Artifacts = append(merged.Artifacts, a)
		}
		for _, pi := range p.rec.Image.Platforms {
			for _, sb := range pi.SBOMs {
				if err := copyInto(p.dir, dist, sb.Path); err != nil {
					return err
				}
			}
		}
	}
	sort.Slice(merged.Artifacts, func(i, j int) bool { return merged.Artifacts[i].Path < merged.Artifacts[j].Path })
	var sums bytes.Buffer
	for _, a := range merged.Artifacts {
		fmt.Fprintf(&sums, "%s  %s\n", a.SHA256, a.Path)
	}
	return safefile.Write(filepath.Join(dist, build.ChecksumsFile), sums.Bytes(), 0o644)
}

// copyInto copies rel from one directory to the same place in another,
// by a hard link where it can.
func copyInto(from, to, rel string) error {
	if !filepath.IsLocal(filepath.FromSlash(rel)) {
		return fault.Optionf("merge", "%s: path %s leaves the directory", from, rel)
	}
	src := filepath.Join(from, filepath.FromSlash(rel))
	dst := filepath.Join(to, filepath.FromSlash(rel))
	if same, _ := sameFile(src, dst); same {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	os.Remove(dst)
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	st, err := os.Stat(src)
	if err != nil {
		return &fault.OptionError{Option: "merge", Err: fmt.Errorf(": %w", err)}
	}
	return safefile.WriteFrom(dst, st.Mode().Perm(), func(w io.Writer) error {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		return err
	})
}

func sameFile(a, b string) (bool, error) {
	sa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	sb, err := os.Stat(b)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return os.SameFile(sa, sb), nil
}
