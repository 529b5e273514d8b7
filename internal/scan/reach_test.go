package scan

import (
	"debug/buildinfo"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/report"
	"github.com/slipwayci/slipway/internal/scan/scantest"
	"github.com/slipwayci/slipway/internal/testkit"
)

// goVulns lists the Go vulnerabilities of a report as scantest.Lines does.
func goVulns(rep *report.Report) []string {
	var fs []*report.Finding
	for _, f := range rep.Findings {
		if f.Ecosystem == "go" {
			fs = append(fs, f)
		}
	}
	return scantest.Lines(fs)
}

// TestNonCallingSampleIsNotCalled: the non-calling sample links
// ParseAcceptLanguage without calling it. Scanned with its source, the
// source analysis decides for its binary: imported, and the build passes.
// The same binary with no source here is judged by what it links: linked,
// never called, and as an ungraded vulnerability with a fix it fails.
func TestNonCallingSampleIsNotCalled(t *testing.T) {
	if testing.Short() {
		t.Skip("scans the non-calling sample")
	}
	dir := testkit.SampleRepo(t, "nocall", t.TempDir())
	bin := scantest.Build(t, scantest.NoCall(t), filepath.Join(t.TempDir(), "nocall"), "amd64")
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	scantest.Layout(t, filepath.Join(dir, "dist", "image"), scantest.Image(t, map[string][]byte{"app/nocall": data}))
	args := []string{"--vulndb", scantest.VulnDB(t), "--scanners", "govulncheck,gosec"}

	stdout, stderr, code := run(t, dir, nil, append(args, "--format", "text")...)
	if code != 0 {
		t.Fatalf("with its source: exit %d, want 0\n%s\n%s", code, stdout, stderr)
	}
	rep := scantest.ReadReport(t, filepath.Join(dir, "dist", FindingsFile))
	want := []string{"UNKNOWN | CVE-2022-32149 | GHSA-69ch-w2m2-3vjp,GO-2022-1059 | golang.org/x/text | v0.3.7 | v0.3.8 | imported (source) | go.mod:5 image:/app/nocall | govulncheck"}
	if diff := cmp.Diff(want, goVulns(rep)); diff != "" {
		t.Errorf("with its source (-want +got):\n%s", diff)
	}
	if !strings.Contains(stdout, "imported (source)") || !strings.Contains(stderr, "the source analysis decides for the binaries built from it: app/nocall") {
		t.Errorf("the text and the log do not say the source analysis decided:\n%s\n%s", stdout, stderr)
	}

	stdout, stderr, code = run(t, dir, nil, append(args, "--dir", "none", "--format", "sarif=dist/scan.sarif")...)
	if code != cli.ExitPolicy || !strings.Contains(stderr, "1 vulnerability of unknown severity, reachable and fixed upstream (--fail-unknown called): CVE-2022-32149") {
		t.Errorf("without its source: exit %d, want 3 for the linked vulnerability\n%s\n%s", code, stdout, stderr)
	}
	rep = scantest.ReadReport(t, filepath.Join(dir, "dist", FindingsFile))
	want = []string{"UNKNOWN | CVE-2022-32149 | GHSA-69ch-w2m2-3vjp,GO-2022-1059 | golang.org/x/text | v0.3.7 | v0.3.8 | linked (binary) | image:/app/nocall | govulncheck"}
	if diff := cmp.Diff(want, goVulns(rep)); diff != "" {
		t.Errorf("without its source (-want +got):\n%s", diff)
	}
	sarif, _ := os.ReadFile(filepath.Join(dir, "dist", "scan.sarif"))
	if !strings.Contains(string(sarif), `"reachabilityAnalysis": "binary"`) || !strings.Contains(string(sarif), "linked into a binary whose source is not here (binary analysis)") {
		t.Errorf("SARIF does not say the binary analysis decided:\n%.2000s", sarif)
	}
	// --fail-unknown never: an ungraded vulnerability ranks below low.
	if _, stderr, code := run(t, dir, nil, append(args, "--dir", "none", "--fail-unknown", "never")...); code != 0 {
		t.Errorf("--fail-unknown never: exit %d\n%s", code, stderr)
	}
}

