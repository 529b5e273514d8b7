// Package govulncheck runs govulncheck in-process (golang.org/x/vuln/scan)
// on a module's source or on a binary, and turns its JSON stream into
// slipway findings with their reachability.
package govulncheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/vuln/scan"

	"github.com/slipwayci/slipway/internal/redact"
	"github.com/slipwayci/slipway/internal/report"
)

// Name is the scanner's name in findings.
const Name = "govulncheck"

// DefaultDB is the Go vulnerability database.
const DefaultDB = "https://vuln.go.dev"

// Options configure a run.
type Options struct {
	// DB is the database URL: https://… or file:///dir, where dir may be a
	// flat folder of OSV records.
	DB string
	// Env is the environment for the go command in source mode.
	Env []string
	// Root is the repository root; source paths become relative to it.
	Root string
	// Platform is the binary's platform, for its locations, when the
	// image has several.
	Platform string
}

// Result is one run's findings and what govulncheck said about itself.
type Result struct {
	Scanner  report.Scanner
	Findings []*report.Finding
	// Level is how deep the analysis went: "symbol" when calls were
	// followed, "package" when nothing vulnerable is imported and import
	// analysis settled it.
	Level string
	// GoVersion is the Go toolchain the findings in the standard library
	// are about: the go command's for source, the binary's own.
	GoVersion string
}

// Source scans the module in dir, following calls from its packages to
// vulnerable functions.
//
// Following calls means type-checking the whole program from source and
// building its SSA and call graph, most of a scan's time. It can only
// find something in a package that the module imports and that a
// vulnerability affects, so a package-level pass (go list and the
// database, a few hundredths of a second) runs first; when it finds no
// such package its findings are what the symbol pass would report, and
// the symbol pass is skipped.
func Source(ctx context.Context, dir string, o Options) (*Result, error) {
	gomod, err := readGoMod(dir)
	if err != nil {
		return nil, err
	}
	level := "package"
	msgs, err := run(ctx, o, "-scan", level, "-C", dir, "./...")
	if err == nil && slices.ContainsFunc(msgs.findings, func(f *finding) bool { return reach(f) == report.Imported }) {
		level = "symbol"
		msgs, err = run(ctx, o, "-scan", level, "-C", dir, "./...")
	}
	if err != nil {
		return nil, fmt.Errorf("govulncheck on %s: %w", rel(o.Root, dir), err)
	}
	src := &sourceSite{root: o.Root, dir: dir, gomod: gomod}
	res, err := convert(msgs, o, "source", report.SourceAnalysis, src.locate)
	if err != nil {
		return nil, err
	}
	res.Level = level
	return res, nil
}

// Binary scans a Go binary at file; name is where it sits in the image.
// A vulnerable function found in it is Linked, not Called: the linker
// keeps far more than the code calls.
func Binary(ctx context.Context, file, name string, o Options) (*Result, error) {
	msgs, err := run(ctx, o, "-scan", "symbol", "-mode", "binary", file)
	if err != nil {
		return nil, fmt.Errorf("govulncheck on binary %s: %w", name, err)
	}
	name = strings.TrimPrefix(name, "/")
	target := "binary " + name
	if o.Platform != "" {
		target += " (" + o.Platform + ")"
	}
	res, err := convert(msgs, o, target, report.BinaryAnalysis, func(f *finding) []report.Location {
		return []report.Location{{Path: name, Image: true, Platform: o.Platform, Symbol: symbol(f.Trace[0])}}
	})
	if err != nil {
		return nil, err
	}
	res.Level = "symbol"
	return res, nil
}

func run(ctx context.Context, o Options, args ...string) (*stream, error) {
	db := o.DB
	if db == "" {
		db = DefaultDB
	}
	var stdout, stderr bytes.Buffer
	cmd := scan.Command(ctx, append([]string{"-db", db, "-format", "json"}, args...)...)
	cmd.Stdin = strings.NewReader("")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = o.Env
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	if err := cmd.Wait(); err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return nil, fmt.Errorf("%w: %s", err, msg)
		}
		return nil, err
	}
	return decode(&stdout)
}

// The JSON stream, as much of it as slipway reads (govulncheck's own types
// are internal). See golang.org/x/vuln/internal/govulncheck.
type message struct {
	Config  *config  `json:"config"`
	SBOM    *sbom    `json:"SBOM"`
	OSV     *osv     `json:"osv"`
	Finding *finding `json:"finding"`
}

