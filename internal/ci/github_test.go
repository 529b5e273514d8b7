package ci

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func onGitHub(t *testing.T, vars map[string]string) run {
	t.Helper()
	all := map[string]string{"GITHUB_ACTIONS": "true"}
	for k, v := range vars {
		all[k] = v
	}
	r := detect(t, all, Options{})
	if r.p.Name() != "github" {
		t.Fatalf("Name() = %q, want github", r.p.Name())
	}
	return r
}

func TestGitHubSetOutput(t *testing.T) {
	tests := []struct {
		name  string
		value string
	}{
		{name: "plain", value: "sha256:0123abcd"},
		{name: "empty", value: ""},
		{name: "multi-line", value: "line one\nline two\n\nline four"},
		{name: "trailing newline", value: "a\n"},
		{name: "leading newline", value: "\na"},
		{name: "only newlines", value: "\n\n"},
		{name: "equals sign", value: "k=v"},
		{name: "library delimiter", value: "x\nghadelimiter_abc\ninjected=1"},
		{name: "EOF line", value: "x\nEOF\ninjected=1\nEOF"},
		{name: "heredoc header", value: "evil<<X\ninjected\nX"},
		{name: "closes and opens", value: "x\nEOF\ninjected<<EOF\npwned\nEOF\n"},
		{name: "workflow command", value: "::set-output name=injected::1\n##[set-output name=injected]1"},
		{name: "carriage returns", value: "a\r\nb\rc"},
		{name: "unicode", value: "héllo — wörld ✓"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "output")
			r := onGitHub(t, map[string]string{"GITHUB_OUTPUT": path})
			if err := r.p.SetOutput("result", tt.value); err != nil {
				t.Fatalf("SetOutput: %v", err)
			}
			got, err := parseOutputFile(readFile(t, path))
			if err != nil {
				t.Fatalf("runner cannot parse the output file: %v", err)
			}
			if diff := cmp.Diff([]output{{"result", tt.value}}, got); diff != "" {
				t.Errorf("outputs (-want +got):\n%s", diff)
			}
			if r.stdout.Len() != 0 {
				t.Errorf("stdout = %q, want nothing when GITHUB_OUTPUT is set", r.stdout)
			}
		})
	}
}

// Outputs accumulate in one file, each under its own delimiter, and a
// value cannot end another's block: it cannot guess the delimiter.
func TestGitHubSetOutputAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "output")
	if err := os.WriteFile(path, []byte("earlier=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := onGitHub(t, map[string]string{"GITHUB_OUTPUT": path})
	want := []output{{"earlier", "1"}}
	for _, o := range []output{{"a", "x\nghadelimiter_0\ny"}, {"b", "EOF"}, {"a", "second"}} {
		if err := r.p.SetOutput(o.Name, o.Value); err != nil {
			t.Fatalf("SetOutput(%q): %v", o.Name, err)
		}
		want = append(want, o)
	}
	text := readFile(t, path)
	got, err := parseOutputFile(text)
	if err != nil {
		t.Fatalf("runner cannot parse the output file: %v\n%s", err, text)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outputs (-want +got):\n%s", diff)
	}

	headers := regexp.MustCompile(`(?m)^[ab]<<(.*)$`).FindAllStringSubmatch(text, -1)
	if len(headers) != 3 {
		t.Fatalf("found %d heredoc headers, want 3:\n%s", len(headers), text)
	}
	seen := map[string]bool{}
	for _, h := range headers {
		d := h[1]
		if !regexp.MustCompile(`^ghadelimiter_[0-9a-f]{32}$`).MatchString(d) {
			t.Errorf("delimiter %q is not ghadelimiter_ and 128 random bits", d)
		}
		if seen[d] {
			t.Errorf("delimiter %q used twice", d)
		}
		seen[d] = true
	}
}

func TestGitHubSetOutputWithoutFile(t *testing.T) {
	r := onGitHub(t, nil)
	if err := r.p.SetOutput("digest", "sha256:abc"); err != nil {
		t.Fatalf("SetOutput: %v", err)
	}
	if err := r.p.SetOutput("evil", "x\n::set-output name=injected::1"); err != nil {
		t.Fatalf("SetOutput: %v", err)
	}
	out := r.stdout.String()
	if !strings.HasPrefix(out, "digest=sha256:abc\n") {
		t.Errorf("stdout = %q, want it to start with the value", out)
	}
	if cmds := commands(out); len(cmds) != 0 {
		t.Errorf("printed value reads as workflow commands %+v:\n%q", cmds, out)
	}
}

func TestGitHubSetOutputUnwritable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing-dir", "output")
	r := onGitHub(t, map[string]string{"GITHUB_OUTPUT": path})
	if err := r.p.SetOutput("a", "b"); err == nil {
		t.Error("SetOutput into a missing directory returned no error")
	}
}

