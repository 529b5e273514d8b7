// Package image layers the binaries of a slipway build onto a base image
// without a Docker daemon, the way ko does but with no second go build: one
// layer per binary, reproducible to the byte, an index over the platforms,
// SBOMs, and an OCI image layout that the push step publishes.
package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"

	"github.com/slipwayci/slipway/internal/ci"
	"github.com/slipwayci/slipway/internal/fault"
	"github.com/slipwayci/slipway/internal/gitinfo"
	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/redact"
	"github.com/slipwayci/slipway/internal/registry"
)

// Options describe one image step.
type Options struct {
	// Dist holds the build's slipway.json and binaries; the record is
	// updated in place and the SBOMs are written under it.
	Dist string
	// Layout is the OCI image layout to write (default Dist/image).
	Layout string
	// Base is static, scratch, an image reference or oci:DIR[:tag|@digest].
	Base string
	// Registry reads a base from a registry (nil: anonymously).
	Registry *registry.Client
	// Platforms limits the images to these of the built platforms.
	Platforms []v1.Platform
	// Entrypoint names the binary to run; empty picks the only binary or
	// the one named after the module.
	Entrypoint string
	// User, Workdir: empty keeps the base's (static: 65532:65532 and
	// /home/nonroot).
	User    string
	Workdir string
	// Env is set in the image's environment, over the base's values
	// (ParseEnv reads KEY=VALUE pairs).
	Env   map[string]string
	Ports []string // PORT[/PROTO]
	// Labels go into the image config; Annotations onto the index and the
	// manifests, over the ones the step fills in (ParseMeta reads them).
	Labels      map[string]string
	Annotations map[string]string
	// StaticFiles is a directory put at /srv/static as its own layer.
	StaticFiles string
	// Files go into the image one layer each, after StaticFiles and
	// before the binaries; Context is the directory their sources are
	// read from and must stay inside (default Dir).
	Files   []File
	Context string
	// Binaries puts a binary, by name, at an absolute path instead of
	// /usr/local/bin/NAME.
	Binaries map[string]string
	// Source and Licenses fill their OCI annotations; Source defaults to
	// the repository the CI platform or git's origin names.
	Source   string
	Licenses string
	// Tarball, if set, is where a docker-archive of one platform goes;
	// TarballPlatform picks it (default: this machine's, else the first)
	// and TarballTag names it (default <entrypoint>:<version>).
	Tarball         string
	TarballPlatform string
	TarballTag      string
	// Cache is the layer cache directory; empty compresses every layer
	// afresh into a temporary directory.
	Cache string
	// Parallel bounds how many layers are made at once (0: the cores).
	Parallel int
	// Dir is inside the checkout the record must come from.
	Dir string

	// Environ is the process environment (SOURCE_DATE_EPOCH).
	Environ []string
	// CI is what the platform reports: commit, repository, run.
	CI ci.Info
	// Log receives progress lines.
	Log io.Writer
}

// target is one platform's image as it is made.
type target struct {
	built    v1.Platform // as the binaries were built
	platform v1.Platform // as the image declares it
	arts     []record.Artifact
	base     v1.Image
	view     baseView          // of base, when the options need it
	files    []mutate.Addendum // the Files' layers over this base
	added    []addedFile       // what files and StaticFiles add
	layers   []compressedLayer // one per artifact
	cached   atomic.Int32      // layers the cache already had
	image    v1.Image
	// baseDigest is the base image's manifest, for base.digest.
	baseDigest string
}

