// Package gosec runs gosec's rules and analyzers in-process on a module's
// packages and turns its issues into slipway findings.
package gosec

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/securego/gosec/v2"
	"github.com/securego/gosec/v2/analyzers"
	"github.com/securego/gosec/v2/issue"
	"github.com/securego/gosec/v2/rules"
	"golang.org/x/mod/modfile"

	"github.com/slipwayci/slipway/internal/report"
)

// Name is the scanner's name in findings.
const Name = "gosec"

// Options configure a run.
type Options struct {
	// Root is the repository root; paths become relative to it.
	Root string
	// Tags are build tags.
	Tags []string
	// Concurrency is how many packages are analysed at once (0: one per
	// core).
	Concurrency int
}

// Result is one run's findings.
type Result struct {
	Scanner  report.Scanner
	Findings []*report.Finding
}

// excluded are directories the go command leaves out of ./... (and
// vendor, which gosec's command leaves out too).
var excluded = []*regexp.Regexp{
	regexp.MustCompile(`(^|/)(vendor|testdata)(/|$)`),
	regexp.MustCompile(`(^|/)[._][^/]*(/|$)`),
}

// Scan analyses every package of the module in dir, as `gosec ./...` run
// there would, honouring #nosec comments.
func Scan(ctx context.Context, dir string, o Options) (*Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	modPath, err := modulePath(dir)
	if err != nil {
		return nil, err
	}
	pkgs, err := packageDirs(dir)
	if err != nil {
		return nil, err
	}
	conc := o.Concurrency
	if conc <= 0 {
		conc = runtime.GOMAXPROCS(0)
	}
	logger := log.New(io.Discard, "", 0)
	a := gosec.NewAnalyzer(gosec.NewConfig(), false, true, false, conc, logger)
	a.LoadRules(rules.Generate(false).RulesInfo())
	a.LoadAnalyzers(analyzers.Generate(false).AnalyzersInfo())
	// gosec's Process takes no context; it is short next to the others.
	if err := a.Process(o.Tags, pkgs...); err != nil {
		return nil, fmt.Errorf("gosec: %w", err)
	}
	issues, _, errs := a.Report()
	for file, es := range errs {
		if len(es) > 0 {
			return nil, fmt.Errorf("gosec: %s: %s", rel(o.Root, file), es[0].Err)
		}
	}
	res := &Result{Scanner: report.Scanner{
		Name:    Name,
		Version: Version(),
		URL:     "https://securego.io",
		Targets: []string{"source"},
	}}
	for _, is := range issues {
		res.Findings = append(res.Findings, convert(is, o.Root, dir, modPath))
	}
	return res, nil
}

func convert(is *issue.Issue, root, dir, modPath string) *report.Finding {
	line, _ := strconv.Atoi(strings.SplitN(is.Line, "-", 2)[0])
	col, _ := strconv.Atoi(is.Col)
	f := &report.Finding{
		ID:             is.RuleID,
		Kind:           report.Weakness,
		Title:          is.What,
		Severity:       severity(is.Severity),
		SeveritySource: Name,
		Package:        goPackage(modPath, dir, filepath.Dir(is.File)),
		Locations:      []report.Location{{Path: rel(root, is.File), Line: line, Column: col}},
		Scanners:       []string{Name},
	}
	if is.Cwe != nil && is.Cwe.ID != "" {
		f.CWEs = []string{"CWE-" + is.Cwe.ID}
		f.URL = is.Cwe.SprintURL()
	}
	return f
}

func severity(s issue.Score) report.Severity {
	switch s {
	case issue.High:
		return report.High
	case issue.Medium:
		return report.Medium
	case issue.Low:
		return report.Low
	}
	return report.Unknown
}

// linked is the version go.mod requires, for binaries without module
// information (test binaries); TestLinkedVersion keeps it in step.
const linked = "v2.30.0"

// Version is the gosec module linked into this binary.
func Version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/securego/gosec/v2" {
				return d.Version
			}
		}
	}
	return linked
}

func packageDirs(dir string) ([]string, error) {
	var dirs []string
	seen := map[string]bool{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r := filepath.ToSlash(strings.TrimPrefix(p, dir))
		if d.IsDir() {
			if p != dir && (excludedDir(r) || isModule(p)) {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(p, ".go") && !seen[filepath.Dir(p)] {
			seen[filepath.Dir(p)] = true
			dirs = append(dirs, filepath.Dir(p))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing packages: %w", err)
	}
	return dirs, nil
}

func excludedDir(r string) bool {
	for _, re := range excluded {
		if re.MatchString(r) {
			return true
		}
	}
	return false
}

// isModule reports whether dir is the root of a nested module, which
// ./... does not reach.
func isModule(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "go.mod"))
	return err == nil
}

func modulePath(dir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return "", fmt.Errorf("reading the module to scan: %w", err)
	}
	p := modfile.ModulePath(data)
	if p == "" {
		return "", fmt.Errorf("reading the module to scan: %s has no module line", filepath.Join(dir, "go.mod"))
	}
	return p, nil
}

func goPackage(modPath, modDir, pkgDir string) string {
	r, err := filepath.Rel(modDir, pkgDir)
	if err != nil || r == "." {
		return modPath
	}
	return path.Join(modPath, filepath.ToSlash(r))
}

func rel(root, p string) string {
	if root == "" {
		return filepath.ToSlash(p)
	}
	r, err := filepath.Rel(root, p)
	if err != nil || strings.HasPrefix(r, "..") {
		return filepath.ToSlash(p)
	}
	return filepath.ToSlash(r)
}
