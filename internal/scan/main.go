package scan

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"golang.org/x/mod/modfile"

	"github.com/slipwayci/slipway/internal/ci"
	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/gitinfo"
	"github.com/slipwayci/slipway/internal/policy"
	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/redact"
	"github.com/slipwayci/slipway/internal/registry"
	"github.com/slipwayci/slipway/internal/report"
	"github.com/slipwayci/slipway/internal/safefile"
	"github.com/slipwayci/slipway/internal/scan/govulncheck"
	"github.com/slipwayci/slipway/internal/text"
)

const usage = `usage: slipway scan [flags]

Scans the image the image step wrote and the module's source, all at once:
trivy on the image (OS packages, Go modules in binaries), govulncheck on the
source and on each Go binary in the image (reachability), gosec on the
source. Writes the findings (findings.json) and an in-toto statement of the
result (scan.intoto.json) into --out, prints the summary and any --format,
and exits 3 if the policy fails, whatever the format.

  slipway scan --from dist/findings.json --format sarif=scan.sarif

re-renders an earlier scan offline, with this run's policy.

Flags:
`

// Files the step writes into --out.
const (
	FindingsFile  = "findings.json"
	StatementFile = "scan.intoto.json"
	SummaryFile   = "scan-summary.md"
)

// Main runs the scan step with the given process environment.
func Main(ctx context.Context, env cli.Env) (err error) {
	fs := flag.NewFlagSet("slipway scan", flag.ContinueOnError)
	var c config
	c.register(fs)
	if done, err := cli.ParseFlags(fs, env, "scan", usage); done {
		return err
	}
	if fs.NArg() > 0 {
		return cli.Usagef("unexpected arguments %q; see slipway scan --help", fs.Args())
	}

	p, err := ci.Start(fs, ci.Options{
		Getenv: env.Getenv, Stdout: env.Stdout, Stderr: env.Stderr, Dir: env.Dir, Step: "scan",
	}, func() string { return filepath.Join(c.out, SummaryFile) })
	// From here on every error goes out through the platform's stream:
	// it may quote a waiver, a scanner's output or a registry's.
	defer func() { err = cli.Reported(p.Stderr(), "slipway scan", err) }()
	if err != nil {
		return cli.Usage(err)
	}
	cli.Renamed(fs, p.Stderr())
	// A database URL may carry a login: what quotes it is masked, and
	// what records it records it without (redact.URL).
	for _, u := range append([]string{c.vulndb}, c.dbRepos.Values...) {
		for _, s := range redact.Secrets(u) {
			p.Mask(s)
		}
	}
	cfg, err := configure(env, c)
	if err != nil {
		return cli.Usage(err)
	}
	// From here on a secret may be known: errors go out through the
	// platform's masking stream, not as plain text.
	if err := cfg.run(ctx, env, p); err != nil {
		var silent *cli.Silent
		if errors.As(err, &silent) {
			return err
		}
		return &cli.Silent{Code: cli.ExitCode(p.Stderr(), "slipway scan", err)}
	}
	return nil
}

func (c *config) register(fs *flag.FlagSet) {
	c.formats.Comma, c.scanners.Comma, c.dbRepos.Comma = true, true, true
	fs.StringVar(&c.image, "image", "", "`image` to scan: oci:DIR[@digest], a registry reference, or none (default: the image in --dist, if any)")
	fs.StringVar(&c.platform, "platform", "", "`os/arch` of the one image to scan in an index (default every platform; the evidence then covers only this one)")
	fs.StringVar(&c.dir, "dir", ".", "`directory` of the Go module to scan from source, or none")
	fs.StringVar(&c.out, "dist", "dist", "`directory` for findings.json and scan.intoto.json, where the image is looked for")
	cli.Alias(fs, "out", "dist")
	fs.StringVar(&c.from, "from", "", "render this findings.json `file` instead of scanning")
	fs.StringVar(&c.failOn, "fail-on", "high", "lowest `severity` that fails the step (exit 3): critical, high, medium, low, unknown or none")
	fs.BoolVar(&c.reachableOnly, "reachable-only", false, "with --fail-on, let pass what govulncheck shows is not called")
	fs.StringVar(&c.unknown, "fail-unknown", string(policy.UnknownCalled), "what a vulnerability no database grades does: called (fails if called or linked and fixed upstream) or never (ranks below low)")
	fs.StringVar(&c.shown, "report-severity", "unknown", "lowest `severity` the formats, summary and annotations show")
	fs.StringVar(&c.waivers, "waivers", "", "waiver `file` (default "+policy.WaiversFile+" in the repository, if present)")
	fs.StringVar(&c.vulndb, "vulndb", govulncheck.DefaultDB, "govulncheck's database `URL`: https://… or file:///dir")
	fs.StringVar(&c.cacheDir, "cache-dir", "", "`directory` caching trivy's database (default trivy's, ~/.cache/trivy)")
	fs.BoolVar(&c.offline, "offline", false, "download nothing: trivy uses the database in --cache-dir, govulncheck needs --vulndb file://…")
	fs.Var(&c.formats, "format", "`FORMAT`[=FILE] to print or write, repeatable or comma-separated: "+strings.Join(report.FormatNames(), ", "))
	fs.Var(&c.scanners, "scanners", "`scanners` to run (default all): "+strings.Join(AllScanners, ", "))
	fs.Var(&c.dbRepos, "db-repository", "OCI `repository` of trivy's database, e.g. a mirror (repeatable, tried in order)")
	c.reg.Register(fs, "the image's")
}

