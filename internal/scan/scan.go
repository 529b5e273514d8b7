// Package scan is the scan step: it runs trivy on the image, govulncheck
// on the source and on every Go binary in the image, and gosec on the
// source, all at once in one process, and merges what they find into one
// report for the formats and the policy.
package scan

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/slipwayci/slipway/internal/report"
	"github.com/slipwayci/slipway/internal/scan/gosec"
	"github.com/slipwayci/slipway/internal/scan/govulncheck"
	"github.com/slipwayci/slipway/internal/version"
)

// ImageScanner finds vulnerable OS packages and Go modules in an image.
// The trivy adapter implements it; it registers itself from
// cmd/slipway-scan so that trivy is linked there and nowhere else.
type ImageScanner interface {
	Name() string
	ScanImage(ctx context.Context, img *Image, o ImageOptions) (*Result, error)
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
	Log     io.Writer
}

// Result is what one scanner found.
type Result struct {
	Scanner  report.Scanner
	Findings []*report.Finding
	// OS is the distribution an image scanner detected, e.g. debian 12.5.
	OS string
	// Note qualifies the result in the log.
	Note string
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
	// Image is the image to scan, or nil.
	Image *Image
	// Scanners are the scanners to run (default all that have something
	// to look at).
	Scanners []string
	// VulnDB is govulncheck's database URL.
	VulnDB string
	// Env is the environment of the go command the source scans run.
	Env []string
	// ImageOptions configure the image scanner.
	ImageOptions ImageOptions
	// Commit is the commit scanned, if known.
	Commit string
	// Log receives progress.
	Log io.Writer
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Run runs the scanners in parallel and returns the merged report,
// without a verdict: that is policy's.
func Run(ctx context.Context, o Options) (*report.Report, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if len(o.Scanners) == 0 {
		o.Scanners = AllScanners
	}
	enabled := func(s string) bool { return slices.Contains(o.Scanners, s) }
	rep := &report.Report{Scan: report.Scan{
		Slipway: version.String(),
		Module:  o.Module,
		Commit:  o.Commit,
		Started: o.Now().UTC().Format(time.RFC3339),
	}}
	if o.Dir != "" {
		rep.Scan.Source = rel(o.Root, o.Dir)
	}
	var imgScanner ImageScanner
	if o.Image != nil {
		rep.Scan.Image = &report.Image{Name: o.Image.Name, Digest: o.Image.Digest, Manifest: o.Image.Manifest, Platform: o.Image.Platform}
		if enabled(Trivy) {
			s, err := imageScanner(Trivy)
			if err != nil {
				return nil, err
			}
			imgScanner = s
		}
	}

	var (
		mu      sync.Mutex
		results []*Result
	)
	add := func(r *Result) {
		mu.Lock()
		defer mu.Unlock()
		results = append(results, r)
	}
	g, ctx := errgroup.WithContext(ctx)
	timed := func(what string, fn func() (*Result, error)) {
		g.Go(func() error {
			start := time.Now()
			r, err := fn()
			if err != nil {
				return err
			}
			note := ""
			if r.Note != "" {
				note = " (" + r.Note + ")"
			}
			fmt.Fprintf(o.Log, "scan: %s: %d %s in %.1fs%s\n", what, len(r.Findings), plural(len(r.Findings), "finding"), time.Since(start).Seconds(), note)
			add(r)
			return nil
		})
	}
	gvOpts := govulncheck.Options{DB: o.VulnDB, Env: o.Env, Root: o.Root}
	if o.Dir != "" && enabled(Govulncheck) {
		timed("govulncheck on "+rep.Scan.Source, func() (*Result, error) {
			r, err := govulncheck.Source(ctx, o.Dir, gvOpts)
			if err != nil {
				return nil, err
			}
			res := &Result{Scanner: r.Scanner, Findings: r.Findings}
			if r.Level != "symbol" {
				res.Note = "no vulnerable package is imported, so calls were not followed"
			}
			return res, nil
		})
	}
	if o.Dir != "" && enabled(Gosec) {
		timed("gosec on "+rep.Scan.Source, func() (*Result, error) {
			r, err := gosec.Scan(ctx, o.Dir, gosec.Options{Root: o.Root})
			if err != nil {
				return nil, err
			}
			return &Result{Scanner: r.Scanner, Findings: r.Findings}, nil
		})
	}
	if imgScanner != nil {
		timed(imgScanner.Name()+" on the image", func() (*Result, error) {
			return imgScanner.ScanImage(ctx, o.Image, o.ImageOptions)
		})
	}
	if o.Image != nil && enabled(Govulncheck) {
		timed("govulncheck on the image's Go binaries", func() (*Result, error) {
			return binaries(ctx, o.Image, gvOpts)
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	// Goroutines finish in any order; merge in a fixed one.
	slices.SortFunc(results, func(a, b *Result) int {
		return strings.Compare(a.Scanner.Name+strings.Join(a.Scanner.Targets, ","), b.Scanner.Name+strings.Join(b.Scanner.Targets, ","))
	})
	var all []*report.Finding
	for _, r := range results {
		all = append(all, r.Findings...)
		if r.OS != "" && rep.Scan.Image != nil {
			rep.Scan.Image.OS = r.OS
		}
		rep.Scanners = addScanner(rep.Scanners, r.Scanner)
	}
	slices.SortFunc(rep.Scanners, func(a, b *report.Scanner) int { return strings.Compare(a.Name, b.Name) })
	rep.Findings = report.Merge(all)
	rep.Scan.Finished = o.Now().UTC().Format(time.RFC3339)
	return rep, nil
}

// binaries runs govulncheck on each Go binary in the image, one after the
// other: each is quick, and the other scanners have the cores.
func binaries(ctx context.Context, img *Image, o govulncheck.Options) (*Result, error) {
	dir, err := os.MkdirTemp("", "slipway-scan-bin-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bins, err := GoBinaries(ctx, img.Img, dir)
	if err != nil {
		return nil, fmt.Errorf("finding Go binaries in %s: %w", img.Name, err)
	}
	res := &Result{Scanner: report.Scanner{Name: Govulncheck, Version: govulncheck.Version()}}
	for _, b := range bins {
		r, err := govulncheck.Binary(ctx, b.File, b.Path, o)
		if err != nil {
			return nil, err
		}
		res.Scanner = *mergeScanner(&res.Scanner, &r.Scanner)
		res.Findings = append(res.Findings, r.Findings...)
	}
	return res, nil
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
	m.Targets = slices.Sorted(slices.Values(slices.Concat(a.Targets, b.Targets)))
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

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