// TestEveryPlatformIsScanned: a two-platform index is scanned on both
// platforms, the source once for both (they build the same code), and the
// statement names both manifests; --platform scans, and names, one.
func TestEveryPlatformIsScanned(t *testing.T) {
	if testing.Short() {
		t.Skip("scans the sample app for two platforms")
	}
	dir := testkit.SampleRepo(t, "vulnerable", t.TempDir())
	imgs := map[string]v1.Image{}
	manifests := map[string]string{}
	for _, arch := range []string{"amd64", "arm64"} {
		bin := scantest.Build(t, scantest.App(t), filepath.Join(t.TempDir(), "vulnerable"), arch)
		imgs[arch] = scantest.ImageFor(t, arch, scantest.ImageFiles(t, bin))
		d, _ := imgs[arch].Digest()
		manifests["linux/"+arch] = d.String()
	}
	index := scantest.LayoutOf(t, filepath.Join(dir, "dist", "image"), imgs)

	_, stderr, code := run(t, dir, nil, "--vulndb", scantest.VulnDB(t))
	if code != cli.ExitPolicy {
		t.Fatalf("exit %d, want 3\n%s", code, stderr)
	}
	rep := scantest.ReadReport(t, filepath.Join(dir, "dist", FindingsFile))
	var platforms []string
	for _, p := range rep.Scan.Image.Platforms {
		platforms = append(platforms, p.Platform+" "+p.Manifest+" "+p.OS)
	}
	if diff := cmp.Diff([]string{"linux/amd64 " + manifests["linux/amd64"] + " debian 12.5", "linux/arm64 " + manifests["linux/arm64"] + " debian 12.5"}, platforms); diff != "" {
		t.Errorf("platforms scanned (-want +got):\n%s", diff)
	}
	for scanner, want := range map[string][]string{
		"trivy":       {"image (linux/amd64)", "image (linux/arm64)"},
		"govulncheck": {"binary app/vulnerable (from source)", "source (linux/amd64, linux/arm64)"},
	} {
		if s := rep.Scanner(scanner); s == nil || !slices.Equal(s.Targets, want) {
			t.Errorf("%s ran on %+v, want %q", scanner, s, want)
		}
	}
	want := "HIGH | CVE-2021-38561 | GHSA-ppp9-7jff-5vj2,GO-2021-0113 | golang.org/x/text | v0.3.6 | v0.3.7 | called (source) | main.go:22:28 image(linux/amd64):/app/vulnerable image(linux/arm64):/app/vulnerable | govulncheck+trivy"
	if got := goVulns(rep); len(got) == 0 || got[0] != want {
		t.Errorf("first Go vulnerability:\n%q\nwant\n%q", got, want)
	}
	subjects := func() []string {
		var st Statement
		data, err := os.ReadFile(filepath.Join(dir, "dist", StatementFile))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &st); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range st.Subject {
			out = append(out, "sha256:"+s.Digest["sha256"])
		}
		return out
	}
	if diff := cmp.Diff([]string{index, manifests["linux/amd64"], manifests["linux/arm64"]}, subjects()); diff != "" {
		t.Errorf("statement subjects (-want +got):\n%s", diff)
	}

	if _, stderr, code := run(t, dir, nil, "--vulndb", scantest.VulnDB(t), "--platform", "linux/arm64"); code != cli.ExitPolicy {
		t.Fatalf("--platform: exit %d\n%s", code, stderr)
	}
	if diff := cmp.Diff([]string{index, manifests["linux/arm64"]}, subjects()); diff != "" {
		t.Errorf("--platform linux/arm64: statement subjects (-want +got):\n%s", diff)
	}
}

