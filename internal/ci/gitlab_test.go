package ci

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func onGitLab(t *testing.T, vars map[string]string, o Options) run {
	t.Helper()
	all := map[string]string{"GITLAB_CI": "true"}
	for k, v := range vars {
		all[k] = v
	}
	r := detect(t, all, o)
	if r.p.Name() != "gitlab" {
		t.Fatalf("Name() = %q, want gitlab", r.p.Name())
	}
	return r
}

func TestDotenvKey(t *testing.T) {
	tests := []struct {
		name, step, output, want string
	}{
		{name: "step and name", step: "build", output: "digest", want: "SLIPWAY_BUILD_DIGEST"},
		{name: "dashes", step: "sign-image", output: "image-ref", want: "SLIPWAY_SIGN_IMAGE_IMAGE_REF"},
		{name: "dots and spaces", step: "build", output: "a.b c", want: "SLIPWAY_BUILD_A_B_C"},
		{name: "no step", step: "", output: "digest", want: "SLIPWAY_DIGEST"},
		{name: "already upper", step: "BUILD", output: "Digest", want: "SLIPWAY_BUILD_DIGEST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DotenvKey(tt.step, tt.output); got != tt.want {
				t.Errorf("DotenvKey(%q, %q) = %q, want %q", tt.step, tt.output, got, tt.want)
			}
		})
	}
}

func TestGitLabSetOutput(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string // besides GITLAB_CI; "$DIR" becomes the temp dir
		before  string            // the dotenv file's content, if any
		file    string            // where the dotenv file is, relative to the temp dir
		outputs []output
		want    string
	}{
		{
			name:    "default file under Dir",
			file:    DotenvFile,
			outputs: []output{{"digest", "sha256:abc"}},
			want:    "SLIPWAY_BUILD_DIGEST=sha256:abc\n",
		},
		{
			name:    "SLIPWAY_DOTENV relative to Dir",
			env:     map[string]string{"SLIPWAY_DOTENV": "out/build.env"},
			file:    "out/build.env",
			outputs: []output{{"digest", "sha256:abc"}},
			want:    "SLIPWAY_BUILD_DIGEST=sha256:abc\n",
		},
		{
			name:    "SLIPWAY_DOTENV absolute",
			env:     map[string]string{"SLIPWAY_DOTENV": "$DIR/abs.env"},
			file:    "abs.env",
			outputs: []output{{"digest", "sha256:abc"}},
			want:    "SLIPWAY_BUILD_DIGEST=sha256:abc\n",
		},
		{
			name:    "several outputs in order",
			file:    DotenvFile,
			outputs: []output{{"digest", "d"}, {"image-ref", "r"}, {"tags", "a,b"}},
			want:    "SLIPWAY_BUILD_DIGEST=d\nSLIPWAY_BUILD_IMAGE_REF=r\nSLIPWAY_BUILD_TAGS=a,b\n",
		},
		{
			name:    "replaces a key in place, keeps the others",
			file:    DotenvFile,
			before:  "OTHER=1\nSLIPWAY_BUILD_DIGEST=old\nSLIPWAY_BUILD_DIGESTS=keep\nLAST=2\n",
			outputs: []output{{"digest", "new"}},
			want:    "OTHER=1\nSLIPWAY_BUILD_DIGEST=new\nSLIPWAY_BUILD_DIGESTS=keep\nLAST=2\n",
		},
		{
			name:    "same output twice",
			file:    DotenvFile,
			outputs: []output{{"digest", "one"}, {"digest", "two"}},
			want:    "SLIPWAY_BUILD_DIGEST=two\n",
		},
		{
			name:    "blank lines dropped, missing final newline added",
			file:    DotenvFile,
			before:  "A=1\n\n\nB=2",
			outputs: []output{{"digest", "d"}},
			want:    "A=1\nB=2\nSLIPWAY_BUILD_DIGEST=d\n",
		},
		{
			name:    "value with equals and spaces",
			file:    DotenvFile,
			outputs: []output{{"args", "a=b c=d"}},
			want:    "SLIPWAY_BUILD_ARGS=a=b c=d\n",
		},
		{
			name:    "empty value",
			file:    DotenvFile,
			outputs: []output{{"digest", ""}},
			want:    "SLIPWAY_BUILD_DIGEST=\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			vars := map[string]string{}
			for k, v := range tt.env {
				vars[k] = strings.ReplaceAll(v, "$DIR", dir)
			}
			path := filepath.Join(dir, tt.file)
			if tt.before != "" {
				if err := os.WriteFile(path, []byte(tt.before), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			r := onGitLab(t, vars, Options{Dir: dir, Step: "build"})
			for _, o := range tt.outputs {
				if err := r.p.SetOutput(o.Name, o.Value); err != nil {
					t.Fatalf("SetOutput(%q, %q): %v", o.Name, o.Value, err)
				}
			}
			if diff := cmp.Diff(tt.want, readFile(t, path)); diff != "" {
				t.Errorf("dotenv file (-want +got):\n%s", diff)
			}
			if r.stdout.Len()+r.stderr.Len() != 0 {
				t.Errorf("printed %q %q, want nothing", r.stdout, r.stderr)
			}
		})
	}
}

