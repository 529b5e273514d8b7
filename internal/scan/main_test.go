package scan

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/report"
	"github.com/slipwayci/slipway/internal/scan/scantest"
	"github.com/slipwayci/slipway/internal/testkit"
)

// fakeTrivy stands in for the trivy adapter, which these tests do not
// link: it reports what trivy reports on the sample image, after checking
// it was handed that image, and grades what trivy's fixture database
// grades. It has a database unless offline with an empty cache
// directory.
type fakeTrivy struct{}

func (fakeTrivy) Name() string { return Trivy }

func (fakeTrivy) Open(ctx context.Context, o ImageOptions) (VulnDB, error) {
	if o.CacheDir != "" {
		if _, err := os.Stat(filepath.Join(o.CacheDir, "db", "trivy.db")); err != nil {
			if o.IfPresent {
				return nil, nil
			}
			return nil, &DBError{DB: TrivyDB, Where: filepath.Join(o.CacheDir, "db"), Missing: true, Err: errors.New("none there, and offline downloads none")}
		}
	}
	return fakeDB{}, nil
}

type fakeDB struct{}

func (fakeDB) Info() *report.DB { return &report.DB{Source: "fixture", Version: "2"} }
func (fakeDB) Close() error     { return nil }

func (fakeDB) Grade(ids []string) (report.Severity, string, bool) {
	if slices.Contains(ids, "CVE-2019-11254") {
		return report.Medium, "ghsa", true
	}
	return "", "", false
}

func (fakeDB) ScanImage(ctx context.Context, img *Image) (*Result, error) {
	bins, err := GoBinaries(ctx, img.Img, os.TempDir())
	if err != nil || len(bins) != 1 || bins[0].Path != "app/vulnerable" {
		return nil, err
	}
	os.Remove(bins[0].File)
	return &Result{
		Scanner: report.Scanner{Name: Trivy, Version: "v0.74.0", Targets: []string{"image"}, DB: &report.DB{Source: "fixture", Version: "2"}},
		OS:      "debian 12.5",
		Findings: []*report.Finding{
			{ID: "CVE-2019-18276", Kind: report.Vulnerability, Title: "bash: when effective UID is not equal to its real UID the saved UID is not dropped",
				Severity: report.High, SeveritySource: "nvd", Package: "bash", Version: "5.2.15-2+b2", Ecosystem: "debian",
				Locations: []report.Location{{Path: "var/lib/dpkg/status", Image: true}}, Scanners: []string{Trivy}},
			{ID: "CVE-2021-38561", Aliases: []string{"GHSA-ppp9-7jff-5vj2"}, Kind: report.Vulnerability, Title: "golang: out-of-bounds read in golang.org/x/text/language leads to DoS",
				Severity: report.High, SeveritySource: "ghsa", Package: "golang.org/x/text", Version: "v0.3.6", FixedVersion: "0.3.7", Ecosystem: "go",
				Locations: []report.Location{{Path: "app/vulnerable", Image: true}}, Scanners: []string{Trivy}},
		},
	}, nil
}

func init() { RegisterImageScanner(fakeTrivy{}) }

// run runs the scan step in-process the way cmd/slipway-scan does.
func run(t *testing.T, dir string, environ []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	env := cli.Env{Args: args, Environ: append(scantest.Environ(), environ...), Stdout: &out, Stderr: &errb, Dir: dir}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	code = cli.ExitCode(&errb, "slipway scan", Main(ctx, env))
	return out.String(), errb.String(), code
}

// sampleRepo is the sample app committed in a fresh repository, with its
// image in dist/image as the image step leaves it.
func sampleRepo(t *testing.T) (dir, indexDigest string) {
	t.Helper()
	dir = testkit.SampleRepo(t, "vulnerable", t.TempDir())
	bin := scantest.BuildApp(t, t.TempDir())
	indexDigest = scantest.Layout(t, filepath.Join(dir, "dist", "image"), scantest.Image(t, scantest.ImageFiles(t, bin)))
	return dir, indexDigest
}

