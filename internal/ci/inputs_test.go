package ci

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// flags are the values ApplyInputs fills in.
type flags struct {
	Platforms string
	FailOn    string
	Retries   int
	Push      bool
}

func newFlagSet(f *flags) *flag.FlagSet {
	fs := flag.NewFlagSet("step", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&f.Platforms, "platforms", "linux/amd64", "")
	fs.StringVar(&f.FailOn, "fail-on", "critical", "")
	fs.IntVar(&f.Retries, "retries", 3, "")
	fs.BoolVar(&f.Push, "push", false, "")
	return fs
}

func TestApplyInputs(t *testing.T) {
	defaults := flags{Platforms: "linux/amd64", FailOn: "critical", Retries: 3}
	with := func(f func(*flags)) flags {
		v := defaults
		f(&v)
		return v
	}
	tests := []struct {
		name     string
		platform string
		env      map[string]string
		args     []string
		want     flags
	}{
		{
			name:     "github inputs",
			platform: "github",
			env:      map[string]string{"INPUT_PLATFORMS": "linux/arm64", "INPUT_RETRIES": "5", "INPUT_PUSH": "true"},
			want:     with(func(f *flags) { f.Platforms, f.Retries, f.Push = "linux/arm64", 5, true }),
		},
		{
			name:     "github dashed input",
			platform: "github",
			env:      map[string]string{"INPUT_FAIL-ON": "high"},
			want:     with(func(f *flags) { f.FailOn = "high" }),
		},
		{
			name:     "github dash as underscore",
			platform: "github",
			env:      map[string]string{"INPUT_FAIL_ON": "medium"},
			want:     with(func(f *flags) { f.FailOn = "medium" }),
		},
		{
			name:     "command line wins",
			platform: "github",
			env:      map[string]string{"INPUT_PLATFORMS": "linux/arm64", "INPUT_FAIL-ON": "high", "INPUT_PUSH": "true"},
			args:     []string{"-platforms=linux/s390x", "-push=false"},
			want:     with(func(f *flags) { f.Platforms, f.FailOn = "linux/s390x", "high" }),
		},
		{
			name:     "command line equal to the default still wins",
			platform: "github",
			env:      map[string]string{"INPUT_PLATFORMS": "linux/arm64"},
			args:     []string{"-platforms=linux/amd64"},
			want:     defaults,
		},
		{
			name:     "empty and blank inputs ignored",
			platform: "github",
			env:      map[string]string{"INPUT_PLATFORMS": "", "INPUT_FAIL-ON": "  \t\n", "INPUT_RETRIES": " "},
			want:     defaults,
		},
		{
			name:     "values trimmed",
			platform: "github",
			env:      map[string]string{"INPUT_PLATFORMS": "  linux/arm64\n", "INPUT_RETRIES": " 7 "},
			want:     with(func(f *flags) { f.Platforms, f.Retries = "linux/arm64", 7 }),
		},
		{
			name:     "github ignores gitlab variables",
			platform: "github",
			env:      map[string]string{"SLIPWAY_PLATFORMS": "linux/arm64"},
			want:     defaults,
		},
		{
			name:     "gitlab variables",
			platform: "gitlab",
			env:      map[string]string{"SLIPWAY_PLATFORMS": "linux/arm64", "SLIPWAY_FAIL_ON": "low"},
			want:     with(func(f *flags) { f.Platforms, f.FailOn = "linux/arm64", "low" }),
		},
		{
			name:     "gitlab command line wins",
			platform: "gitlab",
			env:      map[string]string{"SLIPWAY_PLATFORMS": "linux/arm64"},
			args:     []string{"-platforms", "linux/386"},
			want:     with(func(f *flags) { f.Platforms = "linux/386" }),
		},
		{
			name:     "gitlab ignores github inputs",
			platform: "gitlab",
			env:      map[string]string{"INPUT_PLATFORMS": "linux/arm64"},
			want:     defaults,
		},
		{
			name:     "local reads nothing",
			platform: "local",
			env:      map[string]string{"INPUT_PLATFORMS": "a", "SLIPWAY_PLATFORMS": "b", "PLATFORMS": "c"},
			want:     defaults,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{}
			for k, v := range platformEnv[tt.platform] {
				vars[k] = v
			}
			for k, v := range tt.env {
				vars[k] = v
			}
			var got flags
			fs := newFlagSet(&got)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if err := ApplyInputs(fs, Detect(Options{Getenv: env(vars)})); err != nil {
				t.Fatalf("ApplyInputs: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("flags (-want +got):\n%s", diff)
			}
		})
	}
}

