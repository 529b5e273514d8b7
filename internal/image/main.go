package image

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/slipwayci/slipway/internal/build"
	"github.com/slipwayci/slipway/internal/ci"
	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/registry"
	"github.com/slipwayci/slipway/internal/text"
)

const usage = `usage: slipway image [flags]
       slipway image --merge [flags] DIR...

Layers the binaries of slipway build (dist/slipway.json) onto a base image,
one layer per binary at /usr/local/bin/NAME (or where --binary puts it), and
one per --file, for every built platform the base offers, and writes an OCI image layout, SPDX and CycloneDX SBOMs per
platform, and the image section of the record. No Docker daemon, no second
go build; the same inputs give the same index digest.

Bases (--base): static (default; a built-in distroless-style root with CA
roots, tzdata and the nonroot user 65532, needing no pull), scratch, an image
reference (gcr.io/distroless/static-debian12:nonroot), or a local OCI layout
as oci:DIR, oci:DIR:TAG or oci:DIR@sha256:….

--file SRC:DEST copies as a Dockerfile COPY does: a directory's contents go
to DEST, a file to DEST (or into DEST/ when it ends in "/"); owned by root
unless chown=UID[:GID], each file's own mode unless chmod=MODE; :DEST with no
SRC makes an empty directory. Symlinks that leave the current directory are
refused. For the Dockerfile
    WORKDIR /app
    COPY --chown=65532:65532 ui /app/ui
    COPY server /app/server
    COPY cli /usr/bin/cli
write: --workdir /app --file ui:/app/ui,chown=65532:65532
       --binary server:/app/server --binary cli:/usr/bin/cli

--merge combines the per-platform results of matrix jobs, each DIR a dist
directory with an image section, into one index in --dist.

Flags:
`

// command is slipway image's command line: the step's options, bound flag
// by flag, and what the command itself does with the rest.
type command struct {
	o                                          Options
	platforms, env, ports, labels, annotations cli.List
	files, binaries                            cli.List
	layout, staticFiles, tarball               string
	cache, cacheSize, cacheAge                 string
	runBuild, merge                            bool
	reg                                        registry.Flags
}

func (c *command) register(fs *flag.FlagSet) {
	o := &c.o
	c.platforms.Comma, c.ports.Comma = true, true
	fs.StringVar(&o.Dist, "dist", "dist", "`directory` with the build's slipway.json; the record is updated there")
	fs.StringVar(&c.layout, "layout", "", "OCI image layout `directory` to write (default DIST/image)")
	fs.StringVar(&o.Base, "base", BaseStatic, "base `image`: static, scratch, a reference, or oci:DIR[:tag|@digest]")
	fs.Var(&c.platforms, "platforms", "comma-separated `os/arch[/variant]` list (default: every built platform the base offers)")
	fs.StringVar(&o.Entrypoint, "entrypoint", "", "`binary` to run (default: the only one, or the one named after the module)")
	fs.StringVar(&o.User, "user", "", "`user` to run as (default: the base's; static: 65532:65532, nonroot)")
	fs.StringVar(&o.Workdir, "workdir", "", "working `directory` (default: the base's)")
	fs.Var(&c.env, "env", "`KEY=VALUE` in the image's environment (repeatable)")
	fs.Var(&c.ports, "port", "`PORT[/PROTO]` to expose, e.g. 8080 (repeatable)")
	fs.Var(&c.labels, "label", "`KEY=VALUE` label in the image config (repeatable)")
	fs.Var(&c.annotations, "annotation", "`KEY=VALUE` annotation on the index and manifests (repeatable)")
	fs.Var(&c.files, "file", "copy a file or directory `SRC:DEST[,chown=UID[:GID]][,chmod=MODE]` from under the current directory into its own layer, as a Dockerfile COPY; an empty SRC makes an empty directory (repeatable)")
	fs.Var(&c.binaries, "binary", "`NAME:/PATH` puts built binary NAME at PATH instead of /usr/local/bin/NAME (repeatable)")
	fs.StringVar(&c.staticFiles, "static-files", "", "`directory` to add as its own layer at /srv/static (like ko's kodata)")
	fs.StringVar(&o.Source, "source", "", "`URL` for org.opencontainers.image.source (default: from CI or git's origin)")
	fs.StringVar(&o.Licenses, "licenses", "", "SPDX license `expression` for org.opencontainers.image.licenses")
	fs.StringVar(&c.tarball, "tarball", "", "also write a docker-archive `file` that docker load reads")
	fs.StringVar(&o.TarballPlatform, "tarball-platform", "", "`platform` for --tarball (default: this machine's if built, else the first)")
	fs.StringVar(&o.TarballTag, "tarball-tag", "", "`name:tag` inside --tarball (default ENTRYPOINT:VERSION)")
	fs.StringVar(&c.cache, "cache", defaultCache(), "layer cache `directory`, or off")
	fs.StringVar(&c.cacheSize, "cache-max-size", "1GiB", "`size` the cache is pruned to after a run, least recently used first (0: no limit)")
	fs.StringVar(&c.cacheAge, "cache-max-age", "720h", "`duration` after which an unused cache entry is pruned (0: no limit)")
	fs.IntVar(&o.Parallel, "parallel", 0, "layers made at once (0: one per core)")
	fs.StringVar(&o.Dir, "dir", ".", "a `directory` inside the checkout the build came from")
	fs.BoolVar(&c.runBuild, "build", false, "run slipway build first (its defaults, with --platforms and --dir)")
	fs.BoolVar(&c.merge, "merge", false, "merge the image results in the DIR arguments into one index")
	c.reg.Register(fs, "the base's")
}

