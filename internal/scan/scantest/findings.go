package scantest

import (
	"os"
	"strings"
	"testing"

	"github.com/slipwayci/slipway/internal/report"
)

// ReadReport reads the findings stream a scan wrote to file.
func ReadReport(t testing.TB, file string) *report.Report {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := report.Read(f)
	if err != nil {
		t.Fatalf("reading %s: %v", file, err)
	}
	return rep
}

// Lines puts each finding on one line for a test to compare: severity,
// id, aliases, package, version, fixed version, reachability and the
// analysis that gave it, locations and scanners, in the report's order.
func Lines(fs []*report.Finding) []string {
	var out []string
	for _, f := range fs {
		var locs []string
		for _, l := range f.Locations {
			locs = append(locs, l.String())
		}
		reach := string(f.Reachability)
		if f.Analysis != "" {
			reach += " (" + f.Analysis + ")"
		}
		out = append(out, strings.Join([]string{string(f.Severity), f.ID, strings.Join(f.Aliases, ","), f.Package, f.Version, f.FixedVersion,
			reach, strings.Join(locs, " "), strings.Join(f.Scanners, "+")}, " | "))
	}
	return out
}