// config is the command line, checked and resolved by configure.
type config struct {
	image, platform, dir, out, from string
	failOn, shown, waivers, unknown string
	vulndb, cacheDir                string
	reachableOnly, offline          bool
	formats, scanners, dbRepos      cli.List
	reg                             registry.Flags

	workDir, root string
	sourceDir     bool // scan the module in dir
	rule          policy.Rule
	minShown      report.Severity
	outputs       []report.Output
	waiverList    []policy.Waiver
}

func configure(env cli.Env, c config) (*config, error) {
	var err error
	if c.rule.FailOn, err = policy.ParseFailOn(c.failOn); err != nil {
		return nil, err
	}
	c.rule.ReachableOnly = c.reachableOnly
	if c.rule.Unknown, err = policy.ParseUnknown(c.unknown); err != nil {
		return nil, err
	}
	if c.minShown, err = report.ParseSeverity(c.shown); err != nil {
		return nil, fmt.Errorf("--report-severity: %w", err)
	}
	for _, f := range c.formats.Values {
		o, err := report.ParseOutput(f)
		if err != nil {
			return nil, fmt.Errorf("--format: %w", err)
		}
		c.outputs = append(c.outputs, o)
	}
	for _, s := range c.scanners.Values {
		if !slices.Contains(AllScanners, s) {
			return nil, fmt.Errorf("--scanners: unknown scanner %q (want %s)", s, strings.Join(AllScanners, ", "))
		}
	}
	if c.offline && strings.HasPrefix(c.vulndb, "http") && (len(c.scanners.Values) == 0 || slices.Contains(c.scanners.Values, Govulncheck)) {
		return nil, fmt.Errorf("--offline: govulncheck needs a local database, --vulndb file:///dir")
	}
	c.workDir = env.Dir
	c.out = env.Resolve(c.out)
	c.sourceDir = c.dir != "none"
	if c.sourceDir {
		c.dir = env.Resolve(c.dir)
	}
	start := env.Dir
	if c.sourceDir {
		start = c.dir
	}
	c.root = repoRoot(start, env.Dir)
	file, required := filepath.Join(c.root, filepath.FromSlash(policy.WaiversFile)), false
	if c.waivers != "" {
		file, required = env.Resolve(c.waivers), true
	}
	if c.waiverList, err = policy.LoadWaivers(file, required); err != nil {
		return nil, err
	}
	if c.from != "" {
		c.from = env.Resolve(c.from)
	}
	return &c, nil
}