// Main runs the image step with the given process environment.
func Main(ctx context.Context, env cli.Env) (err error) {
	fs := flag.NewFlagSet("slipway image", flag.ContinueOnError)
	var c command
	c.register(fs)
	if done, err := cli.ParseFlags(fs, env, "image", usage); done {
		return err
	}
	// Whatever this run uses is marked after start, and no prune drops it.
	// Some file systems keep times in whole or even seconds, so a mark may
	// read back up to two seconds early.
	start := time.Now().Add(-2 * time.Second)

	p := ci.Detect(ci.Options{
		Getenv: env.Getenv, Stdout: env.Stdout, Stderr: env.Stderr, Dir: env.Dir,
		Step: "image", SummaryFile: filepath.Join(c.o.Dist, "image-summary.md"),
	})
	// From here on every error goes out through the platform's stream:
	// it may quote an input or a registry's error body.
	defer func() { err = cli.Reported(p.Stderr(), "slipway image", err) }()
	if err := ci.ApplyInputs(fs, p); err != nil {
		return cli.Usage(err)
	}
	switch {
	case c.merge && fs.NArg() == 0:
		return cli.Usagef("--merge needs the directories to merge as arguments")
	case !c.merge && fs.NArg() > 0:
		return cli.Usagef("unexpected arguments %s; did you mean --merge?", strings.Join(fs.Args(), " "))
	case c.merge && c.runBuild:
		return cli.Usagef("--merge and --build do not go together: merge the results of jobs that built")
	}
	policy, err := cacheLimits(c.cacheSize, c.cacheAge)
	if err != nil {
		return err
	}
	policy.since = start
	// From here on a secret may be known: errors go out through the
	// platform's masking stream, not as plain text.
	if err := c.run(ctx, env, p, fs.Args(), policy); err != nil {
		return &cli.Silent{Code: cli.ExitCode(p.Stderr(), "slipway image", err)}
	}
	return nil
}

