package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/slipwayci/slipway/internal/ci"
	"github.com/slipwayci/slipway/internal/testkit"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// goldenExt names each format's golden file.
var goldenExt = map[string]string{
	"text":        "txt",
	"json":        "json",
	"sarif":       "sarif",
	"gitlab":      "gitlab.json",
	"gitlab-sast": "gitlab-sast.json",
	"summary":     "md",
	"annotations": "annotations.txt",
}

// fixtures are the canonical streams under testdata: a hand-written one
// with hostile text, and real scans of testdata/apps/vulnerable.
func fixtures(t *testing.T) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	return paths
}

func render(t *testing.T, fixture, format string) []byte {
	t.Helper()
	f, err := os.Open(fixture)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	if err := Replay(f, Formats[format](&buf)); err != nil {
		t.Fatalf("replaying %s as %s: %v", fixture, format, err)
	}
	return buf.Bytes()
}

// TestGolden replays every fixture into every format.
func TestGolden(t *testing.T) {
	if len(goldenExt) != len(Formats) {
		t.Fatalf("goldenExt covers %d formats, Formats has %d", len(goldenExt), len(Formats))
	}
	for _, fixture := range fixtures(t) {
		base := strings.TrimSuffix(filepath.Base(fixture), ".json")
		for _, format := range FormatNames() {
			t.Run(base+"/"+format, func(t *testing.T) {
				got := render(t, fixture, format)
				golden := filepath.Join("testdata", "golden", base+"."+goldenExt[format])
				if *update {
					if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(golden, got, 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test -update)", err)
				}
				if diff := cmp.Diff(string(want), string(got)); diff != "" {
					t.Errorf("%s (-want +got):\n%s", golden, diff)
				}
			})
		}
	}
}

// TestJSONRoundTrip: the JSON format writes the stream it reads, byte for
// byte, so replaying a replay changes nothing.
func TestJSONRoundTrip(t *testing.T) {
	for _, fixture := range fixtures(t) {
		want, err := os.ReadFile(fixture)
		if err != nil {
			t.Fatal(err)
		}
		if got := render(t, fixture, "json"); !bytes.Equal(got, want) {
			t.Errorf("%s: JSON replay differs:\n%s", fixture, cmp.Diff(string(want), string(got)))
		}
	}
}