// Build layers the record's binaries onto the base for each built platform
// the base offers, writes the OCI layout and the SBOMs, and adds the image
// section to the record in Dist.
func Build(ctx context.Context, o Options) (*record.Record, error) {
	o.defaults()
	if err := checkLayoutDir(o.Layout); err != nil {
		return nil, fault.As(fault.Invalid, err)
	}
	rec, date, err := loadRecord(ctx, o)
	if err != nil {
		return nil, err
	}
	cfg, err := o.config(date)
	if err != nil {
		return nil, fault.As(fault.Invalid, err)
	}
	userAnns, err := ParseMeta("annotation", pairs(o.Annotations))
	if err != nil {
		return nil, fault.As(fault.Invalid, err)
	}
	cache, done, err := openCache(o.Cache, o.Log)
	if err != nil {
		return nil, err
	}
	defer done()

	b, err := resolveBase(ctx, o.Registry, o.Base, o.Dir, cache)
	if err != nil {
		return nil, err
	}
	targets, err := selectTargets(rec, o.Platforms, b, o.Log)
	if err != nil {
		return nil, err
	}
	entry, err := chooseEntrypoint(rec.Module, targets, o.Entrypoint)
	if err != nil {
		return nil, fault.As(fault.Invalid, err)
	}
	if err := checkBinaries(targets, o.Binaries); err != nil {
		return nil, err
	}
	cfg.entrypoint = []string{binaryPath(o.Binaries, entry, entry)}
	tar, err := planTarball(o, targets, entry, rec.Version)
	if err != nil {
		return nil, err
	}

	var files []mutate.Addendum
	var static []addedFile
	if o.StaticFiles != "" {
		add, err := staticFilesLayer(ctx, cache.layers, o.StaticFiles, date)
		if err != nil {
			return nil, err
		}
		if static, err = staticAdded(o.StaticFiles); err != nil {
			return nil, fault.Optionf("static-files", "%s: %v", o.StaticFiles, err)
		}
		files = append(files, add)
		cfg.env = append([]string{"SLIPWAY_STATIC=/" + StaticDir}, cfg.env...)
	}
	for _, t := range targets {
		if err := t.prepare(ctx, cache.layers, o, b.spec, date); err != nil {
			return nil, err
		}
		t.added = append(append([]addedFile(nil), static...), t.added...)
	}
	if err := makeLayers(ctx, cache.layers, targets, o.Dist, o.Binaries, date, o.Parallel); err != nil {
		return nil, err
	}

	anns := map[string]string{
		annRevision: rec.Commit,
		annVersion:  rec.Version,
		annCreated:  date.Format(time.RFC3339),
		annTitle:    entry,
		annSource:   redact.URL(o.Source),
		annLicenses: o.Licenses,
	}
	if anns[annSource] == "" {
		anns[annSource] = sourceURL(ctx, o.Dir, o.CI)
	}
	for k, v := range userAnns {
		anns[k] = v
	}
	for _, t := range targets {
		if err := t.assemble(b, cfg, anns, append(append([]mutate.Addendum(nil), files...), t.files...), o.Binaries); err != nil {
			return nil, err
		}
		d, err := t.image.Digest()
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(o.Log, "image %s %s: %d binaries, %d layers from the cache\n", platformString(t.platform), d, len(t.arts), t.cached.Load())
	}
	idx := index(targets, withBase(anns, b.name, b.digest))
	ref := layoutRef(rec.Version)
	if err := writeLayout(o.Layout, idx, ref); err != nil {
		return nil, err
	}
	sboms, err := writeSBOMs(targets, rec, o.Dist, b, entry, o.Binaries, date)
	if err != nil {
		return nil, err
	}
	sec, err := section(o, rec, b, idx, targets, ref, cfg.entrypoint, sboms)
	if err != nil {
		return nil, err
	}
	if tar != nil {
		if sec.Tarball, err = tar.write(o); err != nil {
			return nil, err
		}
	}
	rec.Image = sec
	if err := rec.Save(o.Dist); err != nil {
		return nil, err
	}
	return rec, nil
}

func (o *Options) defaults() {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Parallel <= 0 {
		o.Parallel = runtime.NumCPU()
	}
	if o.Base == "" {
		o.Base = BaseStatic
	}
	if o.Layout == "" {
		o.Layout = filepath.Join(o.Dist, "image")
	}
	if o.Dir == "" {
		o.Dir = "."
	}
	if o.Context == "" {
		o.Context = o.Dir
	}
	if o.Registry == nil {
		o.Registry, _ = registry.New(registry.Options{Backoff: registry.DefaultBackoff()}) // only a CA file fails it
	}
}