func (c *command) run(ctx context.Context, env cli.Env, p ci.Platform, dirs []string, policy prunePolicy) error {
	o := c.o
	client, err := c.reg.Client(registry.Login{Env: env, Mask: p.Mask, Registry: baseRegistry(o.Base), Warn: p.Stderr(),
		OnRetry: func(repo name.Repository, op string, err error, wait time.Duration) {
			fmt.Fprintf(p.Stderr(), "image: %s: %s failed, retrying in %s: %s\n", repo, op, wait.Round(time.Millisecond), text.OneLine(err.Error()))
		}})
	if err != nil {
		return err
	}
	cache := c.cache
	if cache == "off" {
		cache = ""
	}
	o.Dist = env.Resolve(o.Dist)
	o.Dir = env.Resolve(o.Dir)
	for _, s := range c.platforms.Values {
		pl, err := parsePlatform(s)
		if err != nil {
			return cli.Usagef("--platforms: %v", err)
		}
		o.Platforms = append(o.Platforms, pl)
	}
	if o.Env, err = ParseEnv(c.env.Values); err != nil {
		return err
	}
	if o.Labels, err = ParseMeta("label", c.labels.Values); err != nil {
		return err
	}
	if o.Annotations, err = ParseMeta("annotation", c.annotations.Values); err != nil {
		return err
	}
	o.Ports = c.ports.Values
	for _, f := range c.files.Values {
		file, err := ParseFile(f)
		if err != nil {
			return err
		}
		o.Files = append(o.Files, file)
	}
	o.Context = env.Resolve(".")
	for _, b := range c.binaries.Values {
		n, dest, err := ParseBinary(b)
		if err != nil {
			return err
		}
		if o.Binaries == nil {
			o.Binaries = map[string]string{}
		}
		if _, dup := o.Binaries[n]; dup {
			return cli.Usagef("--binary %s given twice; a binary goes to one place", n)
		}
		o.Binaries[n] = dest
	}
	o.Cache = cache
	o.Registry = client
	o.Environ = env.Environ
	o.CI = p.Info()
	o.Log = p.Stderr()
	if c.layout != "" {
		o.Layout = env.Resolve(c.layout)
	}
	if c.staticFiles != "" {
		o.StaticFiles = env.Resolve(c.staticFiles)
	}
	if c.tarball != "" {
		o.Tarball = env.Resolve(c.tarball)
	}

	var rec *record.Record
	switch {
	case c.merge:
		abs := make([]string, 0, len(dirs))
		for _, d := range dirs {
			abs = append(abs, env.Resolve(d))
		}
		rec, err = Merge(ctx, o, abs)
	default:
		if c.runBuild {
			if err := buildFirst(ctx, o, p, c.platforms.Values); err != nil {
				return err
			}
		}
		rec, err = Build(ctx, o)
		if errors.Is(err, record.ErrNotFound) {
			err = fmt.Errorf("%w, or pass --build", err)
		}
	}
	if err != nil {
		return err
	}
	if err := report(p, c.o.Dist, rec); err != nil {
		return err
	}
	if cache != "" {
		policy.now = time.Now()
		pruneCache(ctx, p.Stderr(), cache, policy)
	}
	return nil
}

// baseRegistry is the registry a base reference names, for --username; ""
// for a base that is not in a registry.
func baseRegistry(spec string) string {
	if spec == BaseStatic || spec == BaseScratch || strings.HasPrefix(spec, "oci:") {
		return ""
	}
	ref, err := name.ParseReference(spec)
	if err != nil {
		return ""
	}
	return ref.Context().RegistryStr()
}

// cacheLimits reads --cache-max-size and --cache-max-age.
func cacheLimits(size, age string) (prunePolicy, error) {
	maxSize, err := cli.ParseSize(size)
	if err != nil {
		return prunePolicy{}, cli.Usagef("--cache-max-size %q: want a size such as 500MB or 2GiB, or 0 for no limit", size)
	}
	maxAge, err := time.ParseDuration(strings.TrimSpace(age))
	if err != nil || maxAge < 0 {
		return prunePolicy{}, cli.Usagef("--cache-max-age %q: want a Go duration such as 720h, or 0 for no limit", age)
	}
	return prunePolicy{maxSize: maxSize, maxAge: maxAge}, nil
}

// pruneCache trims the cache after a run. A failure costs only disk space,
// never the build: it is one line on w, and the run goes on.
func pruneCache(ctx context.Context, w io.Writer, dir string, p prunePolicy) {
	res, err := prune(ctx, dir, p)
	if res.any() {
		fmt.Fprintf(w, "image: cache: %s\n", res)
	}
	if err != nil {
		fmt.Fprintf(w, "image: cache: pruning %s: %v (the image is unaffected)\n", dir, err)
	}
}

