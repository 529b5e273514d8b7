package ci

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// env returns a Getenv over m.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// run is a platform under test with the streams it writes to.
type run struct {
	p              Platform
	stdout, stderr *bytes.Buffer
}

func detect(t *testing.T, vars map[string]string, o Options) run {
	t.Helper()
	r := run{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	o.Getenv, o.Stdout, o.Stderr = env(vars), r.stdout, r.stderr
	r.p = Detect(o)
	return r
}

// platformEnv is the environment that selects each platform.
var platformEnv = map[string]map[string]string{
	"github": {"GITHUB_ACTIONS": "true"},
	"gitlab": {"GITLAB_CI": "true"},
	"local":  {},
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{name: "github", env: map[string]string{"GITHUB_ACTIONS": "true"}, want: "github"},
		{name: "gitlab", env: map[string]string{"GITLAB_CI": "true"}, want: "gitlab"},
		{name: "nothing set", env: map[string]string{}, want: "local"},
		{name: "github wins over gitlab", env: map[string]string{"GITHUB_ACTIONS": "true", "GITLAB_CI": "true"}, want: "github"},
		{name: "github not true", env: map[string]string{"GITHUB_ACTIONS": "false"}, want: "local"},
		{name: "gitlab not exactly true", env: map[string]string{"GITLAB_CI": "1"}, want: "local"},
		{name: "only CI", env: map[string]string{"CI": "true"}, want: "local"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Detect(Options{Getenv: env(tt.env)})
			if got := p.Name(); got != tt.want {
				t.Errorf("Detect().Name() = %q, want %q", got, tt.want)
			}
			if got := p.Info().Platform; got != tt.want {
				t.Errorf("Info().Platform = %q, want %q", got, tt.want)
			}
		})
	}
}

// Detect with zero Options must give a usable platform, not one that
// panics on a nil Getenv or writer.
func TestDetectZeroOptions(t *testing.T) {
	p := Detect(Options{})
	if p.Name() != "local" {
		t.Fatalf("Name() = %q, want local", p.Name())
	}
	if _, err := p.Stdout().Write([]byte("x\n")); err != nil {
		t.Errorf("Stdout().Write: %v", err)
	}
	p.Annotate(Annotation{Severity: Error, Message: "m"})
	p.Group("g")()
	if err := p.SetOutput("a", "b"); err != nil {
		t.Errorf("SetOutput: %v", err)
	}
	if err := p.WriteSummary(&Summary{Title: "t"}); err != nil {
		t.Errorf("WriteSummary: %v", err)
	}
}