func TestGitHubDelimiterAvoidsValue(t *testing.T) {
	for range 100 {
		d, err := delimiter("x")
		if err != nil {
			t.Fatal(err)
		}
		value := "a\n" + d + "\nb"
		d2, err := delimiter(value)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(value, d2) {
			t.Fatalf("delimiter %q occurs in the value", d2)
		}
	}
}

func TestGitHubDefusesStreams(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{name: "command", in: "::error::pwned\n"},
		{name: "set-output", in: "::set-output name=x::y\n"},
		{name: "add-mask", in: "::add-mask::x\n"},
		{name: "stop-commands", in: "::stop-commands::token\n"},
		{name: "no newline", in: "::warning::x"},
		{name: "leading spaces", in: "    ::error::x\n"},
		{name: "leading tab", in: "\t::error::x\n"},
		{name: "leading vertical tab and form feed", in: "\v\f::error::x\n"},
		{name: "leading unicode spaces", in: "\u00a0\u2003\u3000::error::x\n"},
		{name: "second line", in: "fine\n::error::x\nfine\n"},
		{name: "after carriage return", in: "50%\r::error::x\n"},
		{name: "after CRLF", in: "a\r\n::error::x\r\n"},
		{name: "old syntax", in: "##[error]x\n"},
		{name: "old syntax indented", in: "  ##[warning]x\n"},
		{name: "old syntax mid-line", in: "title: ##[error]x\n"},
		{name: "old syntax after hashes", in: "####[error]x\n"},
		{name: "many", in: "::a::1\n  ::b::2\n##[c]3\nx ##[d]4\r::e::5\n"},
		{name: "colon run", in: ":::::error::x\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, stderr := range []bool{false, true} {
				whole := throughGitHub(t, stderr, tt.in)
				if cmds := commands(whole); len(cmds) != 0 {
					t.Errorf("stderr=%v: %q reads as %+v", stderr, whole, cmds)
				}
				// Defusing only adds breakers.
				if got := removeBreakers(whole); got != tt.in {
					t.Errorf("stderr=%v: text changed: got %q, want %q", stderr, got, tt.in)
				}
			}
			// However the text is split across writes, the result is the same.
			want := throughGitHub(t, false, tt.in)
			for _, chunks := range splits(tt.in) {
				if got := throughGitHub(t, false, chunks...); got != want {
					t.Errorf("writes %q gave %q, want %q", chunks, got, want)
				}
			}
		})
	}
}

func TestGitHubStreamsKeepOrdinaryText(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{name: "plain", in: "hello, world\n"},
		{name: "empty lines", in: "\n\n\n"},
		{name: "colons mid-line", in: "key: value :: more ::x::\n"},
		{name: "single leading colon", in: ":not a command\n  : nor this\n"},
		{name: "hashes", in: "# heading\n## sub\n#[x]\n# #[y]\n#\n##\n"},
		{name: "url", in: "see https://example.com/#[a]\n"},
		{name: "image ref", in: "ghcr.io/o/r@sha256:0123\n"},
		{name: "no trailing newline", in: "partial"},
		{name: "unicode", in: "héllo — wörld ✓ 日本語\n\u00a0indented\n"},
		{name: "invalid utf-8", in: "\xff\xfe::x\n\xc2::y\n"},
		{name: "carriage returns", in: "10%\r20%\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, chunks := range append(splits(tt.in), []string{tt.in}) {
				if got := throughGitHub(t, false, chunks...); got != tt.in {
					t.Errorf("writes %q gave %q, want it unchanged", chunks, got)
				}
			}
		})
	}
}

// A step that leaves a line unfinished must not make the platform's own
// command unreadable, nor make the next line look to the stream like the
// middle of one.
func TestGitHubCommandAfterPartialLine(t *testing.T) {
	tests := []struct {
		name   string
		before string
		cmd    func(Platform)
		want   command
	}{
		{name: "annotate", before: "progress ", cmd: func(p Platform) { p.Annotate(Annotation{Severity: Error, Message: "m"}) }, want: command{Name: "error", Props: map[string]string{}, Data: "m"}},
		{name: "group", before: ":", cmd: func(p Platform) { p.Group("g") }, want: command{Name: "group", Props: map[string]string{}, Data: "g"}},
		{name: "mask", before: "##", cmd: func(p Platform) { p.Mask("s3cr3t") }, want: command{Name: "add-mask", Props: map[string]string{}, Data: "s3cr3t"}},
		{name: "after blanks", before: "  ", cmd: func(p Platform) { p.Group("g") }, want: command{Name: "group", Props: map[string]string{}, Data: "g"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := onGitHub(t, nil)
			r.p.Stdout().Write([]byte(tt.before))
			tt.cmd(r.p)
			r.p.Stdout().Write([]byte("::warning::injected\n"))
			r.p.Stdout().Write([]byte("[x]\n"))
			if diff := cmp.Diff([]command{tt.want}, commands(r.stdout.String())); diff != "" {
				t.Errorf("commands in %q (-want +got):\n%s", r.stdout, diff)
			}
		})
	}
}