// loadRecord reads the build's record and refuses one from another commit:
// its binaries are not what this checkout would build. It also returns the
// source date: SOURCE_DATE_EPOCH if set, else the date the build recorded,
// the time on every layer file and in every config.
func loadRecord(ctx context.Context, o Options) (*record.Record, time.Time, error) {
	rec, err := record.Load(o.Dist)
	if errors.Is(err, record.ErrNotFound) {
		return nil, time.Time{}, fault.As(fault.Invalid, err)
	}
	if err != nil {
		return nil, time.Time{}, fault.As(fault.Invalid, err)
	}
	if len(rec.Artifacts) == 0 {
		return nil, time.Time{}, fault.Invalidf("the record in %s lists no binaries; run slipway build first", o.Dist)
	}
	for _, a := range rec.Artifacts {
		// The binary goes into the image as the record names it: a path
		// out of dist would layer whatever it reaches.
		if !filepath.IsLocal(filepath.FromSlash(a.Path)) {
			return nil, time.Time{}, fault.Invalidf("the record in %s names binary %s, outside it; run slipway build again", o.Dist, a.Path)
		}
	}
	info, err := checkCommit(ctx, o, rec, filepath.Join(o.Dist, record.File))
	if err != nil {
		return nil, time.Time{}, err
	}
	getenv := ci.Getenv(o.Environ)
	if getenv("SOURCE_DATE_EPOCH") != "" {
		return rec, info.Date, nil
	}
	date, err := time.Parse(time.RFC3339, rec.Date)
	if err != nil {
		return nil, time.Time{}, fault.Invalidf("reading the record's date %q: %v", rec.Date, err)
	}
	return rec, date.UTC(), nil
}

// checkCommit refuses a record made from another commit than the one
// checked out in o.Dir, and returns what git says of the checkout.
func checkCommit(ctx context.Context, o Options, rec *record.Record, file string) (gitinfo.Info, error) {
	info, err := gitinfo.Describe(ctx, o.Dir, ci.Getenv(o.Environ), o.CI)
	if err != nil {
		return gitinfo.Info{}, fault.As(fault.Invalid, err)
	}
	if rec.Commit != "" && info.Commit != "" && rec.Commit != info.Commit {
		return gitinfo.Info{}, fault.Invalidf("%s is from commit %.12s but the checkout is at %.12s; run slipway build again, or build in this step",
			file, rec.Commit, info.Commit)
	}
	return info, nil
}

// config checks the options that shape the image config.
func (o Options) config(date time.Time) (config, error) {
	env := pairs(o.Env)
	if _, err := ParseEnv(env); err != nil {
		return config{}, err
	}
	ports, err := parsePorts(o.Ports)
	if err != nil {
		return config{}, err
	}
	labels, err := ParseMeta("label", pairs(o.Labels))
	if err != nil {
		return config{}, err
	}
	if o.Workdir != "" && !strings.HasPrefix(o.Workdir, "/") {
		return config{}, fault.Optionf("workdir", "%q must be an absolute path", o.Workdir)
	}
	return config{user: o.User, env: env, workdir: o.Workdir, ports: ports, labels: labels, created: date}, nil
}