type config struct {
	DB             string     `json:"db"`
	DBLastModified *time.Time `json:"db_last_modified"`
	GoVersion      string     `json:"go_version"`
}

// sbom is what govulncheck says it analysed; binary mode gives the
// binary's Go version only here.
type sbom struct {
	GoVersion string `json:"go_version"`
}

type osv struct {
	ID       string   `json:"id"`
	Aliases  []string `json:"aliases"`
	Summary  string   `json:"summary"`
	Details  string   `json:"details"`
	Database struct {
		URL string `json:"url"`
	} `json:"database_specific"`
}

type finding struct {
	OSV          string   `json:"osv"`
	FixedVersion string   `json:"fixed_version"`
	Trace        []*frame `json:"trace"`
}

type frame struct {
	Module   string    `json:"module"`
	Version  string    `json:"version"`
	Package  string    `json:"package"`
	Function string    `json:"function"`
	Receiver string    `json:"receiver"`
	Position *position `json:"position"`
}

type position struct {
	Filename string `json:"filename"`
	Line     int    `json:"line"`
	Column   int    `json:"column"`
}

type stream struct {
	config   config
	osvs     map[string]*osv
	findings []*finding
}

func decode(r io.Reader) (*stream, error) {
	s := &stream{osvs: map[string]*osv{}}
	dec := json.NewDecoder(r)
	for {
		var m message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("reading govulncheck output: %w", err)
		}
		switch {
		case m.Config != nil:
			s.config = *m.Config
		case m.SBOM != nil && m.SBOM.GoVersion != "":
			s.config.GoVersion = m.SBOM.GoVersion
		case m.OSV != nil:
			s.osvs[m.OSV.ID] = m.OSV
		case m.Finding != nil && len(m.Finding.Trace) > 0:
			s.findings = append(s.findings, m.Finding)
		}
	}
	return s, nil
}

// reach is how far a govulncheck finding got: a function in the trace
// means it is called (linked, in a binary), a package that it is
// imported, else only required.
func reach(f *finding) report.Reachability {
	switch top := f.Trace[0]; {
	case top.Function != "":
		return report.Called
	case top.Package != "":
		return report.Imported
	}
	return report.Required
}

// convert folds govulncheck's findings (one per module, package and call
// path) into one slipway finding per vulnerability and module, at the
// strongest reachability seen, located where the code calls it or, if it
// does not, where the module is required. analysis says whose verdict it
// is; a binary's function is linked, not called.
func convert(s *stream, o Options, target, analysis string, locate func(*finding) []report.Location) (*Result, error) {
	res := &Result{GoVersion: s.config.GoVersion, Scanner: report.Scanner{
		Name:    Name,
		Version: Version(),
		URL:     "https://pkg.go.dev/golang.org/x/vuln/cmd/govulncheck",
		Targets: []string{target},
		DB:      &report.DB{Source: redact.URL(s.config.DB)},
	}}
	if t := s.config.DBLastModified; t != nil && !t.IsZero() {
		res.Scanner.DB.Updated = t.UTC().Format(time.RFC3339)
	}
	type key struct{ osv, module string }
	byKey := map[key]*report.Finding{}
	var order []key
	for _, gf := range s.findings {
		top := gf.Trace[0]
		k := key{gf.OSV, top.Module}
		f, ok := byKey[k]
		if !ok {
			entry := s.osvs[gf.OSV]
			if entry == nil {
				entry = &osv{ID: gf.OSV}
			}
			f = &report.Finding{
				ID:           entry.ID,
				Aliases:      slices.Clone(entry.Aliases),
				Kind:         report.Vulnerability,
				Title:        title(entry),
				Description:  entry.Details,
				Severity:     report.Unknown,
				Package:      top.Module,
				Version:      goVersion(top.Module, top.Version),
				FixedVersion: goVersion(top.Module, gf.FixedVersion),
				Ecosystem:    "go",
				URL:          entry.Database.URL,
				Analysis:     analysis,
				Scanners:     []string{Name},
			}
			byKey[k] = f
			order = append(order, k)
		}
		r := reach(gf)
		if r == report.Called && analysis == report.BinaryAnalysis {
			r = report.Linked
		}
		switch {
		case r.Rank() > f.Reachability.Rank():
			f.Reachability = r
			f.Locations = locate(gf)
		case r == f.Reachability && (r == report.Called || r == report.Linked):
			f.Locations = append(f.Locations, locate(gf)...)
		}
	}
	for _, k := range order {
		f := byKey[k]
		slices.SortFunc(f.Locations, func(a, b report.Location) int {
			return strings.Compare(a.String()+a.Symbol, b.String()+b.Symbol)
		})
		f.Locations = slices.Compact(f.Locations)
		res.Findings = append(res.Findings, f)
	}
	return res, nil
}