func TestReplayRefusesForeignInput(t *testing.T) {
	for _, tc := range []struct {
		name, input, want string
	}{
		{"unknown field", `{"scan":{"slipway":"v1","bogus":1}}`, "unknown field"},
		{"empty message", `{"scan":{"slipway":"v1"}}` + "\n{}", "empty message"},
		{"two entries in one message", `{"scan":{"slipway":"v1"},"finding":{"id":"X","kind":"vulnerability","severity":"LOW","scanners":["trivy"]}}`, "message 1: 2 entries; want one of"},
		{"no scan", `{"finding":{"id":"X","kind":"vulnerability","severity":"LOW","scanners":["trivy"]}}`, "no scan message"},
		{"not json", `SARIF?`, "message 1"},
		{"govulncheck json", `{"config":{"protocol_version":"v1.0.0"}}`, "unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Replay(strings.NewReader(tc.input), NewTextHandler(&bytes.Buffer{}))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Replay error = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func compileSchema(t *testing.T, file string) *jsonschema.Schema {
	t.Helper()
	path := filepath.Join(testkit.RepoRoot(t), "testdata", "schemas", file)
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	sch, err := c.Compile(path)
	if err != nil {
		t.Fatalf("compiling %s: %v", file, err)
	}
	return sch
}

func validate(t *testing.T, sch *jsonschema.Schema, doc []byte) {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("output is not JSON: %v", err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Errorf("output does not validate: %v", err)
	}
}

func TestSARIFValidatesAndSuitsGitHub(t *testing.T) {
	sch := compileSchema(t, "sarif-schema-2.1.0.json")
	for _, fixture := range fixtures(t) {
		t.Run(filepath.Base(fixture), func(t *testing.T) {
			out := render(t, fixture, "sarif")
			validate(t, sch, out)

			var log sarifLog
			if err := json.Unmarshal(out, &log); err != nil {
				t.Fatal(err)
			}
			rep := readFixture(t, fixture)
			// One run per tool that ran, each its own category.
			var tools, ids []string
			results := 0
			for _, run := range log.Runs {
				tools = append(tools, run.Tool.Driver.Name)
				ids = append(ids, run.AutomationDetails.ID)
				results += len(run.Results)
				for _, res := range run.Results {
					if res.RuleIndex >= len(run.Tool.Driver.Rules) || run.Tool.Driver.Rules[res.RuleIndex].ID != res.RuleID {
						t.Errorf("%s: result %s points at the wrong rule", run.Tool.Driver.Name, res.RuleID)
					}
					if len(res.Locations) == 0 {
						t.Errorf("%s: result %s has no location; GitHub refuses it", run.Tool.Driver.Name, res.RuleID)
					}
					for _, l := range res.Locations {
						uri := l.PhysicalLocation.ArtifactLocation.URI
						if strings.HasPrefix(uri, "/") || strings.Contains(uri, "://") || strings.Contains(uri, "..") {
							t.Errorf("%s: location %q is not relative to the repository root", res.RuleID, uri)
						}
					}
				}
				for _, rule := range run.Tool.Driver.Rules {
					if sev := findingByID(rep, rule.ID).Severity; rule.Properties.SecuritySeverity == "" && sev != Unknown {
						t.Errorf("rule %s (%s) has no security-severity", rule.ID, sev)
					}
				}
			}
			if want := sortedScanners(rep); !slices.Equal(tools, want) {
				t.Errorf("runs = %v, want one per scanner %v", tools, want)
			}
			if uniq := slices.Compact(slices.Sorted(slices.Values(ids))); len(uniq) != len(ids) {
				t.Errorf("automationDetails ids repeat: %v", ids)
			}
			if results != len(rep.Findings) {
				t.Errorf("SARIF has %d results for %d findings", results, len(rep.Findings))
			}
		})
	}
}

func TestGitLabContainerScanningValidates(t *testing.T) {
	sch := compileSchema(t, "gitlab-container-scanning-report-format-15.2.4.json")
	for _, fixture := range fixtures(t) {
		t.Run(filepath.Base(fixture), func(t *testing.T) {
			out := render(t, fixture, "gitlab")
			validate(t, sch, out)
			var rep glReport
			if err := json.Unmarshal(out, &rep); err != nil {
				t.Fatal(err)
			}
			want := 0
			for _, f := range readFixture(t, fixture).Findings {
				if f.InImage() && !f.Waived() {
					want++
				}
			}
			if len(rep.Vulnerabilities) != want {
				t.Errorf("%d vulnerabilities, want the %d unwaived image findings", len(rep.Vulnerabilities), want)
			}
		})
	}
}

// TestGitLabSAST checks the sast report against the fields GitLab's
// sast-report-format 15.2.4 requires. That schema is not vendored (no
// offline copy was available), so this test holds its required fields.
func TestGitLabSAST(t *testing.T) {
	for _, fixture := range fixtures(t) {
		t.Run(filepath.Base(fixture), func(t *testing.T) {
			var rep map[string]any
			if err := json.Unmarshal(render(t, fixture, "gitlab-sast"), &rep); err != nil {
				t.Fatal(err)
			}
			scan := rep["scan"].(map[string]any)
			if rep["version"] != "15.2.4" || scan["type"] != "sast" || scan["status"] != "success" {
				t.Errorf("header = version %v, type %v, status %v", rep["version"], scan["type"], scan["status"])
			}
			for _, k := range []string{"analyzer", "scanner", "start_time", "end_time"} {
				if scan[k] == nil {
					t.Errorf("scan lacks %s", k)
				}
			}
			vulns := rep["vulnerabilities"].([]any)
			want := 0
			for _, f := range readFixture(t, fixture).Findings {
				if !f.InImage() && !f.Waived() {
					want++
				}
			}
			if len(vulns) != want {
				t.Errorf("%d vulnerabilities, want the %d unwaived source-only findings", len(vulns), want)
			}
			for _, v := range vulns {
				v := v.(map[string]any)
				loc, _ := v["location"].(map[string]any)
				ids, _ := v["identifiers"].([]any)
				if v["id"] == "" || len(ids) == 0 || loc["file"] == nil || v["severity"] == nil {
					t.Errorf("vulnerability lacks id, identifiers, severity or location.file: %v", v)
				}
			}
		})
	}
}

func readFixture(t *testing.T, path string) *Report {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := Read(f)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func findingByID(r *Report, id string) *Finding {
	for _, f := range r.Findings {
		if f.ID == id {
			return f
		}
	}
	return &Finding{}
}

// TestUntrustedTextStaysText: a scanner's title cannot start a line of its
// own in any line-based format, nor carry terminal escapes or Markdown.
func TestUntrustedTextStaysText(t *testing.T) {
	fixture := filepath.Join("testdata", "sample.json")
	for _, format := range []string{"text", "summary", "annotations"} {
		out := string(render(t, fixture, format))
		for _, line := range strings.Split(out, "\n") {
			trimmed := strings.TrimLeft(line, " \t>|")
			if strings.HasPrefix(trimmed, "::") || strings.HasPrefix(trimmed, "##[") {
				t.Errorf("%s: line reads as a workflow command: %q", format, line)
			}
		}
		if strings.ContainsAny(out, "\x1b\r") {
			t.Errorf("%s: output carries control characters", format)
		}
		if format == "summary" && (strings.Contains(out, "<img") || strings.Contains(out, "](https://evil")) {
			t.Errorf("summary carries markup from a title:\n%s", out)
		}
	}
	// Through the GitHub platform, the annotation's message is escaped so
	// it cannot end the command early.
	var stdout bytes.Buffer
	p := ci.Detect(ci.Options{Getenv: func(k string) string {
		return map[string]string{"GITHUB_ACTIONS": "true"}[k]
	}, Stdout: &stdout})
	rep := readFixture(t, fixture)
	for _, a := range Annotations(rep) {
		p.Annotate(a)
	}
	p.Annotate(ci.Annotation{Severity: ci.Error, File: "x.go", Line: 1, Title: findingByID(rep, "CVE-2026-0001").Title, Message: findingByID(rep, "CVE-2026-0001").Description})
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		if !strings.HasPrefix(line, "::error ") && !strings.HasPrefix(line, "::warning ") && !strings.HasPrefix(line, "::notice ") {
			t.Errorf("annotation output has a line that is not one annotation: %q", line)
		}
	}
}