func TestGitLabSetOutputRefused(t *testing.T) {
	const before = "KEEP=1\n"
	tests := []struct {
		name, output, value string
		wantErr             string
	}{
		{name: "newline", output: "notes", value: "one\ntwo", wantErr: "cannot span lines"},
		{name: "trailing newline", output: "notes", value: "one\n", wantErr: "cannot span lines"},
		{name: "carriage return", output: "notes", value: "one\rtwo", wantErr: "cannot span lines"},
		{name: "injection attempt", output: "digest", value: "x\nCI_JOB_TOKEN=evil", wantErr: "cannot span lines"},
		{name: "bad name", output: "a/b", value: "x", wantErr: "not a valid variable name"},
		{name: "equals in name", output: "a=b", value: "x", wantErr: "not a valid variable name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, DotenvFile)
			if err := os.WriteFile(path, []byte(before), 0o644); err != nil {
				t.Fatal(err)
			}
			r := onGitLab(t, nil, Options{Dir: dir, Step: "build"})
			err := r.p.SetOutput(tt.output, tt.value)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("SetOutput(%q, %q) = %v, want an error containing %q", tt.output, tt.value, err, tt.wantErr)
			}
			if got := readFile(t, path); got != before {
				t.Errorf("dotenv file changed to %q", got)
			}
		})
	}
}

// GitLab refuses a dotenv report over 5 KB and with it every output, so an
// output that would push the file over is left out, with a warning.
func TestGitLabSetOutputSizeLimit(t *testing.T) {
	tests := []struct {
		name     string
		outputs  []output
		want     []string // keys in the file, in order
		wantWarn []string // keys warned about
	}{
		{
			name:     "one huge value",
			outputs:  []output{{"small", "x"}, {"huge", strings.Repeat("a", 6000)}},
			want:     []string{"SLIPWAY_BUILD_SMALL"},
			wantWarn: []string{"SLIPWAY_BUILD_HUGE"},
		},
		{
			name: "the one that tips it over",
			outputs: []output{
				{"a", strings.Repeat("a", 2400)},
				{"b", strings.Repeat("b", 2400)},
				{"c", strings.Repeat("c", 400)},
				{"d", "fits"},
			},
			want:     []string{"SLIPWAY_BUILD_A", "SLIPWAY_BUILD_B", "SLIPWAY_BUILD_D"},
			wantWarn: []string{"SLIPWAY_BUILD_C"},
		},
		{
			name: "growing a value past the limit keeps the old one",
			outputs: []output{
				{"a", strings.Repeat("a", 4000)},
				{"a", strings.Repeat("a", 5000)},
			},
			want:     []string{"SLIPWAY_BUILD_A"},
			wantWarn: []string{"SLIPWAY_BUILD_A"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			r := onGitLab(t, nil, Options{Dir: dir, Step: "build"})
			for _, o := range tt.outputs {
				if err := r.p.SetOutput(o.Name, o.Value); err != nil {
					t.Fatalf("SetOutput(%q): %v", o.Name, err)
				}
			}
			data := readFile(t, filepath.Join(dir, DotenvFile))
			if len(data) > 5000 {
				t.Errorf("dotenv file is %d bytes, want at most 5000", len(data))
			}
			var keys []string
			for _, l := range strings.Split(strings.TrimSuffix(data, "\n"), "\n") {
				k, _, _ := strings.Cut(l, "=")
				keys = append(keys, k)
			}
			if diff := cmp.Diff(tt.want, keys); diff != "" {
				t.Errorf("keys in the file (-want +got):\n%s", diff)
			}
			var warned []string
			for _, m := range regexp.MustCompile(`warning: output (\S+) left out of slipway.env`).FindAllStringSubmatch(r.stderr.String(), -1) {
				warned = append(warned, m[1])
			}
			if diff := cmp.Diff(tt.wantWarn, warned); diff != "" {
				t.Errorf("warnings (-want +got):\n%s\nstderr: %s", diff, r.stderr)
			}
		})
	}
}