func TestScanSourceAndImage(t *testing.T) {
	if testing.Short() {
		t.Skip("scans the sample app")
	}
	dir, index := sampleRepo(t)
	stdout, stderr, code := run(t, dir, nil, "--vulndb", scantest.VulnDB(t), "--format", "sarif=dist/scan.sarif")
	if code != cli.ExitPolicy {
		t.Fatalf("exit %d, want 3\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "slipway scan: policy refuses: 3 findings at or above high: CVE-2021-38561, CVE-2019-18276, G404") {
		t.Errorf("stderr lacks the refusal:\n%s", stderr)
	}

	stream, err := os.ReadFile(filepath.Join(dir, "dist", FindingsFile))
	if err != nil {
		t.Fatal(err)
	}
	rep := scantest.ReadReport(t, filepath.Join(dir, "dist", FindingsFile))
	got := scantest.Lines(rep.Findings)
	// One finding per vulnerability: trivy's and govulncheck's merged,
	// with the source analysis's reachability. The binary in the image is
	// the module's own, so the source analysis stands for it and locates
	// its findings there too; the database grades the yaml.v2 one.
	want := []string{
		"HIGH | CVE-2021-38561 | GHSA-ppp9-7jff-5vj2,GO-2021-0113 | golang.org/x/text | v0.3.6 | v0.3.7 | called (source) | main.go:22:28 image:/app/vulnerable | govulncheck+trivy",
		"HIGH | CVE-2019-18276 |  | bash | 5.2.15-2+b2 |  |  | image:/var/lib/dpkg/status | trivy",
		"HIGH | G404 |  | example.com/vulnerable |  |  |  | main.go:32:38 | gosec",
		"MEDIUM | G401 |  | example.com/vulnerable |  |  |  | main.go:31:9 | gosec",
		"MEDIUM | G501 |  | example.com/vulnerable |  |  |  | main.go:12:2 | gosec",
		"MEDIUM | CVE-2019-11254 | GHSA-wxc4-f4m6-wwqv,GO-2020-0036 | gopkg.in/yaml.v2 | v2.2.7 | v2.2.8 | imported (source) | go.mod:7 image:/app/vulnerable | govulncheck",
		"UNKNOWN | CVE-2022-32149 | GHSA-69ch-w2m2-3vjp,GO-2022-1059 | golang.org/x/text | v0.3.6 | v0.3.8 | imported (source) | go.mod:6 image:/app/vulnerable | govulncheck",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	if img := rep.Scan.Image; img == nil || img.Digest != index || len(img.Platforms) != 1 || img.Platforms[0].Platform != "linux/amd64" ||
		img.Platforms[0].OS != "debian 12.5" || img.Name != "oci:"+filepath.Join(dir, "dist", "image") {
		t.Errorf("scanned image = %+v, want the layout's index %s", img, index)
	}
	gv := rep.Scanner("govulncheck")
	if gv == nil || !slices.Equal(gv.Targets, []string{"binary app/vulnerable (from source)", "source (linux/amd64)"}) {
		t.Errorf("govulncheck ran on %+v, want the source, standing for the binary", gv)
	}
	if rep.Scan.Grades == nil || rep.Scan.Grades.Source != "fixture" {
		t.Errorf("grades = %+v, want the fixture database", rep.Scan.Grades)
	}

	// The statement is about the image and carries the verdict.
	var st Statement
	data, err := os.ReadFile(filepath.Join(dir, "dist", StatementFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(stream)
	_, indexHex, _ := strings.Cut(index, ":")
	switch {
	case st.Type != StatementType || st.PredicateType != PredicateType:
		t.Errorf("statement types %q, %q", st.Type, st.PredicateType)
	case len(st.Subject) != 2 || st.Subject[0].Digest["sha256"] != indexHex:
		t.Errorf("subjects = %+v, want the index %s then the manifest", st.Subject, index)
	case len(st.Predicate.Reachability) != 3 || st.Predicate.Reachability[0] != (Reach{ID: "CVE-2021-38561", Package: "golang.org/x/text", Version: "v0.3.6", Reachability: "called", Analysis: "source"}):
		t.Errorf("reachability = %+v, want the three Go vulnerabilities, by source analysis", st.Predicate.Reachability)
	case st.Predicate.Verdict.Pass || st.Predicate.Verdict.FailOn != "high" || st.Predicate.Counts.High != 3:
		t.Errorf("verdict = %+v, counts %+v", st.Predicate.Verdict, st.Predicate.Counts)
	case st.Predicate.Findings.Digest["sha256"] != hex.EncodeToString(sum[:]):
		t.Errorf("statement names findings %v, not the findings written", st.Predicate.Findings)
	case st.Predicate.Scanned.Commit != testkit.Git(t, dir, "rev-parse", "HEAD"):
		t.Errorf("scanned commit = %q", st.Predicate.Scanned.Commit)
	case len(st.Predicate.Scanners) != 3:
		t.Errorf("scanners = %+v", st.Predicate.Scanners)
	}

	for _, s := range []string{"output findings=dist/findings.json", "output attestation=dist/scan.intoto.json",
		"output sarif=dist/scan.sarif", "output verdict=fail", `output counts={"critical":0,"high":3,"medium":3,"low":0,"unknown":1,"waived":0}`} {
		if !strings.Contains(stdout, s) {
			t.Errorf("stdout lacks %q:\n%s", s, stdout)
		}
	}
	if sarif, err := os.ReadFile(filepath.Join(dir, "dist", "scan.sarif")); err != nil || !bytes.Contains(sarif, []byte(`"uri": "main.go"`)) {
		t.Errorf("scan.sarif: %v\n%.300s", err, sarif)
	}
	if md, err := os.ReadFile(filepath.Join(dir, "dist", SummaryFile)); err != nil || !strings.Contains(string(md), "| HIGH | CVE-2021-38561 | golang.org/x/text | v0.3.6 | v0.3.7 | called (source) |") {
		t.Errorf("summary: %v\n%s", err, md)
	}
	if !strings.Contains(stderr, "main.go:22:28: error: CVE-2021-38561 (high)") {
		t.Errorf("no annotation on the call:\n%s", stderr)
	}

	// Replayed with another policy, the same findings pass.
	stdout, stderr, code = run(t, dir, nil, "--from", "dist/findings.json", "--fail-on", "critical", "--format", "text")
	if code != 0 || !strings.Contains(stdout, "Verdict: pass (fail on critical)") {
		t.Errorf("replay: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if st2, _ := os.ReadFile(filepath.Join(dir, "dist", StatementFile)); !bytes.Equal(st2, data) {
		t.Error("a replay rewrote the statement")
	}
}

// TestPolicyAndWaivers replays a findings stream under different policies
// and waiver files.
func TestPolicyAndWaivers(t *testing.T) {
	fixture := filepath.Join(testkit.RepoRoot(t), "internal", "report", "testdata", "sample.json")
	for _, tc := range []struct {
		name    string
		waivers string
		args    []string
		code    int
		want    []string // in stdout+stderr
	}{
		{"default fails on high", "", nil, 3, []string{"policy refuses: 4 findings at or above high: CVE-2021-38561, CVE-2019-18276, G404, CVE-2022-32149"}},
		{"none passes", "", []string{"--fail-on", "none"}, 0, []string{"output verdict=pass"}},
		{"reachable only lets the imported one pass", "", []string{"--reachable-only"}, 3, []string{"3 findings at or above high not shown unreachable: CVE-2021-38561, CVE-2019-18276, G404"}},
		{"waivers by alias and scope", `waivers:
  - id: GO-2021-0113
    reason: the tag comes from our own config
  - id: CVE-2019-18276
    scope: {image: "oci:dist/*"}
    reason: no setuid binaries in the image
  - id: G404
    scope: {path: app/**}
    reason: jitter only
  - id: CVE-2022-32149
    reason: never parses Accept-Language
    expires: 2099-12-31
`, nil, 0, []string{"output verdict=pass", `"waived":4`}},
		{"an expired waiver fails", "waivers:\n  - id: CVE-2019-11254\n    reason: old\n    expires: 2020-01-01\n", []string{"--fail-on", "critical"}, 3, []string{"waiver CVE-2019-11254 expired on 2020-01-01"}},
		{"an unknown key is a configuration error", "waivers:\n  - id: G404\n    reason: r\n    until: 2030-01-01\n", nil, 2, []string{"field until not found"}},
		{"a waiver without a reason is a configuration error", "waivers:\n  - id: G404\n", nil, 2, []string{"waiver G404 has no reason"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			os.Mkdir(filepath.Join(dir, ".git"), 0o755)
			if tc.waivers != "" {
				os.MkdirAll(filepath.Join(dir, ".slipway"), 0o755)
				os.WriteFile(filepath.Join(dir, ".slipway", "waivers.yaml"), []byte(tc.waivers), 0o644)
			}
			stdout, stderr, code := run(t, dir, nil, append([]string{"--from", fixture}, tc.args...)...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\n%s\n%s", code, tc.code, stdout, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stdout+stderr, w) {
					t.Errorf("output lacks %q:\n%s\n%s", w, stdout, stderr)
				}
			}
		})
	}
}

func TestReportSeverityFiltersWhatIsShownNotThePolicy(t *testing.T) {
	fixture := filepath.Join(testkit.RepoRoot(t), "internal", "report", "testdata", "sample.json")
	dir := t.TempDir()
	stdout, _, code := run(t, dir, nil, "--from", fixture, "--report-severity", "high", "--format", "text,json=shown.json", "--fail-on", "medium")
	if code != 3 {
		t.Errorf("exit %d, want 3: the medium findings still fail", code)
	}
	if strings.Contains(stdout, "\nMEDIUM ") || !strings.Contains(stdout, "\nHIGH      CVE-2021-38561") || !strings.Contains(stdout, "8 findings: 4 high, 3 medium, 1 low") {
		t.Errorf("text shows findings below high, or hides high ones:\n%s", stdout)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "shown.json"))
	rep, err := report.Read(bytes.NewReader(data))
	if err != nil || len(rep.Findings) != 4 || rep.Verdict.Counts.Medium != 3 || rep.Verdict.Counts.Low != 1 {
		t.Errorf("shown.json: %v, %d findings, verdict counts %+v", err, len(rep.Findings), rep.Verdict)
	}
}

// TestGitHubKeepsUntrustedTextOffTheCommandChannel: a scanner's title with
// line breaks and workflow commands in it reaches no output and starts no
// command.
func TestGitHubKeepsUntrustedTextOffTheCommandChannel(t *testing.T) {
	fixture := filepath.Join(testkit.RepoRoot(t), "internal", "report", "testdata", "sample.json")
	dir := t.TempDir()
	outFile, sumFile := filepath.Join(dir, "output"), filepath.Join(dir, "summary")
	stdout, stderr, code := run(t, dir, []string{
		"GITHUB_ACTIONS=true", "GITHUB_OUTPUT=" + outFile, "GITHUB_STEP_SUMMARY=" + sumFile,
		"INPUT_FAIL_ON=none", "INPUT_FORMAT=text",
	}, "--from", fixture)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, line := range strings.Split(stdout, "\n") {
		trimmed := strings.TrimLeft(line, " \t")
		if strings.HasPrefix(trimmed, "::") && !regexp.MustCompile(`^::(error|warning|notice) `).MatchString(trimmed) {
			t.Errorf("stdout has a command slipway did not issue: %q", line)
		}
		if strings.Contains(line, "##[") {
			t.Errorf("stdout has an old-style command: %q", line)
		}
	}
	if !strings.Contains(stdout, "CVE-2026-0001") {
		t.Errorf("the hostile finding is not shown at all:\n%s", stdout)
	}
	// Outputs are exactly slipway's, each in its own random-delimited block.
	outputs, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(outputs))
	for sc.Scan() {
		if name, delim, ok := strings.Cut(sc.Text(), "<<"); ok {
			names = append(names, name)
			for sc.Scan() && sc.Text() != delim {
			}
		}
	}
	if diff := cmp.Diff([]string{"verdict", "counts"}, names); diff != "" {
		t.Errorf("GITHUB_OUTPUT names (-want +got):\n%s", diff)
	}
	if md, _ := os.ReadFile(sumFile); strings.Contains(string(md), "<img") || !strings.Contains(string(md), "CVE-2026-0001") {
		t.Errorf("step summary carries markup, or lacks the finding:\n%s", md)
	}
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	mod := t.TempDir()
	for name, data := range map[string]string{"records": "not a directory", "go.mod": "module example.com/m\n\ngo 1.22\n"} {
		if err := os.WriteFile(filepath.Join(mod, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--fail-on", "urgent"}, `--fail-on: unknown severity "urgent"`},
		{[]string{"--report-severity", "none"}, "--report-severity"},
		{[]string{"--format", "pdf"}, `--format: unknown format "pdf"`},
		{[]string{"--scanners", "snyk"}, `unknown scanner "snyk"`},
		{[]string{"--offline"}, "--offline: govulncheck needs a local database"},
		{[]string{"--waivers", "missing.yaml"}, "reading waivers"},
		{[]string{"--from", "missing.json"}, "reading findings"},
		{[]string{"--dir", "none", "--image", "none"}, "nothing to scan"},
		{[]string{"extra"}, "unexpected arguments"},
		{[]string{"--bogus"}, "flag provided but not defined"},
		// A database that cannot be read never will be: exit 2, not 1.
		{[]string{"--dir", mod, "--image", "none", "--vulndb", "file://" + filepath.ToSlash(filepath.Join(mod, "missing"))}, "give --vulndb a folder of Go OSV records"},
		{[]string{"--dir", mod, "--image", "none", "--vulndb", "file://" + filepath.ToSlash(filepath.Join(mod, "records"))}, "give --vulndb a folder of Go OSV records"},
		{[]string{"--dir", mod, "--image", "none", "--vulndb", filepath.Join(mod, "missing")}, "is neither https:// nor file://"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, stderr, code := run(t, dir, nil, tc.args...)
			if code != cli.ExitUsage || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, tc.want)
			}
		})
	}
}

func TestNoImageScannerMeansNoImageScan(t *testing.T) {
	registryMu.Lock()
	saved := registered
	registered = nil
	registryMu.Unlock()
	defer func() { registryMu.Lock(); registered = saved; registryMu.Unlock() }()
	_, err := imageScanner(Trivy)
	if err == nil || !strings.Contains(err.Error(), "needs slipway-scan") {
		t.Errorf("imageScanner with none registered = %v", err)
	}
}