func TestGitHubAnnotate(t *testing.T) {
	tests := []struct {
		name string
		a    Annotation
		want command
	}{
		{
			name: "message only",
			a:    Annotation{Severity: Warning, Message: "careful"},
			want: command{Name: "warning", Props: map[string]string{}, Data: "careful"},
		},
		{
			name: "all properties",
			a:    Annotation{Severity: Error, File: "dir/a.go", Line: 12, Col: 3, Title: "Vuln", Message: "bad"},
			want: command{Name: "error", Props: map[string]string{"file": "dir/a.go", "line": "12", "col": "3", "title": "Vuln"}, Data: "bad"},
		},
		{
			name: "hostile message",
			a:    Annotation{Severity: Notice, Message: "one\ntwo ::error::x\r\n::add-mask::y\n##[error]z %0A 100%"},
			want: command{Name: "notice", Props: map[string]string{}, Data: "one\ntwo ::error::x\r\n::add-mask::y\n##[error]z %0A 100%"},
		},
		{
			name: "hostile properties",
			a:    Annotation{Severity: Error, File: "a,line=99:b.go", Line: 1, Title: "t: x,file=evil.go\n::error::y %2C"},
			want: command{Name: "error", Props: map[string]string{"file": "a,line=99:b.go", "line": "1", "title": "t: x,file=evil.go\n::error::y %2C"}},
		},
		{
			name: "zero line and col left out",
			a:    Annotation{Severity: Error, File: "a.go", Message: "m"},
			want: command{Name: "error", Props: map[string]string{"file": "a.go"}, Data: "m"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := onGitHub(t, nil)
			r.p.Annotate(tt.a)
			out := r.stdout.String()
			if lines := logLines(out); len(lines) != 1 {
				t.Fatalf("annotation is %d lines, want 1: %q", len(lines), out)
			}
			if diff := cmp.Diff([]command{tt.want}, commands(out)); diff != "" {
				t.Errorf("commands in %q (-want +got):\n%s", out, diff)
			}
		})
	}
}