// TestMissingDatabaseFailsAtOnce: a database that is not there fails the
// scan before any analysis, within a second, in one line naming the
// database, where it was looked for and the flag that fixes it.
func TestMissingDatabaseFailsAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the sample app")
	}
	dir, _ := sampleRepo(t)
	empty := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"govulncheck's", []string{"--vulndb", "file://" + filepath.ToSlash(filepath.Join(empty, "vulndb"))},
			[]string{"govulncheck's database", filepath.Join(empty, "vulndb"), "--vulndb"}},
		{"trivy's, offline", []string{"--vulndb", scantest.VulnDB(t), "--offline", "--cache-dir", empty},
			[]string{"trivy's database", filepath.Join(empty, "db"), "without --offline", "--cache-dir"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, stderr, code := run(t, dir, nil, tc.args...)
			took := time.Since(start)
			if code != cli.ExitUsage || strings.Count(stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want 2 and one line", code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q lacks %q", stderr, w)
				}
			}
			if took > time.Second {
				t.Errorf("took %s to fail; want under a second", took)
			}
		})
	}
}

// TestPlatformGroups: platforms share a source analysis when they build
// the same code; a file of the module for one architecture, or another
// operating system, splits them.
func TestPlatformGroups(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	ctx := t.Context()
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/groups\n\ngo 1.22\n")
	write("main.go", "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(hello()) }\n")
	write("hello_other.go", "//go:build !arm64\n\npackage main\n\nfunc hello() string { return \"hi\" }\n")
	platforms := []string{"linux/amd64", "linux/arm64", "linux/386", "windows/amd64"}
	env := scantest.Environ()
	groups, err := platformGroups(ctx, dir, env, platforms)
	if err != nil {
		t.Fatal(err)
	}
	// Without its hello, arm64 does not build, which go list -e reports
	// as a different build all the same.
	if diff := cmp.Diff([][]string{{"linux/amd64", "linux/386"}, {"linux/arm64"}, {"windows/amd64"}}, groups); diff != "" {
		t.Errorf("groups (-want +got):\n%s", diff)
	}
	write("hello_arm64.go", "package main\n\nimport \"strings\"\n\nfunc hello() string { return strings.ToUpper(\"hi\") }\n")
	groups, err = platformGroups(ctx, dir, env, platforms)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([][]string{{"linux/amd64", "linux/386"}, {"linux/arm64"}, {"windows/amd64"}}, groups); diff != "" {
		t.Errorf("with an arm64 file (-want +got):\n%s", diff)
	}
	os.Remove(filepath.Join(dir, "hello_arm64.go"))
	write("hello_other.go", "package main\n\nfunc hello() string { return \"hi\" }\n")
	groups, err = platformGroups(ctx, dir, env, platforms)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([][]string{{"linux/amd64", "linux/arm64", "linux/386"}, {"windows/amd64"}}, groups); diff != "" {
		t.Errorf("the same files everywhere (-want +got):\n%s", diff)
	}
}

