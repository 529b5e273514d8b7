// Package scan is the scan step: trivy on each platform's image,
// govulncheck on the source (the authority on reachability for the
// binaries built from it) and on the Go binaries in the image that have no
// source here, and gosec on the source, in one process. Their findings
// merge into one report for the formats and the policy.
package scan

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/report"
	"github.com/slipwayci/slipway/internal/scan/gosec"
	"github.com/slipwayci/slipway/internal/scan/govulncheck"
	"github.com/slipwayci/slipway/internal/version"
)

// Scanner is one scanner bound to what it looks at: govulncheck on the
// source for some platforms, trivy on one platform's image, gosec on the
// source. Run plans a list of them and runs it.
type Scanner interface {
	// String names the scanner and its target, for the log.
	String() string
	Scan(ctx context.Context) (*Result, error)
}

// Result is what one scanner found.
type Result struct {
	Scanner  report.Scanner
	Findings []*report.Finding
	// OS is the distribution an image scanner detected in the image of
	// Platform, e.g. debian 12.5.
	OS, Platform string
	// Note qualifies the result in the log.
	Note string

	// source marks a source analysis, with platforms the platforms it
	// stands for.
	source    bool
	platforms []string
	// built are the binaries of this source that the binary analysis left
	// to the source analysis; rebased the binary findings of those it
	// could not.
	built   []builtBinary
	rebased []rebased
}

// ImageScanner keeps a vulnerability database and scans images with it.
// The trivy adapter implements it; it registers itself from
// cmd/slipway-scan so that trivy is linked there and nowhere else.
type ImageScanner interface {
	Name() string
	// Open makes the database ready (downloading it unless o.Offline) and
	// opens it. With o.IfPresent it downloads nothing, and returns nil
	// when the cache holds no database.
	Open(ctx context.Context, o ImageOptions) (VulnDB, error)
}

// VulnDB is an open vulnerability database and the image scanner that
// reads it. Close it when done.
type VulnDB interface {
	ScanImage(ctx context.Context, img *Image) (*Result, error)
	// Grade returns the severity the database gives the first of ids it
	// knows, and who graded it (ghsa, nvd, …).
	Grade(ids []string) (sev report.Severity, source string, ok bool)
	// Info describes the database for the report.
	Info() *report.DB
	Close() error
}

// ImageOptions configure the image scanner's database.
type ImageOptions struct {
	// CacheDir keeps the database between runs.
	CacheDir string
	// DBRepositories are OCI repositories of the database, tried in order
	// (a mirror first); empty means the scanner's default.
	DBRepositories []string
	// Offline uses the database in CacheDir and never downloads one.
	Offline bool
	// IfPresent opens the database in CacheDir if there is one, to grade
	// what other scanners found, and never downloads.
	IfPresent bool
	Log       io.Writer
}

var (
	registryMu sync.Mutex
	registered []ImageScanner
)

// RegisterImageScanner makes an image scanner available to Run.
func RegisterImageScanner(s ImageScanner) {
	registryMu.Lock()
	defer registryMu.Unlock()
	registered = append(registered, s)
}

func imageScanner(name string) (ImageScanner, error) {
	registryMu.Lock()
	defer registryMu.Unlock()
	var names []string
	for _, s := range registered {
		if s.Name() == name {
			return s, nil
		}
		names = append(names, s.Name())
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no image scanner is linked into this program; scanning images needs slipway-scan")
	}
	return nil, fmt.Errorf("no image scanner %q (have %s)", name, strings.Join(names, ", "))
}

// Scanner names, for --scanners.
const (
	Trivy       = "trivy"
	Govulncheck = govulncheck.Name
	Gosec       = gosec.Name
)

// AllScanners lists every scanner.
var AllScanners = []string{Gosec, Govulncheck, Trivy}