// linked is the version go.mod requires, for binaries without module
// information (test binaries); TestLinkedVersion keeps it in step.
const linked = "v1.8.0"

// Version is the golang.org/x/vuln module linked into this binary. (As a
// library, govulncheck reports the main module's version as its own.)
func Version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "golang.org/x/vuln" {
				return d.Version
			}
		}
	}
	return linked
}

// title is the record's summary; older records have none, and their
// details' first sentence stands in.
func title(e *osv) string {
	if e.Summary != "" {
		return e.Summary
	}
	d := strings.Join(strings.Fields(e.Details), " ")
	if i := strings.Index(d, ". "); i >= 0 {
		d = d[:i]
	}
	d = strings.TrimSuffix(d, ".")
	if r := []rune(d); len(r) > 120 {
		d = string(r[:119]) + "…"
	}
	return d
}

// goVersion writes the Go toolchain's version as its module version.
func goVersion(module, v string) string {
	if module == "stdlib" || module == "toolchain" {
		if after, ok := strings.CutPrefix(v, "go"); ok {
			return "v" + after
		}
	}
	return v
}

func symbol(f *frame) string {
	if f.Function == "" {
		return ""
	}
	name := f.Function
	if f.Receiver != "" {
		name = strings.TrimPrefix(f.Receiver, "*") + "." + name
	}
	return f.Package + "." + name
}

// sourceSite finds where in the source a finding is: the call into the
// vulnerable code for a called one, the require line in go.mod otherwise.
type sourceSite struct {
	root, dir string
	gomod     *modfile.File
}

func (s *sourceSite) locate(f *finding) []report.Location {
	top := f.Trace[0]
	if f.Trace[0].Function != "" {
		// The trace runs from the vulnerable function back to the entry
		// point; the first frame in this module is the call to look at.
		for _, fr := range f.Trace[1:] {
			if fr.Module != s.gomod.Module.Mod.Path || fr.Position == nil || fr.Position.Line == 0 {
				continue
			}
			return []report.Location{{
				Path:   rel(s.root, filepath.Join(s.dir, filepath.FromSlash(fr.Position.Filename))),
				Line:   fr.Position.Line,
				Column: fr.Position.Column,
				Symbol: symbol(top),
			}}
		}
	}
	return []report.Location{{Path: rel(s.root, filepath.Join(s.dir, "go.mod")), Line: s.requireLine(top.Module)}}
}

func (s *sourceSite) requireLine(module string) int {
	if module == "stdlib" || module == "toolchain" {
		switch {
		case s.gomod.Toolchain != nil:
			return s.gomod.Toolchain.Syntax.Start.Line
		case s.gomod.Go != nil:
			return s.gomod.Go.Syntax.Start.Line
		}
	}
	for _, r := range s.gomod.Require {
		if r.Mod.Path == module {
			return r.Syntax.Start.Line
		}
	}
	return 0
}

func readGoMod(dir string) (*modfile.File, error) {
	file := filepath.Join(dir, "go.mod")
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading the module to scan: %w", err)
	}
	mf, err := modfile.ParseLax(file, data, nil)
	if err != nil {
		return nil, fmt.Errorf("reading the module to scan: %w", err)
	}
	if mf.Module == nil {
		return nil, fmt.Errorf("reading the module to scan: %s has no module line", file)
	}
	return mf, nil
}

// rel makes p relative to root, with forward slashes; a path outside root
// stays as it is.
func rel(root, p string) string {
	if root == "" {
		return filepath.ToSlash(p)
	}
	r, err := filepath.Rel(root, p)
	if err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return filepath.ToSlash(p)
	}
	return path.Clean(filepath.ToSlash(r))
}