// buildFirst runs slipway build with its defaults into the image's dist.
func buildFirst(ctx context.Context, o Options, p ci.Platform, platforms []string) error {
	list := build.DefaultPlatforms
	if len(platforms) > 0 {
		list = strings.Join(platforms, ",")
	}
	end := p.Group("slipway build")
	defer end()
	ps, err := build.SplitPlatforms(list)
	if err != nil {
		return cli.Usagef("--platforms: %v", err)
	}
	_, err = build.Build(ctx, build.Options{
		Dir: o.Dir, Platforms: ps, LDFlags: build.DefaultLDFlags, Out: o.Dist,
		Environ: o.Environ, CI: o.CI, Log: o.Log, Annotate: p.Annotate,
	})
	return err
}

// defaultCache is os.UserCacheDir()/slipway, or off where there is none.
func defaultCache() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "off"
	}
	return filepath.Join(dir, "slipway")
}

// report hands the result to the platform: outputs and a summary.
func report(p ci.Platform, dist string, rec *record.Record) error {
	im := rec.Image
	type sbom struct {
		Platform string `json:"platform"`
		Format   string `json:"format"`
		Path     string `json:"path"`
	}
	var plats []string
	sboms := []sbom{}
	for _, pi := range im.Platforms {
		plats = append(plats, pi.Platform)
		for _, s := range pi.SBOMs {
			sboms = append(sboms, sbom{pi.Platform, s.Format, filepath.ToSlash(filepath.Join(dist, s.Path))})
		}
	}
	js, err := json.Marshal(sboms)
	if err != nil {
		return err
	}
	outputs := [][2]string{
		{"digest", im.Digest},
		{"layout", filepath.ToSlash(record.Path(dist, im.Layout))},
		{"platforms", strings.Join(plats, ",")},
		{"sbom", string(js)},
		{"record", filepath.ToSlash(filepath.Join(dist, record.File))},
	}
	if im.Tarball != nil {
		outputs = append(outputs, [2]string{"tarball", filepath.ToSlash(record.Path(dist, im.Tarball.Path))})
	}
	for _, o := range outputs {
		if err := p.SetOutput(o[0], o[1]); err != nil {
			return fmt.Errorf("setting output %s: %w", o[0], err)
		}
	}
	return p.WriteSummary(Summary(dist, rec))
}

// Summary is the image step's summary: one row per platform. Paths are
// shown under dist, the record's directory as given.
func Summary(dist string, rec *record.Record) *ci.Summary {
	im := rec.Image
	s := &ci.Summary{
		Title: fmt.Sprintf("Slipway image: %s %s", rec.Module, rec.Version),
		Lines: []string{
			fmt.Sprintf("index `%s` · base `%s` · entrypoint `%s`", im.Digest, im.Base, strings.Join(im.Entrypoint, " ")),
			fmt.Sprintf("OCI layout `%s` (ref `%s`)", filepath.ToSlash(record.Path(dist, im.Layout)), im.Ref),
		},
		Table: ci.Table{
			Header: []string{"Platform", "Manifest", "Size", "SBOMs"},
			Short: func(col int, cell string) string {
				if col == 1 && len(cell) > 19 {
					return cell[:19] + "…"
				}
				return cell
			},
		},
	}
	for _, pi := range im.Platforms {
		var paths []string
		for _, sb := range pi.SBOMs {
			paths = append(paths, filepath.ToSlash(filepath.Join(dist, sb.Path)))
		}
		s.Table.Rows = append(s.Table.Rows, []string{pi.Platform, pi.Digest, cli.HumanSize(pi.Size), strings.Join(paths, ", ")})
	}
	if im.Tarball != nil {
		s.Notes = append(s.Notes, fmt.Sprintf("docker load -i %s gives %s (%s)", filepath.ToSlash(record.Path(dist, im.Tarball.Path)), im.Tarball.Tag, im.Tarball.Platform))
	}
	return s
}