func TestGitLabSetOutputExactlyAtLimit(t *testing.T) {
	dir := t.TempDir()
	r := onGitLab(t, nil, Options{Dir: dir, Step: "build"})
	key := "SLIPWAY_BUILD_V="
	fits := strings.Repeat("v", 5000-len(key)-1) // the line and its newline make 5000
	if err := r.p.SetOutput("v", fits); err != nil {
		t.Fatal(err)
	}
	if got := len(readFile(t, filepath.Join(dir, DotenvFile))); got != 5000 {
		t.Errorf("file is %d bytes, want 5000", got)
	}
	if err := r.p.SetOutput("v", fits+"v"); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dir, DotenvFile)); got != key+fits+"\n" {
		t.Errorf("a value one byte over replaced the one that fit")
	}
}

func TestGitLabSetOutputUnreadable(t *testing.T) {
	dir := t.TempDir()
	// A directory where the file should be cannot be read as one.
	if err := os.Mkdir(filepath.Join(dir, DotenvFile), 0o755); err != nil {
		t.Fatal(err)
	}
	r := onGitLab(t, nil, Options{Dir: dir, Step: "build"})
	if err := r.p.SetOutput("a", "b"); err == nil {
		t.Error("SetOutput over a directory returned no error")
	}
}

var (
	sectionStart = regexp.MustCompile(`^\x1b\[0Ksection_start:(\d+):([A-Za-z0-9_.-]+)\[collapsed=true\]\r\x1b\[0K(.*)$`)
	sectionEnd   = regexp.MustCompile(`^\x1b\[0Ksection_end:(\d+):([A-Za-z0-9_.-]+)\r\x1b\[0K$`)
)