// Options configure Run.
type Options struct {
	// Root is the repository root: paths in findings are relative to it.
	Root string
	// Module is the Go module to scan from source, with Dir its directory
	// (absolute); empty skips the source scans.
	Module, Dir string
	// Images are the platform images of the image to scan (OpenImage),
	// or none.
	Images []*Image
	// Record is the build's record, if any: the binaries it lists are
	// built from the source in Dir.
	Record *record.Record
	// Scanners are the scanners to run (default all that have something
	// to look at).
	Scanners []string
	// VulnDB is govulncheck's database URL.
	VulnDB string
	// Env is the environment of the go command the source scans run.
	Env []string
	// ImageOptions configure the image scanner's database.
	ImageOptions ImageOptions
	// Commit is the commit scanned, if known.
	Commit string
	// Log receives progress.
	Log io.Writer
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (o *Options) enabled(s string) bool {
	return len(o.Scanners) == 0 || slices.Contains(o.Scanners, s)
}

// Run checks the databases, runs the scanners and returns the merged
// report, without a verdict: that is policy's.
func Run(ctx context.Context, o Options) (*report.Report, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	rep := &report.Report{Scan: report.Scan{
		Slipway: version.String(),
		Module:  o.Module,
		Commit:  o.Commit,
		Started: o.Now().UTC().Format(time.RFC3339),
	}}
	if o.Dir != "" {
		rep.Scan.Source = rel(o.Root, o.Dir)
	}
	if len(o.Images) > 0 {
		rep.Scan.Image = &report.Image{Name: o.Images[0].Name, Digest: o.Images[0].Digest, Platforms: []report.PlatformImage{}}
		for _, img := range o.Images {
			rep.Scan.Image.Platforms = append(rep.Scan.Image.Platforms, report.PlatformImage{Platform: img.Platform, Manifest: img.Manifest})
		}
	}

	// Databases first: a missing one fails now, not after minutes of
	// analysis.
	db, err := openDatabases(ctx, &o)
	if err != nil {
		return nil, err
	}
	if db != nil {
		defer db.Close()
	}
	lanes, err := plan(ctx, &o, db)
	if err != nil {
		return nil, err
	}
	results, err := runLanes(ctx, o.Log, lanes)
	if err != nil {
		return nil, err
	}
	settleReachability(results)

	var all []*report.Finding
	for _, r := range results {
		all = append(all, r.Findings...)
		if r.OS != "" && rep.Scan.Image != nil {
			if p := rep.Scan.Image.Platform(r.Platform); p != nil {
				p.OS = r.OS
			}
		}
		rep.Scanners = addScanner(rep.Scanners, r.Scanner)
	}
	slices.SortFunc(rep.Scanners, func(a, b *report.Scanner) int { return strings.Compare(a.Name, b.Name) })
	rep.Findings = report.Merge(all)
	if db != nil {
		grade(rep, db, o.Log)
	}
	rep.Scan.Finished = o.Now().UTC().Format(time.RFC3339)
	return rep, nil
}

// runLanes runs each lane's scanners one after the other, and the lanes
// side by side. Results come back in plan order, whatever finished first.
func runLanes(ctx context.Context, log io.Writer, lanes [][]Scanner) ([]*Result, error) {
	results := make([][]*Result, len(lanes))
	g, ctx := errgroup.WithContext(ctx)
	for i, lane := range lanes {
		g.Go(func() error {
			for _, s := range lane {
				if err := ctx.Err(); err != nil {
					return err
				}
				start := time.Now()
				r, err := s.Scan(ctx)
				if err != nil {
					return err
				}
				note := ""
				if r.Note != "" {
					note = " (" + r.Note + ")"
				}
				fmt.Fprintf(log, "scan: %s: %d %s in %.1fs%s\n", s, len(r.Findings), plural(len(r.Findings), "finding"), time.Since(start).Seconds(), note)
				results[i] = append(results[i], r)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return slices.Concat(results...), nil
}

// grade gives the vulnerabilities no scanner graded the severity the
// database gives them under one of their identifiers (govulncheck's
// CVE and GHSA aliases), saying who graded it.
func grade(rep *report.Report, db VulnDB, log io.Writer) {
	graded := 0
	for _, f := range rep.Findings {
		if f.Kind != report.Vulnerability || f.Severity != report.Unknown {
			continue
		}
		if sev, source, ok := db.Grade(f.IDs()); ok {
			f.Severity, f.SeveritySource = sev, source
			graded++
		}
	}
	report.Sort(rep.Findings)
	rep.Scan.Grades = db.Info()
	fmt.Fprintf(log, "scan: %d %s graded from trivy's database\n", graded, plural(graded, "vulnerability", "vulnerabilities"))
}

// addScanner adds s to the list, folding runs of one scanner into one
// entry with all their targets.
func addScanner(list []*report.Scanner, s report.Scanner) []*report.Scanner {
	for i, have := range list {
		if have.Name == s.Name {
			list[i] = mergeScanner(have, &s)
			return list
		}
	}
	return append(list, &s)
}

func mergeScanner(a, b *report.Scanner) *report.Scanner {
	m := *a
	m.Targets = slices.Compact(slices.Sorted(slices.Values(slices.Concat(a.Targets, b.Targets))))
	if m.DB == nil {
		m.DB = b.DB
	}
	if m.URL == "" {
		m.URL = b.URL
	}
	if m.Version == "" {
		m.Version = b.Version
	}
	return &m
}

func plural(n int, word string, plural ...string) string {
	if n == 1 {
		return word
	}
	if len(plural) > 0 {
		return plural[0]
	}
	return word + "s"
}
