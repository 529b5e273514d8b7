package build

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"path/filepath"

	"github.com/slipwayci/slipway/internal/ci"
	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/record"
)

const usage = `usage: slipway build [flags] [packages]

Cross-compiles the module's main packages (default: all of them) for each
platform, reproducibly, into --dist with SHA256SUMS and slipway.json.

Flags:
`

// command is slipway build's command line, each flag bound to its field.
type command struct {
	platforms, ldflags, dist, dir string
	packages, tags, env           cli.List
	parallel                      int
}

func (c *command) register(fs *flag.FlagSet) {
	c.packages.Comma, c.tags.Comma = true, true
	fs.StringVar(&c.platforms, "platforms", DefaultPlatforms, "comma-separated `os/arch[/variant]` list")
	fs.Var(&c.packages, "packages", "main `packages` or patterns, e.g. ./cmd/... (also as arguments)")
	fs.StringVar(&c.ldflags, "ldflags", DefaultLDFlags, "-ldflags `template`: {{.Version}} {{.Commit}} {{.ShortCommit}} {{.Date}} {{.Env.NAME}}")
	fs.Var(&c.tags, "tags", "comma-separated build `tags`")
	fs.Var(&c.env, "env", "`KEY=VALUE` for the compiler's environment (repeatable)")
	fs.StringVar(&c.dist, "dist", "dist", "output `directory`: binaries, SHA256SUMS, slipway.json")
	cli.Alias(fs, "out", "dist")
	fs.StringVar(&c.dir, "dir", ".", "a `directory` inside the module to build")
	fs.IntVar(&c.parallel, "parallel", 0, "platforms built at once (0: one per core)")
}

// Main runs the build step with the given process environment.
func Main(ctx context.Context, env cli.Env) (err error) {
	fs := flag.NewFlagSet("slipway build", flag.ContinueOnError)
	var c command
	c.register(fs)
	if done, err := cli.ParseFlags(fs, env, "build", usage); done {
		return err
	}

	p, err := ci.Start(fs, ci.Options{
		Getenv: env.Getenv, Stdout: env.Stdout, Stderr: env.Stderr, Dir: env.Dir, Step: "build",
	}, func() string { return filepath.Join(c.dist, "summary.md") })
	// From here on every error goes out through the platform's stream:
	// it may quote an input or a tool's output.
	defer func() { err = cli.Reported(p.Stderr(), "slipway build", err) }()
	if err != nil {
		return cli.Usage(err)
	}
	cli.Renamed(fs, p.Stderr())
	pkgs := append(c.packages.Values, fs.Args()...)
	platforms, err := SplitPlatforms(c.platforms)
	if err != nil {
		return cli.Usagef("--platforms: %v", err)
	}
	buildEnv, err := ParseEnv(c.env.Values)
	if err != nil {
		return err
	}

	endGroup := p.Group("slipway build: " + c.platforms)
	rec, err := Build(ctx, Options{
		Dir:       env.Resolve(c.dir),
		Platforms: platforms,
		Packages:  pkgs,
		LDFlags:   c.ldflags,
		Tags:      c.tags.Values,
		Env:       buildEnv,
		Out:       env.Resolve(c.dist),
		Parallel:  c.parallel,
		Environ:   env.Environ,
		CI:        p.Info(),
		Log:       p.Stderr(),
		Annotate:  p.Annotate,
	})
	endGroup()
	if err != nil {
		return err
	}
	return report(p, c.dist, rec)
}

// report hands the result to the platform: outputs and a summary.
func report(p ci.Platform, outDir string, rec *record.Record) error {
	type artifact struct {
		Name     string `json:"name"`
		Path     string `json:"path"`
		Platform string `json:"platform"`
		SHA256   string `json:"sha256"`
		Size     int64  `json:"size"`
	}
	arts := make([]artifact, 0, len(rec.Artifacts))
	for _, a := range rec.Artifacts {
		arts = append(arts, artifact{a.Name, filepath.ToSlash(filepath.Join(outDir, a.Path)), a.Platform, a.SHA256, a.Size})
	}
	js, err := json.Marshal(arts)
	if err != nil {
		return err
	}
	for _, o := range [][2]string{
		{"artifacts", string(js)},
		{"record", filepath.ToSlash(filepath.Join(outDir, record.File))},
		{"version", rec.Version},
	} {
		if err := p.SetOutput(o[0], o[1]); err != nil {
			return fmt.Errorf("setting output %s: %w", o[0], err)
		}
	}
	return p.WriteSummary(Summary(rec))
}

// Summary is the build's step summary: one row per binary.
func Summary(rec *record.Record) *ci.Summary {
	s := &ci.Summary{
		Title: fmt.Sprintf("Slipway build: %s %s", rec.Module, rec.Version),
		Lines: []string{fmt.Sprintf("commit `%s` · %s · source date %s", orNone(rec.Commit), rec.GoVersion, rec.Date)},
		Table: ci.Table{
			Header: []string{"Platform", "Binary", "Size", "SHA-256"},
			Short: func(col int, cell string) string {
				if col == 3 && len(cell) > 16 {
					return cell[:16] + "…"
				}
				return cell
			},
		},
	}
	for _, a := range rec.Artifacts {
		s.Table.Rows = append(s.Table.Rows, []string{a.Platform, a.Path, cli.HumanSize(a.Size), a.SHA256})
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