func TestGitHubMask(t *testing.T) {
	tests := []struct {
		name   string
		secret string
		want   []string
	}{
		{name: "one line", secret: "s3cr3t", want: []string{"s3cr3t"}},
		{name: "multi-line", secret: "-----BEGIN KEY-----\nabc\n\ndef\n-----END KEY-----\n", want: []string{"-----BEGIN KEY-----", "abc", "def", "-----END KEY-----"}},
		{name: "CRLF and indent", secret: "  one\r\n  two  ", want: []string{"one", "two"}},
		{name: "percent and colons", secret: "a::b%0Ac", want: []string{"a::b%0Ac"}},
		{name: "blank", secret: " \n\t", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := onGitHub(t, nil)
			r.p.Mask(tt.secret)
			var got []string
			for _, c := range commands(r.stdout.String()) {
				if c.Name != "add-mask" {
					t.Errorf("unexpected command %+v", c)
				}
				got = append(got, c.Data)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("::add-mask:: data (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGitHubGroup(t *testing.T) {
	r := onGitHub(t, nil)
	r.p.Mask("s3cr3t")
	r.stdout.Reset()
	end := r.p.Group("Build s3cr3t\n::error::x")
	r.p.Stdout().Write([]byte("inside\n"))
	end()
	want := "::group::Build ***%0A::error::x\ninside\n::endgroup::\n"
	if got := r.stdout.String(); got != want {
		t.Errorf("stdout = %q, want %q", got, want)
	}
	if diff := cmp.Diff([]command{
		{Name: "group", Props: map[string]string{}, Data: "Build ***\n::error::x"},
		{Name: "endgroup", Props: map[string]string{}},
	}, commands(r.stdout.String())); diff != "" {
		t.Errorf("commands (-want +got):\n%s", diff)
	}
}

func TestGitHubInput(t *testing.T) {
	tests := []struct {
		name   string
		env    map[string]string
		input  string
		want   string
		wantOK bool
	}{
		{name: "set", env: map[string]string{"INPUT_PLATFORMS": "linux/amd64"}, input: "platforms", want: "linux/amd64", wantOK: true},
		{name: "trimmed", env: map[string]string{"INPUT_PLATFORMS": "  linux/amd64 \n"}, input: "platforms", want: "linux/amd64", wantOK: true},
		{name: "unset", env: map[string]string{}, input: "platforms"},
		{name: "empty", env: map[string]string{"INPUT_PLATFORMS": ""}, input: "platforms"},
		{name: "blank", env: map[string]string{"INPUT_PLATFORMS": " \t"}, input: "platforms"},
		{name: "dash kept", env: map[string]string{"INPUT_FAIL-ON": "high"}, input: "fail-on", want: "high", wantOK: true},
		{name: "dash as underscore", env: map[string]string{"INPUT_FAIL_ON": "high"}, input: "fail-on", want: "high", wantOK: true},
		{name: "dash form first", env: map[string]string{"INPUT_FAIL-ON": "high", "INPUT_FAIL_ON": "low"}, input: "fail-on", want: "high", wantOK: true},
		{name: "blank dash form falls through", env: map[string]string{"INPUT_FAIL-ON": " ", "INPUT_FAIL_ON": "low"}, input: "fail-on", want: "low", wantOK: true},
		{name: "space as underscore", env: map[string]string{"INPUT_MY_INPUT": "v"}, input: "my input", want: "v", wantOK: true},
		{name: "gitlab name ignored", env: map[string]string{"SLIPWAY_PLATFORMS": "x"}, input: "platforms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := onGitHub(t, tt.env).p.Input(tt.input)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("Input(%q) = %q, %v; want %q, %v", tt.input, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestGitHubWriteSummary(t *testing.T) {
	path := filepath.Join(t.TempDir(), "step_summary")
	r := onGitHub(t, map[string]string{"GITHUB_STEP_SUMMARY": path})
	first := &Summary{Title: "First", Table: Table{Header: []string{"a"}, Rows: [][]string{{"1"}}}}
	second := &Summary{Title: "Second", Lines: []string{"more"}}
	for _, s := range []*Summary{first, second} {
		if err := r.p.WriteSummary(s); err != nil {
			t.Fatalf("WriteSummary(%q): %v", s.Title, err)
		}
	}
	want := first.Markdown() + "\n" + second.Markdown() + "\n"
	if diff := cmp.Diff(want, readFile(t, path)); diff != "" {
		t.Errorf("step summary (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(first.Text()+second.Text(), r.stdout.String()); diff != "" {
		t.Errorf("stdout (-want +got):\n%s", diff)
	}
}

func TestGitHubWriteSummaryWithoutFile(t *testing.T) {
	r := onGitHub(t, nil)
	s := &Summary{Title: "T", Lines: []string{"l"}}
	if err := r.p.WriteSummary(s); err != nil {
		t.Fatalf("WriteSummary without GITHUB_STEP_SUMMARY: %v", err)
	}
	if got := r.stdout.String(); got != s.Text() {
		t.Errorf("stdout = %q, want %q", got, s.Text())
	}
}

func TestGitHubWriteSummaryUnwritable(t *testing.T) {
	r := onGitHub(t, map[string]string{"GITHUB_STEP_SUMMARY": filepath.Join(t.TempDir(), "no", "such", "file")})
	if err := r.p.WriteSummary(&Summary{Title: "T"}); err == nil {
		t.Error("WriteSummary into a missing directory returned no error")
	}
}

func TestGitHubInfo(t *testing.T) {
	base := map[string]string{
		"GITHUB_SHA":        "0123abcd",
		"GITHUB_REPOSITORY": "octo/repo",
		"GITHUB_ACTOR":      "octocat",
		"GITHUB_SERVER_URL": "https://github.com",
		"GITHUB_RUN_ID":     "42",
	}
	with := func(m map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range base {
			out[k] = v
		}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	common := Info{Platform: "github", Commit: "0123abcd", Repository: "octo/repo", Actor: "octocat", RunURL: "https://github.com/octo/repo/actions/runs/42"}
	info := func(f func(*Info)) Info {
		i := common
		f(&i)
		return i
	}
	tests := []struct {
		name string
		env  map[string]string
		want Info
	}{
		{
			name: "branch",
			env:  with(map[string]string{"GITHUB_REF": "refs/heads/main", "GITHUB_REF_NAME": "main", "GITHUB_REF_TYPE": "branch"}),
			want: info(func(i *Info) { i.Ref, i.Branch = "refs/heads/main", "main" }),
		},
		{
			name: "branch with slash",
			env:  with(map[string]string{"GITHUB_REF": "refs/heads/feature/x", "GITHUB_REF_NAME": "feature/x", "GITHUB_REF_TYPE": "branch"}),
			want: info(func(i *Info) { i.Ref, i.Branch = "refs/heads/feature/x", "feature/x" }),
		},
		{
			name: "tag",
			env:  with(map[string]string{"GITHUB_REF": "refs/tags/v1.2.3", "GITHUB_REF_NAME": "v1.2.3", "GITHUB_REF_TYPE": "tag"}),
			want: info(func(i *Info) { i.Ref, i.Tag = "refs/tags/v1.2.3", "v1.2.3" }),
		},
		{
			name: "tag from ref alone",
			env:  with(map[string]string{"GITHUB_REF": "refs/tags/v2.0.0"}),
			want: info(func(i *Info) { i.Ref, i.Tag = "refs/tags/v2.0.0", "v2.0.0" }),
		},
		{
			name: "pull request",
			env: with(map[string]string{
				"GITHUB_REF": "refs/pull/17/merge", "GITHUB_REF_NAME": "17/merge", "GITHUB_REF_TYPE": "branch",
				"GITHUB_HEAD_REF": "fix/bug",
			}),
			want: info(func(i *Info) { i.Ref, i.PR, i.Branch = "refs/pull/17/merge", "17", "fix/bug" }),
		},
		{
			name: "no server, no run URL",
			env:  with(map[string]string{"GITHUB_SERVER_URL": ""}),
			want: info(func(i *Info) { i.RunURL = "" }),
		},
		{
			name: "no run id, no run URL",
			env:  with(map[string]string{"GITHUB_RUN_ID": ""}),
			want: info(func(i *Info) { i.RunURL = "" }),
		},
		{
			name: "enterprise server",
			env:  with(map[string]string{"GITHUB_SERVER_URL": "https://ghe.example.com"}),
			want: info(func(i *Info) { i.RunURL = "https://ghe.example.com/octo/repo/actions/runs/42" }),
		},
		{
			// The run URL is recorded (promotion history): never a login.
			name: "server URL with a login",
			env:  with(map[string]string{"GITHUB_SERVER_URL": "https://bot:s3cr3t@ghe.example.com"}),
			want: info(func(i *Info) { i.RunURL = "https://ghe.example.com/octo/repo/actions/runs/42" }),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, onGitHub(t, tt.env).p.Info()); diff != "" {
				t.Errorf("Info() (-want +got):\n%s", diff)
			}
		})
	}
}

// throughGitHub writes chunks, one Write each, to a new GitHub platform's
// stdout, or stderr, and returns what came out.
func throughGitHub(t *testing.T, stderr bool, chunks ...string) string {
	t.Helper()
	r := onGitHub(t, nil)
	w, buf := r.p.Stdout(), r.stdout
	if stderr {
		w, buf = r.p.Stderr(), r.stderr
	}
	for _, c := range chunks {
		if n, err := w.Write([]byte(c)); err != nil || n != len(c) {
			t.Fatalf("Write(%q) = %d, %v", c, n, err)
		}
	}
	return buf.String()
}

// splits returns s cut into two writes at every byte, and into one write
// per byte.
func splits(s string) [][]string {
	var out [][]string
	for i := 1; i < len(s); i++ {
		out = append(out, []string{s[:i], s[i:]})
	}
	var bytes []string
	for i := range len(s) {
		bytes = append(bytes, s[i:i+1])
	}
	return append(out, bytes)
}

// Concurrent writers may interleave lines but never split one, so no
// goroutine can complete a command another one started.
func TestGitHubConcurrentWrites(t *testing.T) {
	r := onGitHub(t, nil)
	const writers, lines = 8, 200
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range lines {
				r.p.Stdout().Write([]byte(":"))
				r.p.Stdout().Write([]byte(":error::x\n"))
			}
		}()
	}
	wg.Wait()
	out := r.stdout.String()
	if n := strings.Count(out, "\n"); n != writers*lines {
		t.Errorf("got %d lines, want %d", n, writers*lines)
	}
	if cmds := commands(out); len(cmds) != 0 {
		t.Errorf("%d workflow commands got through, first %+v", len(cmds), cmds[0])
	}
}

// removeBreakers undoes the defusing: it drops the breaker the stream puts
// inside "::" and "##[".
func removeBreakers(s string) string {
	return strings.NewReplacer(":"+breaker+":", "::", "#"+breaker+"[", "#[").Replace(s)
}
