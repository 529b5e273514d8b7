package report

import (
	"cmp"
	"slices"
	"strings"
)

// Merge joins what several scanners found into one finding per problem.
// Vulnerabilities of one package at one version merge when they share an
// identifier (an ID or an alias, so trivy's CVE and govulncheck's GO-…
// meet); weaknesses merge when they are the same rule at the same place.
// The merged finding keeps the highest severity and the strongest
// reachability any scanner reported, each with its source. The input is
// not modified: the scanner has already settled which analysis decides
// for which binary (scan.Run), so the strongest verdict left is a real
// one.
func Merge(findings []*Finding) []*Finding {
	var out []*Finding
	byKey := map[string]*Finding{}
	// ids maps package@version + one identifier to the merged finding that
	// holds it; merging two findings can join two earlier groups.
	ids := map[string]*Finding{}
	for _, in := range findings {
		f := clone(in)
		if f.Kind == Weakness {
			k := weaknessKey(f)
			if m, ok := byKey[k]; ok {
				absorb(m, f)
				continue
			}
			byKey[k] = f
			out = append(out, f)
			continue
		}
		pkg := f.Ecosystem + "\x00" + f.Package + "\x00" + comparableVersion(f.Version)
		var into *Finding
		for _, id := range f.IDs() {
			m, ok := ids[pkg+"\x00"+id]
			if !ok || m == into {
				continue
			}
			if into == nil {
				into = m
				continue
			}
			// f links two groups: fold the later one into the first.
			absorb(into, m)
			out = slices.DeleteFunc(out, func(x *Finding) bool { return x == m })
			for _, id := range m.IDs() {
				ids[pkg+"\x00"+id] = into
			}
		}
		if into == nil {
			into = f
			out = append(out, f)
		} else {
			absorb(into, f)
		}
		for _, id := range into.IDs() {
			ids[pkg+"\x00"+id] = into
		}
	}
	for _, f := range out {
		tidy(f)
	}
	Sort(out)
	return out
}

func weaknessKey(f *Finding) string {
	var b strings.Builder
	b.WriteString(f.ID)
	for _, l := range f.Locations {
		b.WriteString("\x00" + l.String())
	}
	return b.String()
}

// comparableVersion lets trivy's 0.3.6 meet govulncheck's v0.3.6.
func comparableVersion(v string) string { return strings.TrimPrefix(v, "v") }

func clone(f *Finding) *Finding {
	c := *f
	c.Aliases = slices.Clone(f.Aliases)
	c.Locations = slices.Clone(f.Locations)
	c.CWEs = slices.Clone(f.CWEs)
	c.Scanners = slices.Clone(f.Scanners)
	return &c
}

// descriptive ranks scanners as sources of titles and descriptions: trivy
// carries NVD's and the distributions' text, govulncheck the Go team's.
var descriptive = []string{"trivy", "govulncheck", "gosec"}

// absorb merges f into m.
func absorb(m, f *Finding) {
	better := rankOf(descriptive, f.Scanners) < rankOf(descriptive, m.Scanners)
	if m.Title == "" || (better && f.Title != "") {
		m.Title = f.Title
	}
	if m.Description == "" || (better && f.Description != "") {
		m.Description = f.Description
	}
	if f.Severity.Rank() > m.Severity.Rank() || f.Severity == m.Severity && m.SeveritySource == "" {
		m.Severity, m.SeveritySource = f.Severity, f.SeveritySource
	}
	// Equal verdicts: the source analysis's, which followed calls.
	if f.Reachability.Rank() > m.Reachability.Rank() ||
		f.Reachability == m.Reachability && f.Analysis == SourceAnalysis {
		m.Reachability, m.Analysis = f.Reachability, f.Analysis
	}
	// The Go database's fixed versions are exact semver; trivy's come
	// from advisories that sometimes list several.
	if m.FixedVersion == "" || (slices.Contains(f.Scanners, "govulncheck") && f.FixedVersion != "") {
		m.FixedVersion = f.FixedVersion
	}
	if m.URL == "" || (slices.Contains(f.Scanners, "govulncheck") && f.URL != "") {
		m.URL = f.URL
	}
	if m.Version == "" || strings.HasPrefix(f.Version, "v") {
		m.Version = f.Version
	}
	m.Aliases = append(m.Aliases, f.IDs()...)
	m.Locations = append(m.Locations, f.Locations...)
	m.CWEs = append(m.CWEs, f.CWEs...)
	m.Scanners = append(m.Scanners, f.Scanners...)
}