// selectTargets pairs each built platform with the base: the ones asked
// for (default all built) that the base offers. Windows binaries on a
// linux base are refused outright rather than left out quietly.
func selectTargets(rec *record.Record, platforms []v1.Platform, b *base, log io.Writer) ([]*target, error) {
	only := make([]string, len(platforms))
	for i, p := range platforms {
		only[i] = platformString(p)
	}
	byPlatform := map[string]*target{}
	var built []string
	for _, a := range rec.Artifacts {
		t, ok := byPlatform[a.Platform]
		if !ok {
			t = &target{built: v1.Platform{OS: a.OS, Architecture: a.Arch, Variant: a.Variant}}
			byPlatform[a.Platform] = t
			built = append(built, a.Platform)
		}
		t.arts = append(t.arts, a)
	}
	sort.Strings(built)
	want := built
	if len(only) > 0 {
		want = nil
		for _, p := range only {
			if _, ok := byPlatform[p]; !ok {
				return nil, fault.Optionf("platforms", ": %s was not built; the build has %s", p, strings.Join(built, ", "))
			}
			want = append(want, p)
		}
		sort.Strings(want)
	}
	var out []*target
	var skipped []string
	for _, p := range want {
		t := byPlatform[p]
		if t.built.OS == "windows" && !b.offersOS("windows") {
			return nil, fault.Optionf("platforms", "%s binaries cannot run on base %s, which offers %s; give {option} without windows", p, b.spec, b.offers())
		}
		if t.built.OS == "windows" {
			return nil, fault.Optionf("platforms", "%s: windows images are not supported yet; give {option} without windows", p)
		}
		img, declared, ok, err := b.image(t.built)
		if err != nil {
			return nil, err
		}
		if !ok {
			skipped = append(skipped, p)
			continue
		}
		t.base, t.platform = img, declared
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, fault.Invalidf("no platform in common: built %s; base %s offers %s", strings.Join(want, ", "), b.spec, b.offers())
	}
	if len(skipped) > 0 {
		if len(only) > 0 {
			return nil, fault.Optionf("platforms", ": base %s does not offer %s; it offers %s", b.spec, strings.Join(skipped, ", "), b.offers())
		}
		fmt.Fprintf(log, "warning: base %s does not offer %s; no image for it\n", b.spec, strings.Join(skipped, ", "))
	}
	return out, nil
}

// chooseEntrypoint names the binary the image runs: the one asked for, the
// only one, or the one named after the module.
func chooseEntrypoint(module string, targets []*target, want string) (string, error) {
	names := map[string]bool{}
	for _, t := range targets {
		for _, a := range t.arts {
			names[a.Name] = true
		}
	}
	list := make([]string, 0, len(names))
	for n := range names {
		list = append(list, n)
	}
	sort.Strings(list)
	switch {
	case want != "" && names[want]:
		return want, nil
	case want != "":
		return "", fault.Optionf("entrypoint", "%q is not one of the built binaries: %s", want, strings.Join(list, ", "))
	case len(list) == 1:
		return list[0], nil
	case names[moduleName(module)]:
		return moduleName(module), nil
	}
	return "", fault.Optionf("entrypoint", "the build has binaries %s; name the one to run with {option}", strings.Join(list, ", "))
}

var majorSuffix = regexp.MustCompile(`^v[0-9]+$`)

// moduleName is the last element of a module path that is not a major
// version suffix: example.com/hello/v2 is "hello", as go build names it.
func moduleName(module string) string {
	if base := path.Base(module); !majorSuffix.MatchString(base) {
		return base
	}
	return path.Base(path.Dir(module))
}

// makeLayers makes every binary's layer, all platforms at once.
func makeLayers(ctx context.Context, cache layerStore, targets []*target, dist string, places map[string]string, date time.Time, parallel int) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for _, t := range targets {
		t.layers = make([]compressedLayer, len(t.arts))
		for i, a := range t.arts {
			g.Go(func() error {
				file := filepath.Join(dist, filepath.FromSlash(a.Path))
				dest := strings.TrimPrefix(binaryPath(places, a.Name, path.Base(a.Path)), "/")
				dirs := parents(dest)
				if _, moved := places[a.Name]; moved {
					dirs = missingParents(dest, t.view.has, map[string]bool{})
				}
				l, hit, err := cache.layer(gctx, placedBinarySource(dest, dirs, file, a.SHA256, date))
				if err != nil {
					return fmt.Errorf("layering %s for %s: %w", a.Name, a.Platform, err)
				}
				t.layers[i] = l
				if hit {
					t.cached.Add(1)
				}
				return nil
			})
		}
	}
	return g.Wait()
}

// binaryPath is where a binary goes in the image: where places puts it by
// name, else /usr/local/bin/file.
func binaryPath(places map[string]string, name, file string) string {
	if p, ok := places[name]; ok {
		return p
	}
	return "/" + path.Join(BinDir, file)
}