func TestAnnotationString(t *testing.T) {
	tests := []struct {
		name string
		a    Annotation
		want string
	}{
		{name: "message only", a: Annotation{Severity: Warning, Message: "m"}, want: "warning: m"},
		{name: "file", a: Annotation{Severity: Error, File: "a.go", Message: "m"}, want: "a.go: error: m"},
		{name: "file and line", a: Annotation{Severity: Error, File: "a.go", Line: 3, Message: "m"}, want: "a.go:3: error: m"},
		{name: "file line col title", a: Annotation{Severity: Notice, File: "a.go", Line: 3, Col: 7, Title: "T", Message: "m"}, want: "a.go:3:7: notice: T: m"},
		{name: "col without line is dropped", a: Annotation{Severity: Error, File: "a.go", Col: 7, Message: "m"}, want: "a.go: error: m"},
		{name: "line without file is dropped", a: Annotation{Severity: Error, Line: 3, Message: "m"}, want: "error: m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

// A masked secret must not reach any stream or summary file on any
// platform, and only GitHub may print ::add-mask::.
func TestMaskEverywhere(t *testing.T) {
	tests := []struct {
		name     string
		platform string
		secret   string
	}{
		{name: "github", platform: "github", secret: "hunter2-s3cr3t"},
		{name: "github multi-line", platform: "github", secret: "first-line-x\nsecond-line-y"},
		{name: "gitlab", platform: "gitlab", secret: "hunter2-s3cr3t"},
		{name: "gitlab multi-line", platform: "gitlab", secret: "first-line-x\nsecond-line-y"},
		{name: "local", platform: "local", secret: "hunter2-s3cr3t"},
		{name: "local multi-line", platform: "local", secret: "first-line-x\nsecond-line-y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			vars := map[string]string{}
			for k, v := range platformEnv[tt.platform] {
				vars[k] = v
			}
			vars["GITHUB_STEP_SUMMARY"] = filepath.Join(dir, "step-summary.md")
			r := detect(t, vars, Options{Dir: dir, SummaryFile: "summary.md"})
			r.p.Mask(tt.secret)

			s := tt.secret
			r.p.Stdout().Write([]byte("out " + s + " end\n"))
			r.p.Stderr().Write([]byte("err " + s + " end\n"))
			r.p.Annotate(Annotation{Severity: Error, File: "f.go", Line: 1, Title: "title " + s, Message: "message " + s})
			r.p.Group("group " + s)()
			sum := &Summary{
				Title: "title " + s,
				Lines: []string{"line " + s},
				Table: Table{Header: []string{"h"}, Rows: [][]string{{"cell " + s}}},
				Notes: []string{"note " + s},
			}
			if err := r.p.WriteSummary(sum); err != nil {
				t.Fatalf("WriteSummary: %v", err)
			}
			if tt.platform == "local" {
				if err := r.p.SetOutput("token", s); err != nil {
					t.Fatalf("SetOutput: %v", err)
				}
			}

			summaryPath := filepath.Join(dir, "summary.md")
			if tt.platform == "github" {
				summaryPath = vars["GITHUB_STEP_SUMMARY"]
			}
			summary := readFile(t, summaryPath)
			if !strings.Contains(summary, "***") {
				t.Errorf("summary file shows no mask:\n%s", summary)
			}

			stdout := r.stdout.String()
			if tt.platform == "github" {
				// The runner consumes ::add-mask:: lines; they are the only
				// place the secret may appear, one line of it per command.
				var masks []string
				var kept []string
				for _, l := range strings.Split(stdout, "\n") {
					if d, ok := strings.CutPrefix(l, "::add-mask::"); ok {
						masks = append(masks, d)
						continue
					}
					kept = append(kept, l)
				}
				want := strings.Split(s, "\n")
				if diff := cmp.Diff(want, masks); diff != "" {
					t.Errorf("::add-mask:: data (-want +got):\n%s", diff)
				}
				stdout = strings.Join(kept, "\n")
			} else {
				for name, out := range map[string]string{"stdout": stdout, "stderr": r.stderr.String()} {
					if strings.Contains(out, "add-mask") {
						t.Errorf("%s on %s prints a workflow command:\n%s", name, tt.platform, out)
					}
				}
			}
			for name, out := range map[string]string{"stdout": stdout, "stderr": r.stderr.String(), "summary": summary} {
				if strings.Contains(out, s) {
					t.Errorf("%s shows the secret:\n%s", name, out)
				}
			}
			if !strings.Contains(stdout, "out *** end") || !strings.Contains(r.stderr.String(), "err *** end") {
				t.Errorf("streams lost the text around the secret:\nstdout:\n%s\nstderr:\n%s", stdout, r.stderr.String())
			}
		})
	}
}

func TestMaskBlankIsIgnored(t *testing.T) {
	for _, platform := range Names() {
		t.Run(platform, func(t *testing.T) {
			r := detect(t, platformEnv[platform], Options{})
			r.p.Mask("")
			r.p.Mask("  \n\t ")
			const text = "a  b\n\tc\n"
			r.p.Stdout().Write([]byte(text))
			if got := r.stdout.String(); got != text {
				t.Errorf("stdout = %q, want %q (no command, nothing masked)", got, text)
			}
		})
	}
}

// A secret that contains another must be masked whole, whatever the order
// they were registered in.
func TestMaskLongestFirst(t *testing.T) {
	tests := []struct {
		name    string
		secrets []string
	}{
		{name: "short first", secrets: []string{"abc", "abcdef", "abcdefghi"}},
		{name: "long first", secrets: []string{"abcdefghi", "abcdef", "abc"}},
		{name: "mixed with duplicate", secrets: []string{"abcdef", "abc", "abcdefghi", "abc"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := detect(t, nil, Options{})
			for _, s := range tt.secrets {
				r.p.Mask(s)
			}
			r.p.Stdout().Write([]byte("abcdefghi abcdef abc ab\n"))
			if got, want := r.stdout.String(), "*** *** *** ab\n"; got != want {
				t.Errorf("stdout = %q, want %q", got, want)
			}
		})
	}
}

// Write reports the caller's byte count, not the masked one, so io.Copy and
// fmt do not see a short write.
func TestStreamWriteCount(t *testing.T) {
	for _, platform := range Names() {
		t.Run(platform, func(t *testing.T) {
			r := detect(t, platformEnv[platform], Options{})
			r.p.Mask("a-long-secret-value")
			p := []byte("::x a-long-secret-value\n")
			n, err := r.p.Stdout().Write(p)
			if err != nil || n != len(p) {
				t.Errorf("Write = %d, %v; want %d, nil", n, err, len(p))
			}
		})
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, os.ErrClosed }

func TestStreamWriteError(t *testing.T) {
	for _, platform := range Names() {
		t.Run(platform, func(t *testing.T) {
			p := Detect(Options{Getenv: env(platformEnv[platform]), Stdout: failWriter{}})
			if _, err := p.Stdout().Write([]byte("x\n")); err == nil {
				t.Error("Write to a failing writer returned no error")
			}
		})
	}
}