func (c *config) run(ctx context.Context, env cli.Env, p ci.Platform) error {
	var (
		rep *report.Report
		rec *record.Record
		err error
	)
	if c.from != "" {
		rep, err = readFindings(c.from)
	} else {
		rep, rec, err = c.scan(ctx, env, p)
	}
	if err != nil {
		return err
	}

	target := policy.Target{}
	if rep.Scan.Image != nil {
		target.Image = rep.Scan.Image.Name
	}
	rep.Verdict = policy.Evaluate(rep.Findings, c.waiverList, c.rule, target, time.Now())

	var outputs [][2]string
	if c.from == "" {
		paths, err := c.writeEvidence(rep, rec, p)
		if err != nil {
			return err
		}
		outputs = append(outputs, paths...)
	}
	written, err := c.render(rep, p)
	if err != nil {
		return err
	}
	outputs = append(outputs, written...)

	shown := c.shownReport(rep)
	for _, a := range report.Annotations(shown) {
		p.Annotate(a)
	}
	sum := report.Summary(shown)
	if len(shown.Findings) > report.TopFindings || len(shown.Findings) < len(rep.Findings) {
		findings := filepath.Join(c.out, FindingsFile)
		if c.from != "" {
			findings = c.from
		}
		sum.Notes = append(sum.Notes, fmt.Sprintf("Every finding: `slipway scan --from %s --format text`.", c.rel(findings)))
	}
	if err := p.WriteSummary(sum); err != nil {
		return fmt.Errorf("writing summary: %w", err)
	}

	v := rep.Verdict
	counts, _ := json.Marshal(v.Counts)
	verdict := "pass"
	if !v.Pass {
		verdict = "fail"
	}
	outputs = append(outputs, [2]string{"verdict", verdict}, [2]string{"counts", string(counts)})
	for _, o := range outputs {
		if err := p.SetOutput(o[0], o[1]); err != nil {
			return fmt.Errorf("setting output %s: %w", o[0], err)
		}
	}
	if !v.Pass {
		return cli.Policy(fmt.Errorf("policy refuses: %s", strings.Join(v.Reasons, "; ")))
	}
	return nil
}

// scan runs the scanners on what the command line names.
func (c *config) scan(ctx context.Context, env cli.Env, p ci.Platform) (*report.Report, *record.Record, error) {
	rec, err := record.Load(c.out)
	if err != nil && !errors.Is(err, record.ErrNotFound) {
		return nil, nil, err
	}
	o := Options{
		Root:     c.root,
		Record:   rec,
		Scanners: c.scanners.Values,
		VulnDB:   c.vulndb,
		Env:      env.Environ,
		ImageOptions: ImageOptions{
			CacheDir: c.cacheDir, DBRepositories: c.dbRepos.Values, Offline: c.offline, Log: p.Stderr(),
		},
		Commit: p.Info().Commit,
		Log:    p.Stderr(),
	}
	if rec != nil && rec.Commit != "" {
		o.Commit = rec.Commit
	}
	if o.Commit == "" {
		o.Commit = gitinfo.Head(ctx, c.root)
	}
	if c.sourceDir {
		o.Dir = c.dir
		if o.Module, err = modulePath(c.dir); err != nil {
			return nil, nil, cli.Usage(err)
		}
	}
	ref := c.image
	if ref == "" {
		ref = defaultImage(c.out, rec)
	}
	if ref != "" && ref != "none" {
		var reg *registry.Client
		if !strings.HasPrefix(ref, "oci:") {
			if reg, err = c.reg.Client(registry.Login{Env: env, Mask: p.Mask, Registry: imageRegistry(ref), Warn: p.Stderr()}); err != nil {
				return nil, nil, err
			}
		}
		if o.Images, err = OpenImage(ctx, reg, ref, c.platform, env.Dir); err != nil {
			return nil, nil, err
		}
	}
	if o.Dir == "" && len(o.Images) == 0 {
		return nil, nil, cli.Usagef("nothing to scan: --dir none and no image (build one with slipway image, or give --image)")
	}
	rep, err := Run(ctx, o)
	if dbErr, ok := errors.AsType[*DBError](err); ok && dbErr.Missing {
		return nil, nil, cli.Usage(fmt.Errorf("%w; %s", err, dbFix(dbErr.DB, c.offline)))
	}
	return rep, rec, err
}

// dbFix is the flag that fixes a missing database.
func dbFix(db string, offline bool) string {
	switch {
	case db == GovulncheckDB:
		return "give --vulndb a folder of Go OSV records (file:///dir) or a mirror of https://vuln.go.dev"
	case offline:
		return "run once without --offline with the same --cache-dir, or point --cache-dir at a directory holding one"
	}
	return "check --cache-dir and --db-repository"
}

