package scan

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/mod/modfile"

	"github.com/slipwayci/slipway/internal/record"
	"github.com/slipwayci/slipway/internal/report"
)

// origin tells the binaries built from the source scanned from the rest.
// Source analysis follows calls, so for those binaries its verdict is the
// one that stands; a binary's own analysis knows only what the linker
// kept, which is far more than is called.
type origin struct {
	// artifacts are the digests of the binaries the build's record lists.
	artifacts map[string]bool
	// module and requires are the module scanned and the versions its
	// go.mod selects, for binaries the record does not list.
	module   string
	requires map[string]string
	// goVersion is the toolchain the source analysis reads the standard
	// library of.
	goVersion string
}

// builtBinary is a binary of this source that the binary analysis left to
// the source analysis.
type builtBinary struct {
	Binary
	platform string
	several  bool
}

// rebased are the findings of the binary analysis of a binary of this
// source built with another Go release, to be settled against the source
// analysis of its platform.
type rebased struct {
	platform string
	findings []*report.Finding
}

func newOrigin(ctx context.Context, o *Options) (*origin, error) {
	data, err := os.ReadFile(filepath.Join(o.Dir, "go.mod"))
	if err != nil {
		return nil, fmt.Errorf("reading the module to scan: %w", err)
	}
	mf, err := modfile.Parse("go.mod", data, nil) // ParseLax would drop replace directives
	if err != nil {
		return nil, fmt.Errorf("reading the module to scan: %w", err)
	}
	g := &origin{artifacts: map[string]bool{}, module: o.Module, requires: map[string]string{}}
	for _, r := range mf.Require {
		g.requires[r.Mod.Path] = r.Mod.Version
	}
	for _, r := range mf.Replace {
		if r.New.Version != "" {
			g.requires[r.Old.Path] = r.New.Version
		}
	}
	if o.Record != nil {
		for _, a := range o.Record.Artifacts {
			g.artifacts[a.SHA256] = true
		}
	}
	cmd := exec.CommandContext(ctx, "go", "env", "GOVERSION")
	cmd.Dir, cmd.Env = o.Dir, o.Env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go env GOVERSION: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	g.goVersion = strings.TrimSpace(string(out))
	return g, nil
}

// ours reports whether b was built from the source scanned, and how that
// is known: the build's record lists it, or it is the module's own main
// package with every dependency at the version go.mod selects.
func (g *origin) ours(b Binary) (why string, ok bool) {
	if g == nil || b.Info == nil {
		return "", false
	}
	if g.artifacts[b.SHA256] {
		return "in the build's record", true
	}
	if b.Info.Main.Path != g.module || g.module == "" {
		return "", false
	}
	for _, d := range b.Info.Deps {
		v := d.Version
		if d.Replace != nil {
			v = d.Replace.Version
		}
		if g.requires[d.Path] != v {
			return "", false
		}
	}
	return "its main module and dependencies are this go.mod's", true
}

// sameToolchain reports whether b was built with the Go release whose
// standard library the source analysis read.
func (g *origin) sameToolchain(b Binary) bool {
	return record.GoRelease(b.Info.GoVersion) == record.GoRelease(g.goVersion)
}

// settleReachability makes the source analysis's verdict the one that
// stands for the binaries built from the source. A binary of ours that the
// binary analysis left alone gets the source findings about what it links
// (a module, or the standard library, at the version it links) located in
// it. One built with another Go release was analysed, for the standard
// library the source analysis did not read; its findings that the source
// analysis also made take the source's verdict, and the rest stay linked.
func settleReachability(results []*Result) {
	var sources []*Result
	for _, r := range results {
		if r.source {
			sources = append(sources, r)
		}
	}
	for _, r := range results {
		for _, b := range r.built {
			src := sourceFor(sources, b.platform)
			if src == nil {
				continue
			}
			linked := map[string]string{"stdlib": "v" + strings.TrimPrefix(record.GoRelease(b.Info.GoVersion), "go")}
			for _, d := range b.Info.Deps {
				v := d.Version
				if d.Replace != nil {
					v = d.Replace.Version
				}
				linked[d.Path] = v
			}
			for _, f := range src.Findings {
				if v, ok := linked[f.Package]; ok && v == f.Version && f.Reachability.Rank() > report.Required.Rank() {
					l := report.Location{Path: b.Path, Image: true}
					if b.several {
						l.Platform = b.platform
					}
					f.Locations = append(f.Locations, l)
				}
			}
		}
		for _, a := range r.rebased {
			src := sourceFor(sources, a.platform)
			if src == nil {
				continue
			}
			for _, f := range a.findings {
				i := slices.IndexFunc(src.Findings, func(s *report.Finding) bool {
					return s.ID == f.ID && s.Package == f.Package && s.Version == f.Version
				})
				if i < 0 {
					continue
				}
				f.Reachability, f.Analysis = src.Findings[i].Reachability, src.Findings[i].Analysis
				for k := range f.Locations {
					f.Locations[k].Symbol = "" // linked is not called
				}
			}
		}
	}
}

// sourceFor is the source analysis that stands for platform: the one that
// lists it, or the only one.
func sourceFor(sources []*Result, platform string) *Result {
	for _, s := range sources {
		if slices.Contains(s.platforms, platform) {
			return s
		}
	}
	if len(sources) == 1 {
		return sources[0]
	}
	return nil
}