func rankOf(order, scanners []string) int {
	best := len(order)
	for _, s := range scanners {
		if i := slices.Index(order, s); i >= 0 && i < best {
			best = i
		}
	}
	return best
}

// tidy picks the preferred ID and sorts and deduplicates the lists.
func tidy(f *Finding) {
	all := compact(f.IDs())
	if f.Kind != Weakness {
		slices.SortFunc(all, func(a, b string) int {
			return cmp.Or(cmp.Compare(idRank(a), idRank(b)), strings.Compare(a, b))
		})
	}
	f.ID = all[0]
	f.Aliases = nil
	for _, a := range all[1:] {
		f.Aliases = append(f.Aliases, a)
	}
	f.Aliases = compact(f.Aliases)
	f.CWEs = compact(f.CWEs)
	f.Scanners = compact(f.Scanners)
	slices.SortFunc(f.Locations, compareLocations)
	// One place seen twice, once with the vulnerable symbol: keep that one.
	f.Locations = slices.CompactFunc(f.Locations, func(a, b Location) bool {
		return a.Path == b.Path && a.Line == b.Line && a.Column == b.Column && a.Image == b.Image && a.Platform == b.Platform
	})
}

// idRank prefers the identifier most tools and people know.
func idRank(id string) int {
	switch {
	case strings.HasPrefix(id, "CVE-"):
		return 0
	case strings.HasPrefix(id, "GHSA-"):
		return 1
	case strings.HasPrefix(id, "GO-"):
		return 2
	}
	return 3
}

func compact(s []string) []string {
	s = slices.DeleteFunc(slices.Clone(s), func(x string) bool { return x == "" })
	slices.Sort(s)
	return slices.Compact(s)
}

// compareLocations puts source before image, then by place, the one with
// a symbol first.
func compareLocations(a, b Location) int {
	if a.Image != b.Image {
		if a.Image {
			return 1
		}
		return -1
	}
	return cmp.Or(strings.Compare(a.Path, b.Path), strings.Compare(a.Platform, b.Platform), cmp.Compare(a.Line, b.Line),
		cmp.Compare(a.Column, b.Column), strings.Compare(b.Symbol, a.Symbol))
}

// Sort orders findings most urgent first: by severity, then reachability
// (called, linked, then not analysed, then imported, then required), then
// ID.
func Sort(fs []*Finding) {
	slices.SortStableFunc(fs, func(a, b *Finding) int {
		return cmp.Or(
			cmp.Compare(b.Severity.Rank(), a.Severity.Rank()),
			cmp.Compare(reachOrder(b.Reachability), reachOrder(a.Reachability)),
			strings.Compare(string(a.Kind), string(b.Kind)),
			strings.Compare(a.ID, b.ID),
			strings.Compare(a.Package, b.Package),
			compareFirstLocation(a, b),
		)
	})
}

func reachOrder(r Reachability) int {
	switch r {
	case "":
		return Imported.Rank() + 1 // nothing shows it is unreachable
	case Called, Linked:
		return r.Rank() + 1
	}
	return r.Rank()
}

func compareFirstLocation(a, b *Finding) int {
	switch {
	case len(a.Locations) == 0 || len(b.Locations) == 0:
		return cmp.Compare(len(a.Locations), len(b.Locations))
	}
	return compareLocations(a.Locations[0], b.Locations[0])
}
