package gosec

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/slipwayci/slipway/internal/report"
	"github.com/slipwayci/slipway/internal/scan/scantest"
	"github.com/slipwayci/slipway/internal/testkit"
)

func TestScan(t *testing.T) {
	if testing.Short() {
		t.Skip("type-checks the sample app")
	}
	res, err := Scan(context.Background(), scantest.App(t), Options{Root: testkit.RepoRoot(t)})
	if err != nil {
		t.Fatal(err)
	}
	main := "testdata/apps/vulnerable/main.go"
	type brief struct {
		ID       string
		Severity report.Severity
		Where    report.Location
		CWEs     []string
		Package  string
	}
	var got []brief
	report.Sort(res.Findings)
	for _, f := range res.Findings {
		if f.Kind != report.Weakness || len(f.Locations) != 1 || f.Title == "" {
			t.Errorf("%s: kind %s, %d locations, title %q", f.ID, f.Kind, len(f.Locations), f.Title)
		}
		got = append(got, brief{f.ID, f.Severity, f.Locations[0], f.CWEs, f.Package})
	}
	// What `gosec ./...` v2.30.0 reports on the sample.
	want := []brief{
		{"G404", report.High, report.Location{Path: main, Line: 32, Column: 38}, []string{"CWE-338"}, "example.com/vulnerable"},
		{"G401", report.Medium, report.Location{Path: main, Line: 31, Column: 9}, []string{"CWE-328"}, "example.com/vulnerable"},
		{"G501", report.Medium, report.Location{Path: main, Line: 12, Column: 2}, []string{"CWE-327"}, "example.com/vulnerable"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	if res.Scanner.Name != "gosec" || res.Scanner.Version != "v2.30.0" {
		t.Errorf("scanner = %+v", res.Scanner)
	}
}

func TestScanHonoursNosecAndSkipsVendor(t *testing.T) {
	if testing.Short() {
		t.Skip("type-checks a module")
	}
	dir := t.TempDir()
	write := func(name, text string) {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/m\n\ngo 1.22\n")
	write("main.go", "package main\n\nimport \"math/rand\"\n\nfunc main() { println(rand.Int()) // #nosec G404 -- jitter only\n}\n")
	write("jitter.go", "package main\n\nimport \"math/rand\"\n\nvar jitter = rand.Int()\n")
	write("testdata/x/x.go", "package x\n\nimport \"math/rand\"\n\nvar V = rand.Int()\n")
	write("sub/go.mod", "module example.com/sub\n")
	write("sub/s.go", "package sub\n\nimport \"math/rand\"\n\nvar V = rand.Int()\n")
	res, err := Scan(context.Background(), dir, Options{Root: dir})
	if err != nil {
		t.Fatal(err)
	}
	// Only the unsuppressed use in the module itself.
	var got []string
	for _, f := range res.Findings {
		got = append(got, f.ID+" "+f.Locations[0].String())
	}
	if diff := cmp.Diff([]string{"G404 jitter.go:5:14"}, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
}

func TestLinkedVersion(t *testing.T) {
	if want := scantest.Required(t, "github.com/securego/gosec/v2"); linked != want {
		t.Errorf("linked = %s, go.mod requires %s", linked, want)
	}
}