// defaultImage is the layout the image step wrote into out, if any.
func defaultImage(out string, rec *record.Record) string {
	if rec != nil && rec.Image != nil && rec.Image.Layout != "" {
		return "oci:" + record.Path(out, rec.Image.Layout)
	}
	if _, err := os.Stat(filepath.Join(out, "image", "index.json")); err == nil {
		return "oci:" + filepath.Join(out, "image")
	}
	return ""
}

// writeEvidence writes the canonical stream and the in-toto statement,
// and returns their paths as outputs.
func (c *config) writeEvidence(rep *report.Report, rec *record.Record, p ci.Platform) ([][2]string, error) {
	var stream bytes.Buffer
	if err := report.Send(rep, report.NewJSONHandler(&stream)); err != nil {
		return nil, err
	}
	findings := filepath.Join(c.out, FindingsFile)
	if err := safefile.Write(findings, stream.Bytes(), 0o644); err != nil {
		return nil, fmt.Errorf("writing findings: %w", err)
	}
	outputs := [][2]string{{"findings", c.rel(findings)}}
	st, err := NewStatement(rep, FindingsFile, stream.Bytes(), rec)
	if err != nil {
		// A source-only scan outside a commit has nothing to attest to.
		fmt.Fprintf(p.Stderr(), "scan: no %s written: %v\n", StatementFile, err)
		return outputs, nil
	}
	data, err := st.Marshal()
	if err != nil {
		return nil, err
	}
	statement := filepath.Join(c.out, StatementFile)
	if err := safefile.Write(statement, data, 0o644); err != nil {
		return nil, fmt.Errorf("writing the scan statement: %w", err)
	}
	return append(outputs, [2]string{"attestation", c.rel(statement)}), nil
}

// render writes each --format to its file or to stdout, showing only the
// findings at or above --report-severity.
func (c *config) render(rep *report.Report, p ci.Platform) ([][2]string, error) {
	var outputs [][2]string
	keep := func(f *report.Finding) bool { return f.Severity.Rank() >= c.minShown.Rank() }
	for _, o := range c.outputs {
		if o.File == "" {
			if err := report.Send(rep, report.Filter(report.Formats[o.Format](p.Stdout()), keep)); err != nil {
				return nil, fmt.Errorf("printing %s: %w", o.Format, err)
			}
			continue
		}
		// FILE is relative to the working directory, like every path on
		// the command line.
		file := resolve(c.workDir, o.File)
		err := safefile.WriteFrom(file, 0o644, func(w io.Writer) error {
			return report.Send(rep, report.Filter(report.Formats[o.Format](w), keep))
		})
		if err != nil {
			return nil, fmt.Errorf("writing %s: %w", o.Format, err)
		}
		outputs = append(outputs, [2]string{o.Format, c.rel(file)})
	}
	return outputs, nil
}

// shownReport is the report with only the findings --report-severity
// shows; the verdict still counts them all.
func (c *config) shownReport(rep *report.Report) *report.Report {
	shown := *rep
	shown.Findings = slices.DeleteFunc(slices.Clone(rep.Findings), func(f *report.Finding) bool {
		return f.Severity.Rank() < c.minShown.Rank()
	})
	return &shown
}

// rel shows a path relative to the working directory when it is inside it.
func (c *config) rel(p string) string { return text.Rel(c.workDir, p) }

func readFindings(file string) (*report.Report, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, cli.Usage(fmt.Errorf("reading findings: %w", err))
	}
	defer f.Close()
	rep, err := report.Read(f)
	if err != nil {
		return nil, cli.Usage(fmt.Errorf("%s: %w", file, err))
	}
	return rep, nil
}

func modulePath(dir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return "", fmt.Errorf("--dir %s is not a Go module: %w", dir, err)
	}
	if p := modfile.ModulePath(data); p != "" {
		return p, nil
	}
	return "", fmt.Errorf("--dir %s: go.mod has no module line", dir)
}

// repoRoot is the nearest directory above start holding .git, else
// fallback: source paths in reports are relative to it.
func repoRoot(start, fallback string) string {
	for d := start; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, ".git")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return fallback
		}
	}
}

// imageRegistry is the registry ref names, for --username.
func imageRegistry(ref string) string {
	r, err := name.ParseReference(ref)
	if err != nil {
		return ""
	}
	return r.Context().RegistryStr()
}

func resolve(base, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(base, p)
}

// rel is text.Rel, for the scanners' paths in scan.go.
func rel(root, p string) string { return text.Rel(root, p) }