// checkBinaries refuses a placement for a binary the build does not have.
func checkBinaries(targets []*target, places map[string]string) error {
	names := map[string]bool{}
	for _, t := range targets {
		for _, a := range t.arts {
			names[a.Name] = true
		}
	}
	for n := range places {
		if !names[n] {
			list := make([]string, 0, len(names))
			for k := range names {
				list = append(list, k)
			}
			sort.Strings(list)
			return fault.Optionf("binary", "{option} %s: the build has no binary %s; it has %s", n, n, strings.Join(list, ", "))
		}
	}
	return nil
}

// prepare reads what the options need of the target's base — its users,
// the directories it has — and makes the Files' layers over it.
func (t *target) prepare(ctx context.Context, cache layerStore, o Options, baseSpec string, date time.Time) error {
	if !o.needsView() {
		return nil
	}
	view, err := viewBase(t.base)
	if err != nil {
		return fmt.Errorf("reading base %s for %s: %w", baseSpec, platformString(t.platform), err)
	}
	t.view = view
	if o.User != "" {
		if err := view.checkUser(o.User, baseSpec); err != nil {
			return err
		}
	}
	t.files, t.added, err = fileLayers(ctx, cache, o, view, date)
	return err
}

// staticFilesLayer makes the --static-files layer, the same for every
// platform.
func staticFilesLayer(ctx context.Context, cache layerStore, dir string, date time.Time) (mutate.Addendum, error) {
	st, err := os.Stat(dir)
	if err == nil && !st.IsDir() {
		err = errors.New("not a directory")
	}
	if err != nil {
		return mutate.Addendum{}, fault.Optionf("static-files", "%s: %v", dir, err)
	}
	t, err := openTree(dir)
	if err != nil {
		return mutate.Addendum{}, fault.Optionf("static-files", "%s: %v", dir, err)
	}
	defer t.Close()
	src, err := staticFilesSource(t, date)
	if err != nil {
		return mutate.Addendum{}, fault.Optionf("static-files", "%s: %v", dir, err)
	}
	l, _, err := cache.layer(ctx, src)
	if err != nil {
		return mutate.Addendum{}, fault.Optionf("static-files", "%s: %v", dir, err)
	}
	return mutate.Addendum{Layer: blobLayer{l}, History: v1.History{
		Created: v1.Time{Time: date}, CreatedBy: "slipway image: static files at /" + StaticDir,
	}}, nil
}

// assemble makes the platform's image: the base, the config laid over
// it, the static files and one layer per binary. Layer media types follow
// the base's manifest, so a Docker-typed base stays consistent.
func (t *target) assemble(b *base, cfg config, anns map[string]string, files []mutate.Addendum, places map[string]string) error {
	baseCfg, err := t.base.ConfigFile()
	if err != nil {
		return fmt.Errorf("reading base config for %s: %w", platformString(t.platform), err)
	}
	mt, err := t.base.MediaType()
	if err != nil {
		return fmt.Errorf("reading base manifest for %s: %w", platformString(t.platform), err)
	}
	img, err := mutate.ConfigFile(t.base, cfg.apply(baseCfg, t.platform))
	if err != nil {
		return err
	}
	layerType := types.OCILayer
	if mt == types.DockerManifestSchema2 {
		layerType = types.DockerLayer
	}
	adds := append([]mutate.Addendum(nil), files...)
	for i, a := range t.arts {
		adds = append(adds, mutate.Addendum{Layer: blobLayer{t.layers[i]}, History: v1.History{
			Created:   v1.Time{Time: cfg.created},
			CreatedBy: fmt.Sprintf("slipway image: %s %s at %s", a.Package, a.Version, binaryPath(places, a.Name, path.Base(a.Path))),
		}})
	}
	for i := range adds {
		adds[i].MediaType = layerType
	}
	if img, err = mutate.Append(img, adds...); err != nil {
		return err
	}
	if b.name != "" {
		d, err := t.base.Digest()
		if err != nil {
			return fmt.Errorf("reading base manifest for %s: %w", platformString(t.platform), err)
		}
		t.baseDigest = d.String()
	}
	if mt == types.OCIManifestSchema1 {
		img = mutate.Annotations(img, withBase(anns, b.name, t.baseDigest)).(v1.Image)
	}
	t.image = img
	return nil
}

