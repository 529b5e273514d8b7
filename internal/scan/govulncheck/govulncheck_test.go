package govulncheck

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/slipwayci/slipway/internal/report"
	"github.com/slipwayci/slipway/internal/scan/scantest"
	"github.com/slipwayci/slipway/internal/testkit"
)

// brief is what a test compares of a finding.
type brief struct {
	ID, Package, Version, Fixed string
	Aliases                     []string
	Reach                       report.Reachability
	Analysis                    string
	Locations                   []report.Location
}

func briefs(fs []*report.Finding) map[string]brief {
	m := map[string]brief{}
	for _, f := range fs {
		m[f.ID] = brief{f.ID, f.Package, f.Version, f.FixedVersion, f.Aliases, f.Reachability, f.Analysis, f.Locations}
	}
	return m
}

var aliases = map[string][]string{
	"GO-2021-0113": {"CVE-2021-38561", "GHSA-ppp9-7jff-5vj2"},
	"GO-2022-1059": {"CVE-2022-32149", "GHSA-69ch-w2m2-3vjp"},
	"GO-2020-0036": {"CVE-2019-11254", "GHSA-wxc4-f4m6-wwqv"},
}

func TestSource(t *testing.T) {
	if testing.Short() {
		t.Skip("loads and type-checks the sample app")
	}
	root := testkit.RepoRoot(t)
	res, err := Source(context.Background(), scantest.App(t), Options{DB: scantest.VulnDB(t), Env: scantest.Environ(), Root: root})
	if err != nil {
		t.Fatal(err)
	}
	app := "testdata/apps/vulnerable/"
	want := map[string]brief{
		"GO-2021-0113": {"GO-2021-0113", "golang.org/x/text", "v0.3.6", "v0.3.7", aliases["GO-2021-0113"], report.Called, "source",
			[]report.Location{{Path: app + "main.go", Line: 22, Column: 28, Symbol: "golang.org/x/text/language.Parse"}}},
		"GO-2022-1059": {"GO-2022-1059", "golang.org/x/text", "v0.3.6", "v0.3.8", aliases["GO-2022-1059"], report.Imported, "source",
			[]report.Location{{Path: app + "go.mod", Line: 6}}},
		"GO-2020-0036": {"GO-2020-0036", "gopkg.in/yaml.v2", "v2.2.7", "v2.2.8", aliases["GO-2020-0036"], report.Imported, "source",
			[]report.Location{{Path: app + "go.mod", Line: 7}}},
	}
	if diff := cmp.Diff(want, briefs(res.Findings)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	if res.Level != "symbol" {
		t.Errorf("level = %q, want symbol: the app imports vulnerable packages", res.Level)
	}
	if res.Scanner.Name != "govulncheck" || res.Scanner.Version != "v1.8.0" || res.Scanner.DB.Source != scantest.VulnDB(t) {
		t.Errorf("scanner = %+v, db %+v", res.Scanner, res.Scanner.DB)
	}
	for _, f := range res.Findings {
		if f.Description == "" || f.URL != "https://pkg.go.dev/vuln/"+f.ID || f.Severity != report.Unknown {
			t.Errorf("%s: description %q, url %q, severity %q", f.ID, f.Description, f.URL, f.Severity)
		}
	}
}

// A module whose dependencies are vulnerable in packages it does not
// import is settled by the package-level pass, with exactly the findings
// the symbol-level pass would report.
func TestSourceSkipsSymbolsWhenNothingVulnerableIsImported(t *testing.T) {
	if testing.Short() {
		t.Skip("runs govulncheck on a copy of the sample app")
	}
	ctx := context.Background()
	root := t.TempDir()
	dir := filepath.Join(root, "app")
	testkit.CopyDir(t, scantest.App(t), dir)
	// The sample app's go.mod and vendor folder, with a main that imports
	// gopkg.in/yaml.v2 only; and GO-2020-0036's real record with its
	// vulnerable code moved to a package of the module nobody imports.
	main := "package main\n\nimport (\n\t\"fmt\"\n\n\t\"gopkg.in/yaml.v2\"\n)\n\nfunc main() {\n\tout, _ := yaml.Marshal(1)\n\tfmt.Print(string(out))\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	db := t.TempDir()
	dbURL, ok := strings.CutPrefix(scantest.VulnDB(t), "file://")
	if !ok {
		t.Fatalf("vulndb %s is not a file URL", scantest.VulnDB(t))
	}
	rec, err := os.ReadFile(filepath.Join(dbURL, "GO-2020-0036.json"))
	if err != nil {
		t.Fatal(err)
	}
	moved := bytes.ReplaceAll(rec, []byte(`"path": "gopkg.in/yaml.v2"`), []byte(`"path": "gopkg.in/yaml.v2/unimported"`))
	if bytes.Equal(moved, rec) {
		t.Fatal("GO-2020-0036.json no longer names gopkg.in/yaml.v2 as its vulnerable package")
	}
	if err := os.WriteFile(filepath.Join(db, "GO-2020-0036.json"), moved, 0o644); err != nil {
		t.Fatal(err)
	}

	o := Options{DB: "file://" + db, Env: scantest.Environ(), Root: root}
	res, err := Source(ctx, dir, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Level != "package" {
		t.Errorf("level = %q, want package", res.Level)
	}
	want := map[string]brief{
		"GO-2020-0036": {"GO-2020-0036", "gopkg.in/yaml.v2", "v2.2.7", "v2.2.8", aliases["GO-2020-0036"], report.Required, "source",
			[]report.Location{{Path: "app/go.mod", Line: 7}}},
	}
	if diff := cmp.Diff(want, briefs(res.Findings)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}

	// What the skipped pass would have said.
	msgs, err := run(ctx, o, "-scan", "symbol", "-C", dir, "./...")
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := readGoMod(dir)
	if err != nil {
		t.Fatal(err)
	}
	full, err := convert(msgs, o, "source", report.SourceAnalysis, (&sourceSite{root: root, dir: dir, gomod: gomod}).locate)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(full.Findings, res.Findings); diff != "" {
		t.Errorf("package-level findings differ from the symbol-level pass's (-symbol +package):\n%s", diff)
	}
}

func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the sample app")
	}
	bin := scantest.BuildApp(t, t.TempDir())
	res, err := Binary(context.Background(), bin, "/app/vulnerable", Options{DB: scantest.VulnDB(t)})
	if err != nil {
		t.Fatal(err)
	}
	in := func(sym string) []report.Location {
		return []report.Location{{Path: "app/vulnerable", Image: true, Symbol: sym}}
	}
	// A function in the binary is linked, not called: the binary alone
	// cannot tell.
	want := map[string]brief{
		"GO-2021-0113": {"GO-2021-0113", "golang.org/x/text", "v0.3.6", "v0.3.7", aliases["GO-2021-0113"], report.Linked, "binary", in("golang.org/x/text/language.Parse")},
		"GO-2022-1059": {"GO-2022-1059", "golang.org/x/text", "v0.3.6", "v0.3.8", aliases["GO-2022-1059"], report.Imported, "binary", in("")},
		"GO-2020-0036": {"GO-2020-0036", "gopkg.in/yaml.v2", "v2.2.7", "v2.2.8", aliases["GO-2020-0036"], report.Imported, "binary", in("")},
	}
	if diff := cmp.Diff(want, briefs(res.Findings)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	if got := res.Scanner.Targets; len(got) != 1 || got[0] != "binary app/vulnerable" {
		t.Errorf("targets = %q", got)
	}
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Source(ctx, t.TempDir(), Options{DB: scantest.VulnDB(t)}); err == nil {
		t.Error("Source on a directory without go.mod succeeded")
	}
	if _, err := Binary(ctx, filepath.Join(t.TempDir(), "nothing"), "nothing", Options{DB: scantest.VulnDB(t)}); err == nil {
		t.Error("Binary on a missing file succeeded")
	}
	bin := filepath.Join(scantest.App(t), "main.go") // not a binary
	if _, err := Binary(ctx, bin, "main.go", Options{DB: scantest.VulnDB(t)}); err == nil {
		t.Error("Binary on a source file succeeded")
	}
}

func TestCheckDB(t *testing.T) {
	ctx := context.Background()
	if err := CheckDB(ctx, scantest.VulnDB(t)); err != nil {
		t.Errorf("the fixture database: %v", err)
	}
	empty := t.TempDir()
	for db, want := range map[string]string{
		"file://" + filepath.ToSlash(filepath.Join(empty, "missing")): "no directory " + filepath.Join(empty, "missing"),
		"file://" + filepath.ToSlash(empty):                           "holds neither index/modules.json nor OSV records",
		"ftp://example.com/db":                                        "is neither https:// nor file://",
	} {
		if err := CheckDB(ctx, db); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckDB(%s) = %v, want %q", db, err, want)
		}
	}
}

func TestLinkedVersion(t *testing.T) {
	if want := scantest.Required(t, "golang.org/x/vuln"); linked != want {
		t.Errorf("linked = %s, go.mod requires %s", linked, want)
	}
}