func TestApplyInputsBadValue(t *testing.T) {
	tests := []struct {
		name     string
		platform string
		env      map[string]string
		want     []string // in the error
	}{
		{name: "github int", platform: "github", env: map[string]string{"INPUT_RETRIES": "x"}, want: []string{"retries", `"x"`}},
		{name: "github bool", platform: "github", env: map[string]string{"INPUT_PUSH": "maybe"}, want: []string{"push", `"maybe"`}},
		{name: "gitlab int", platform: "gitlab", env: map[string]string{"SLIPWAY_RETRIES": "1.5"}, want: []string{"retries", `"1.5"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{}
			for k, v := range platformEnv[tt.platform] {
				vars[k] = v
			}
			for k, v := range tt.env {
				vars[k] = v
			}
			var f flags
			fs := newFlagSet(&f)
			if err := fs.Parse(nil); err != nil {
				t.Fatal(err)
			}
			err := ApplyInputs(fs, Detect(Options{Getenv: env(vars)}))
			if err == nil {
				t.Fatal("ApplyInputs returned no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// A bad value on the command line's behalf is never read: the command line
// set that flag.
func TestApplyInputsBadValueOverridden(t *testing.T) {
	vars := map[string]string{"GITHUB_ACTIONS": "true", "INPUT_RETRIES": "x"}
	var f flags
	fs := newFlagSet(&f)
	if err := fs.Parse([]string{"-retries=9"}); err != nil {
		t.Fatal(err)
	}
	if err := ApplyInputs(fs, Detect(Options{Getenv: env(vars)})); err != nil {
		t.Fatalf("ApplyInputs: %v", err)
	}
	if f.Retries != 9 {
		t.Errorf("retries = %d, want 9", f.Retries)
	}
}

// version and help are about slipway itself: SLIPWAY_VERSION pinning the
// slipway release on GitLab must not turn into --version.
func TestApplyInputsSkipsMetaFlags(t *testing.T) {
	for _, platform := range []string{"github", "gitlab"} {
		t.Run(platform, func(t *testing.T) {
			vars := map[string]string{
				"INPUT_VERSION": "true", "INPUT_HELP": "true",
				"SLIPWAY_VERSION": "v1.2.3", "SLIPWAY_HELP": "true",
				"INPUT_PLATFORMS": "linux/arm64", "SLIPWAY_PLATFORMS": "linux/arm64",
			}
			for k, v := range platformEnv[platform] {
				vars[k] = v
			}
			fs := flag.NewFlagSet("step", flag.ContinueOnError)
			version := fs.Bool("version", false, "")
			help := fs.String("help", "", "")
			platforms := fs.String("platforms", "", "")
			if err := fs.Parse(nil); err != nil {
				t.Fatal(err)
			}
			if err := ApplyInputs(fs, Detect(Options{Getenv: env(vars)})); err != nil {
				t.Fatalf("ApplyInputs: %v", err)
			}
			if *version || *help != "" {
				t.Errorf("version = %v, help = %q; want both left unset", *version, *help)
			}
			if *platforms != "linux/arm64" {
				t.Errorf("platforms = %q, want the input applied", *platforms)
			}
		})
	}
}

// Start names the summary file only once inputs are applied, since the
// name usually depends on one (--out).
func TestStart(t *testing.T) {
	for _, platform := range []string{"gitlab", "local"} {
		t.Run(platform, func(t *testing.T) {
			dir := t.TempDir()
			vars := map[string]string{"SLIPWAY_OUT": "from-input"}
			for k, v := range platformEnv[platform] {
				vars[k] = v
			}
			fs := flag.NewFlagSet("step", flag.ContinueOnError)
			out := fs.String("out", "dist", "")
			if err := fs.Parse(nil); err != nil {
				t.Fatal(err)
			}
			var stdout strings.Builder
			p, err := Start(fs, Options{Getenv: env(vars), Stdout: &stdout, Dir: dir},
				func() string { return filepath.Join(*out, "summary.md") })
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			if p.Name() != platform {
				t.Errorf("Name() = %q, want %q", p.Name(), platform)
			}
			if err := p.WriteSummary(&Summary{Title: "T"}); err != nil {
				t.Fatalf("WriteSummary: %v", err)
			}
			want := "dist"
			if platform == "gitlab" {
				want = "from-input"
			}
			if got := readFile(t, filepath.Join(dir, want, "summary.md")); got != "### T\n\n" {
				t.Errorf("summary = %q", got)
			}
		})
	}
}

// A bad input is an error that quotes it, and the platform comes with it,
// for the error to go out through its stream: on GitHub, a value that
// reads as a workflow command is defused there.
func TestStartBadInput(t *testing.T) {
	fs := flag.NewFlagSet("step", flag.ContinueOnError)
	fs.Int("retries", 1, "")
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	called := false
	var stderr bytes.Buffer
	p, err := Start(fs, Options{Getenv: env(map[string]string{"GITHUB_ACTIONS": "true", "INPUT_RETRIES": "##[error]x"}), Stderr: &stderr},
		func() string { called = true; return "" })
	if err == nil || !strings.Contains(err.Error(), "retries") || p == nil {
		t.Fatalf("Start = %v, %v; want the platform and an error naming retries", p, err)
	}
	if called {
		t.Error("summaryFile was called although the inputs were bad")
	}
	fmt.Fprintln(p.Stderr(), err)
	if cmds := commands(stderr.String()); len(cmds) > 0 {
		t.Errorf("the error printed through the platform issues %+v", cmds)
	}
}