// withBase returns anns with the base annotations, and without empty
// values.
func withBase(anns map[string]string, name, digest string) map[string]string {
	out := map[string]string{}
	for k, v := range anns {
		if v != "" {
			out[k] = v
		}
	}
	if name != "" {
		out[annBaseName] = name
		if digest != "" {
			out[annBaseDigest] = digest
		}
	}
	return out
}

// index is the OCI image index over the targets, in platform order; it
// sorts targets into that order, which the record then follows too.
func index(targets []*target, anns map[string]string) v1.ImageIndex {
	sort.Slice(targets, func(i, j int) bool {
		return platformString(targets[i].platform) < platformString(targets[j].platform)
	})
	adds := make([]mutate.IndexAddendum, 0, len(targets))
	for _, t := range targets {
		p := t.platform
		adds = append(adds, mutate.IndexAddendum{Add: plainImage{t.image}, Descriptor: v1.Descriptor{Platform: &p}})
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), adds...)
	return mutate.Annotations(idx, anns).(v1.ImageIndex)
}

// plainImage is an image whose index descriptor has no artifactType:
// go-containerregistry would otherwise copy the config media type there,
// which marks a plain image as an artifact to some readers.
type plainImage struct{ v1.Image }

func (plainImage) ArtifactType() (string, error) { return "", nil }

var notTagChar = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// layoutRef is the version as a tag: the layout's ref name for the index,
// valid as a Docker tag too ("+dirty" becomes "-dirty").
func layoutRef(version string) string {
	ref := notTagChar.ReplaceAllString(version, "-")
	if ref == "" || ref[0] == '.' || ref[0] == '-' {
		ref = "v" + ref
	}
	if len(ref) > 128 {
		ref = ref[:128]
	}
	return ref
}

// section is the record's image section for what was written.
func section(o Options, rec *record.Record, b *base, idx v1.ImageIndex, targets []*target, ref string, entrypoint []string, sboms map[*target][]record.SBOM) (*record.Image, error) {
	d, err := idx.Digest()
	if err != nil {
		return nil, err
	}
	mt, err := idx.MediaType()
	if err != nil {
		return nil, err
	}
	sec := &record.Image{
		Layout: relSlash(o.Dist, o.Layout), Ref: ref, Digest: d.String(), MediaType: string(mt),
		Base: b.spec, BaseDigest: b.digest, Entrypoint: entrypoint,
	}
	for _, t := range targets {
		pi, err := platformImage(t)
		if err != nil {
			return nil, err
		}
		pi.SBOMs = sboms[t]
		sec.Platforms = append(sec.Platforms, pi)
	}
	return sec, nil
}

func platformImage(t *target) (record.PlatformImage, error) {
	m, err := t.image.Manifest()
	if err != nil {
		return record.PlatformImage{}, err
	}
	raw, err := t.image.RawManifest()
	if err != nil {
		return record.PlatformImage{}, err
	}
	d, err := t.image.Digest()
	if err != nil {
		return record.PlatformImage{}, err
	}
	size := int64(len(raw)) + m.Config.Size
	for _, l := range m.Layers {
		size += l.Size
	}
	return record.PlatformImage{
		Platform: platformString(t.platform), Digest: d.String(), Config: m.Config.Digest.String(),
		Size: size, BaseDigest: t.baseDigest,
	}, nil
}

// relSlash is target relative to base with forward slashes, or target
// itself if it is not under base.
func relSlash(base, target string) string {
	rel, err := filepath.Rel(base, target)
	if err != nil || strings.HasPrefix(rel, "..") {
		return filepath.ToSlash(target)
	}
	return filepath.ToSlash(rel)
}