// TestOrigin: a binary is ours when the record lists it, or when it is
// the module's main package with go.mod's versions; a binary of another
// module, or of other versions, is not.
func TestOrigin(t *testing.T) {
	dep := func(path, version string) *debug.Module { return &debug.Module{Path: path, Version: version} }
	info := func(main string, deps ...*debug.Module) *buildinfo.BuildInfo {
		return &buildinfo.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: main, Version: "(devel)"}, Deps: deps}
	}
	g := &origin{artifacts: map[string]bool{"abc": true}, module: "example.com/app",
		requires: map[string]string{"golang.org/x/text": "v0.3.7"}, goVersion: "go1.26.8"}
	for _, tc := range []struct {
		name string
		b    Binary
		ours bool
	}{
		{"in the record", Binary{SHA256: "abc", Info: info("example.com/other")}, true},
		{"the module at go.mod's versions", Binary{Info: info("example.com/app", dep("golang.org/x/text", "v0.3.7"))}, true},
		{"the module at other versions", Binary{Info: info("example.com/app", dep("golang.org/x/text", "v0.3.6"))}, false},
		{"another module", Binary{Info: info("example.com/other", dep("golang.org/x/text", "v0.3.7"))}, false},
	} {
		if _, ours := g.ours(tc.b); ours != tc.ours {
			t.Errorf("%s: ours = %v, want %v", tc.name, ours, tc.ours)
		}
	}
	if _, ours := (*origin)(nil).ours(Binary{Info: info("example.com/app")}); ours {
		t.Error("with no source analysis a binary is ours")
	}
	// A replaced module counts at its replacement's version, as the
	// binary records it.
	dir := t.TempDir()
	gomod := "module example.com/app\n\ngo 1.22\n\nrequire github.com/gobuffalo/pop/v6 v6.1.2\n\nreplace github.com/gobuffalo/pop/v6 => github.com/ory/pop/v6 v6.2.1\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		t.Fatal(err)
	}
	g2, err := newOrigin(t.Context(), &Options{Dir: dir, Module: "example.com/app", Env: scantest.Environ()})
	if err != nil {
		t.Fatal(err)
	}
	replaced := info("example.com/app", &debug.Module{Path: "github.com/gobuffalo/pop/v6", Version: "v6.1.2", Replace: &debug.Module{Path: "github.com/ory/pop/v6", Version: "v6.2.1"}})
	if _, ours := g2.ours(Binary{Info: replaced}); !ours {
		t.Errorf("a binary with go.mod's replacement is not ours (requires %v)", g2.requires)
	}
	other := Binary{Info: &buildinfo.BuildInfo{GoVersion: "go1.25.3 X:jsonv2"}}
	for v, same := range map[string]bool{"go1.26.8": true, "go1.26.8 X:jsonv2": true, "go1.26.8-X:jsonv2": true, "go1.25.3": false, "go1.26.80": false} {
		if got := g.sameToolchain(Binary{Info: &buildinfo.BuildInfo{GoVersion: v}}); got != same {
			t.Errorf("sameToolchain(%s) = %v, want %v", v, got, same)
		}
	}
	if g.sameToolchain(other) {
		t.Error("sameToolchain compares the Go release")
	}
}

// TestSettleReachability: a binary of ours built with another Go release
// is analysed, and its findings that the source analysis also made take
// the source's verdict; the standard library's, which the source analysis
// read at another version, stay linked.
func TestSettleReachability(t *testing.T) {
	src := &Result{source: true, platforms: []string{"linux/amd64"}, Findings: []*report.Finding{
		{ID: "GO-2022-1059", Package: "golang.org/x/text", Version: "v0.3.7", Reachability: report.Imported, Analysis: report.SourceAnalysis},
		{ID: "GO-2026-0001", Package: "stdlib", Version: "v1.26.8", Reachability: report.Called, Analysis: report.SourceAnalysis},
	}}
	bin := []*report.Finding{
		{ID: "GO-2022-1059", Package: "golang.org/x/text", Version: "v0.3.7", Reachability: report.Linked, Analysis: report.BinaryAnalysis,
			Locations: []report.Location{{Path: "app/x", Image: true, Symbol: "golang.org/x/text/language.ParseAcceptLanguage"}}},
		{ID: "GO-2025-0002", Package: "stdlib", Version: "v1.25.3", Reachability: report.Linked, Analysis: report.BinaryAnalysis,
			Locations: []report.Location{{Path: "app/x", Image: true, Symbol: "net/http.Serve"}}},
	}
	settleReachability([]*Result{src, {rebased: []rebased{{platform: "linux/amd64", findings: bin}}}})
	got := scantest.Lines(bin)
	want := []string{
		" | GO-2022-1059 |  | golang.org/x/text | v0.3.7 |  | imported (source) | image:/app/x | ",
		" | GO-2025-0002 |  | stdlib | v1.25.3 |  | linked (binary) | image:/app/x | ",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("settled (-want +got):\n%s", diff)
	}
	if bin[0].Locations[0].Symbol != "" {
		t.Errorf("the imported finding still names a linked symbol: %+v", bin[0].Locations)
	}
}