func TestGitLabGroup(t *testing.T) {
	r := onGitLab(t, nil, Options{})
	r.p.Mask("s3cr3t")
	before := time.Now().Unix()
	endOuter := r.p.Group("Build s3cr3t")
	r.p.Stdout().Write([]byte("building\n"))
	endInner := r.p.Group("Push")
	endInner()
	endOuter()
	after := time.Now().Unix()

	lines := strings.Split(strings.TrimSuffix(r.stdout.String(), "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("got %d lines, want 5: %q", len(lines), lines)
	}
	type section struct{ name, title string }
	var starts []section
	var ends []string
	for _, l := range append(lines[:1:1], lines[2:]...) {
		var ts string
		if m := sectionStart.FindStringSubmatch(l); m != nil {
			ts = m[1]
			starts = append(starts, section{m[2], m[3]})
		} else if m := sectionEnd.FindStringSubmatch(l); m != nil {
			ts = m[1]
			ends = append(ends, m[2])
		} else {
			t.Fatalf("line %q is not a section marker", l)
		}
		if n, _ := strconv.ParseInt(ts, 10, 64); n < before || n > after {
			t.Errorf("timestamp %s is outside [%d, %d]", ts, before, after)
		}
	}
	if lines[1] != "building" {
		t.Errorf("line 2 = %q, want building", lines[1])
	}
	if len(starts) != 2 || len(ends) != 2 {
		t.Fatalf("starts %v, ends %v; want two of each", starts, ends)
	}
	if starts[0].title != "Build ***" || starts[1].title != "Push" {
		t.Errorf("titles %q, %q; want %q, %q", starts[0].title, starts[1].title, "Build ***", "Push")
	}
	if starts[0].name == starts[1].name {
		t.Errorf("both sections are named %q", starts[0].name)
	}
	// Nested: the inner section ends first.
	if diff := cmp.Diff([]string{starts[1].name, starts[0].name}, ends); diff != "" {
		t.Errorf("section_end names (-want +got):\n%s", diff)
	}
}

func TestGitLabAnnotate(t *testing.T) {
	r := onGitLab(t, nil, Options{})
	r.p.Annotate(Annotation{Severity: Error, File: "a.go", Line: 3, Col: 1, Title: "T", Message: "::error::m"})
	if got, want := r.stderr.String(), "a.go:3:1: error: T: ::error::m\n"; got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
	if r.stdout.Len() != 0 {
		t.Errorf("stdout = %q, want nothing", r.stdout)
	}
}

// GitLab has no workflow commands, so its streams pass text as it is.
func TestGitLabStreamsUnchanged(t *testing.T) {
	const text = "::error::x\n##[warning]y\n  ::z\n"
	r := onGitLab(t, nil, Options{})
	r.p.Stdout().Write([]byte(text))
	r.p.Stderr().Write([]byte(text))
	if r.stdout.String() != text || r.stderr.String() != text {
		t.Errorf("stdout %q, stderr %q; want both %q", r.stdout, r.stderr, text)
	}
}

func TestGitLabInput(t *testing.T) {
	tests := []struct {
		name   string
		env    map[string]string
		input  string
		want   string
		wantOK bool
	}{
		{name: "set", env: map[string]string{"SLIPWAY_PLATFORMS": "linux/arm64"}, input: "platforms", want: "linux/arm64", wantOK: true},
		{name: "trimmed", env: map[string]string{"SLIPWAY_PLATFORMS": " linux/arm64 "}, input: "platforms", want: "linux/arm64", wantOK: true},
		{name: "dash as underscore", env: map[string]string{"SLIPWAY_FAIL_ON": "high"}, input: "fail-on", want: "high", wantOK: true},
		{name: "unset", input: "platforms"},
		{name: "blank", env: map[string]string{"SLIPWAY_PLATFORMS": "  "}, input: "platforms"},
		{name: "github name ignored", env: map[string]string{"INPUT_PLATFORMS": "x"}, input: "platforms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := onGitLab(t, tt.env, Options{}).p.Input(tt.input)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("Input(%q) = %q, %v; want %q, %v", tt.input, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestGitLabInfo(t *testing.T) {
	base := map[string]string{
		"CI_COMMIT_SHA":     "0123abcd",
		"CI_PROJECT_PATH":   "group/project",
		"CI_JOB_URL":        "https://gitlab.example.com/group/project/-/jobs/7",
		"GITLAB_USER_LOGIN": "alice",
	}
	common := Info{Platform: "gitlab", Commit: "0123abcd", Repository: "group/project", RunURL: "https://gitlab.example.com/group/project/-/jobs/7", Actor: "alice"}
	tests := []struct {
		name string
		env  map[string]string
		want func(*Info)
	}{
		{
			name: "branch",
			env:  map[string]string{"CI_COMMIT_BRANCH": "main", "CI_COMMIT_REF_NAME": "main"},
			want: func(i *Info) { i.Branch, i.Ref = "main", "refs/heads/main" },
		},
		{
			name: "tag",
			env:  map[string]string{"CI_COMMIT_TAG": "v1.0.0", "CI_COMMIT_REF_NAME": "v1.0.0"},
			want: func(i *Info) { i.Tag, i.Ref = "v1.0.0", "refs/tags/v1.0.0" },
		},
		{
			name: "merge request",
			env:  map[string]string{"CI_MERGE_REQUEST_IID": "12", "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature"},
			want: func(i *Info) { i.PR, i.Branch, i.Ref = "12", "feature", "refs/merge-requests/12/head" },
		},
		{
			name: "nothing about the ref",
			env:  map[string]string{},
			want: func(*Info) {},
		},
		{
			// The run URL is recorded (promotion history): never a login.
			name: "job URL with a login",
			env:  map[string]string{"CI_JOB_URL": "https://gitlab-ci-token:glcbt-s3cr3t@gitlab.example.com/group/project/-/jobs/7"},
			want: func(*Info) {},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{}
			for k, v := range base {
				vars[k] = v
			}
			for k, v := range tt.env {
				vars[k] = v
			}
			want := common
			tt.want(&want)
			if diff := cmp.Diff(want, onGitLab(t, vars, Options{}).p.Info()); diff != "" {
				t.Errorf("Info() (-want +got):\n%s", diff)
			}
		})
	}
}
