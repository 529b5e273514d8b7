package scan

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/slipwayci/slipway/internal/report"
	"github.com/slipwayci/slipway/internal/scan/gosec"
	"github.com/slipwayci/slipway/internal/scan/govulncheck"
)

// plan lists the scanners to run, in lanes that run side by side, each
// lane one scanner after the other. govulncheck's source analyses share a
// lane: each type-checks and builds SSA for the whole program, most of a
// scan's memory, and side by side they would add it up. gosec (one
// package at a time, its dependencies from export data) and the image's
// scanners are light next to them and take the other lane, so that they
// cost no wall time beside the source analysis.
func plan(ctx context.Context, o *Options, db VulnDB) ([][]Scanner, error) {
	var source, image []Scanner
	gv := govulncheck.Options{DB: o.VulnDB, Env: o.Env, Root: o.Root}
	var built *origin
	if o.Dir != "" && o.enabled(Govulncheck) {
		groups, err := platformGroups(ctx, o.Dir, o.Env, sourcePlatforms(o))
		if err != nil {
			return nil, err
		}
		for _, g := range groups {
			source = append(source, &sourceVulns{dir: o.Dir, label: rel(o.Root, o.Dir), platforms: g, o: gv})
		}
		if built, err = newOrigin(ctx, o); err != nil {
			return nil, err
		}
	}
	if o.Dir != "" && o.enabled(Gosec) {
		image = append(image, &weaknesses{dir: o.Dir, label: rel(o.Root, o.Dir), root: o.Root})
	}
	several := len(o.Images) > 1
	if o.enabled(Trivy) {
		for _, img := range o.Images {
			image = append(image, &imageVulns{db: db, img: img, several: several})
		}
	}
	if o.enabled(Govulncheck) {
		for _, img := range o.Images {
			image = append(image, &binaryVulns{img: img, built: built, o: gv, several: several})
		}
	}
	var lanes [][]Scanner
	for _, l := range [][]Scanner{source, image} {
		if len(l) > 0 {
			lanes = append(lanes, l)
		}
	}
	return lanes, nil
}

// sourceVulns is govulncheck on the module's source, for platforms that
// build the same code: the authority on what the binaries built from it
// call.
type sourceVulns struct {
	dir, label string
	// platforms share one analysis; empty means the go command's own.
	platforms []string
	o         govulncheck.Options
}

func (s *sourceVulns) String() string {
	if len(s.platforms) == 0 {
		return "govulncheck on " + s.label
	}
	return fmt.Sprintf("govulncheck on %s (%s)", s.label, strings.Join(s.platforms, ", "))
}

func (s *sourceVulns) Scan(ctx context.Context) (*Result, error) {
	o := s.o
	if len(s.platforms) > 0 {
		o.Env = platformEnv(o.Env, s.platforms[0])
	}
	r, err := govulncheck.Source(ctx, s.dir, o)
	if err != nil {
		return nil, err
	}
	res := &Result{Scanner: r.Scanner, Findings: r.Findings, source: true, platforms: s.platforms}
	if len(s.platforms) > 0 {
		res.Scanner.Targets = []string{"source (" + strings.Join(s.platforms, ", ") + ")"}
	}
	if r.Level != "symbol" {
		res.Note = "no vulnerable package is imported, so calls were not followed"
	}
	return res, nil
}

// weaknesses is gosec on the module's source.
type weaknesses struct {
	dir, label, root string
}

func (s *weaknesses) String() string { return "gosec on " + s.label }

func (s *weaknesses) Scan(ctx context.Context) (*Result, error) {
	r, err := gosec.Scan(ctx, s.dir, gosec.Options{Root: s.root})
	if err != nil {
		return nil, err
	}
	return &Result{Scanner: r.Scanner, Findings: r.Findings}, nil
}

// imageVulns is the image scanner on one platform's image.
type imageVulns struct {
	db      VulnDB
	img     *Image
	several bool // the image has other platforms: locations name this one
}

func (s *imageVulns) String() string {
	return fmt.Sprintf("%s on the image (%s)", Trivy, orUnknown(s.img.Platform))
}

func (s *imageVulns) Scan(ctx context.Context) (*Result, error) {
	r, err := s.db.ScanImage(ctx, s.img)
	if err != nil {
		return nil, err
	}
	r.Platform = s.img.Platform
	if s.several {
		for _, f := range r.Findings {
			inPlatform(f, s.img.Platform)
		}
		r.Scanner.Targets = []string{"image (" + s.img.Platform + ")"}
	}
	return r, nil
}

// binaryVulns is govulncheck on the Go binaries of one platform's image
// that were not built from the source scanned; those that were are left
// to the source analysis, whose verdict stands for them.
type binaryVulns struct {
	img     *Image
	built   *origin // nil: no source analysis, so no binary is ours
	o       govulncheck.Options
	several bool
}

func (s *binaryVulns) String() string {
	return fmt.Sprintf("govulncheck on the image's Go binaries (%s)", orUnknown(s.img.Platform))
}

func (s *binaryVulns) Scan(ctx context.Context) (*Result, error) {
	dir, err := os.MkdirTemp("", "slipway-scan-bin-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bins, err := GoBinaries(ctx, s.img.Img, dir)
	if err != nil {
		return nil, fmt.Errorf("finding Go binaries in %s: %w", s.img.Name, err)
	}
	o := s.o
	if s.several {
		o.Platform = s.img.Platform
	}
	res := &Result{Scanner: report.Scanner{Name: Govulncheck, Version: govulncheck.Version()}}
	var left []string
	for _, b := range bins {
		why, ours := s.built.ours(b)
		if ours && s.built.sameToolchain(b) {
			res.built = append(res.built, builtBinary{Binary: b, platform: s.img.Platform, several: s.several})
			res.Scanner.Targets = append(res.Scanner.Targets, "binary "+b.Path+" (from source)")
			left = append(left, b.Path+" ("+why+")")
			continue
		}
		r, err := govulncheck.Binary(ctx, b.File, b.Path, o)
		if err != nil {
			return nil, err
		}
		res.Scanner = *mergeScanner(&res.Scanner, &r.Scanner)
		res.Findings = append(res.Findings, r.Findings...)
		if ours {
			res.rebased = append(res.rebased, rebased{platform: s.img.Platform, findings: r.Findings})
		}
	}
	if len(left) > 0 {
		res.Note = "the source analysis decides for the binaries built from it: " + strings.Join(left, ", ")
	}
	return res, nil
}

// inPlatform marks a finding's image locations as in platform's image.
func inPlatform(f *report.Finding, platform string) {
	for i := range f.Locations {
		if f.Locations[i].Image {
			f.Locations[i].Platform = platform
		}
	}
}

func orUnknown(platform string) string {
	if platform == "" {
		return "platform unknown"
	}
	return platform
}
