package ci

import (
	"fmt"
	"strings"
	"testing"
	"unicode"

	"github.com/google/go-cmp/cmp"
)

// This file models how GitHub's runner (actions/runner) reads what a step
// writes, so the tests check slipway's output against the reader that
// matters rather than against slipway's own idea of the format.

// output is one name and value the runner takes from GITHUB_OUTPUT.
type output struct{ Name, Value string }

// parseOutputFile reads a GITHUB_OUTPUT file the way the runner's file
// command does: name=value lines, and name<<DELIM blocks whose value is
// every line up to one equal to DELIM. Blank lines between entries are
// skipped.
func parseOutputFile(text string) ([]output, error) {
	var outs []output
	lines := strings.SplitAfter(text, "\n")
	for i := 0; i < len(lines); i++ {
		line, hasNewline := strings.CutSuffix(lines[i], "\n")
		if line == "" {
			continue
		}
		eq, heredoc := strings.Index(line, "="), strings.Index(line, "<<")
		if eq >= 0 && (heredoc < 0 || eq < heredoc) {
			name, value, _ := strings.Cut(line, "=")
			outs = append(outs, output{name, value})
			continue
		}
		if heredoc < 0 {
			return outs, fmt.Errorf("line %d: invalid format %q", i+1, line)
		}
		name, delim, _ := strings.Cut(line, "<<")
		if name == "" || delim == "" {
			return outs, fmt.Errorf("line %d: invalid heredoc %q", i+1, line)
		}
		if !hasNewline {
			return outs, fmt.Errorf("line %d: heredoc header without value", i+1)
		}
		var value []string
		closed := false
		for i++; i < len(lines); i++ {
			l, nl := strings.CutSuffix(lines[i], "\n")
			if l == delim {
				closed = true
				break
			}
			if !nl {
				return outs, fmt.Errorf("line %d: delimiter %q missing its new line", i+1, delim)
			}
			value = append(value, l)
		}
		if !closed {
			return outs, fmt.Errorf("matching delimiter %q not found", delim)
		}
		outs = append(outs, output{name, strings.Join(value, "\n")})
	}
	return outs, nil
}

// logLines splits a log the way the runner's StreamReader.ReadLine does:
// a line ends at \n, \r or \r\n.
func logLines(s string) []string {
	var lines []string
	for s != "" {
		i := strings.IndexAny(s, "\r\n")
		if i < 0 {
			lines = append(lines, s)
			break
		}
		lines = append(lines, s[:i])
		if strings.HasPrefix(s[i:], "\r\n") {
			i++
		}
		s = s[i+1:]
	}
	return lines
}

// command is a workflow command as the runner parses it.
type command struct {
	Name  string
	Props map[string]string
	Data  string
}

// parseCommand reads line as the runner does: the current syntax
// "::name k=v,k=v::data" after leading white space, or the old syntax
// "##[name k=v;k=v]data" anywhere in the line. Unlike the runner it takes
// any name, not just registered ones, which makes it stricter.
func parseCommand(line string) (command, bool) {
	if msg := strings.TrimLeftFunc(line, unicode.IsSpace); strings.HasPrefix(msg, "::") {
		if end := strings.Index(msg[2:], "::"); end >= 0 {
			info, data := msg[2:2+end], msg[2+end+2:]
			name, props, _ := strings.Cut(info, " ")
			if name != "" {
				c := command{Name: name, Props: map[string]string{}, Data: unescapeData(data)}
				for _, p := range strings.Split(strings.TrimSpace(props), ",") {
					if k, v, ok := strings.Cut(p, "="); ok && k != "" && v != "" {
						c.Props[k] = unescapeProperty(v)
					}
				}
				return c, true
			}
		}
	}
	if i := strings.Index(line, "##["); i >= 0 {
		if rb := strings.Index(line[i:], "]"); rb >= 0 {
			info := line[i+3 : i+rb]
			if name, _, _ := strings.Cut(info, " "); name != "" {
				return command{Name: name, Data: line[i+rb+1:]}, true
			}
		}
	}
	return command{}, false
}

// commands lists every workflow command the runner would find in a log.
func commands(log string) []command {
	var cmds []command
	for _, l := range logLines(log) {
		if c, ok := parseCommand(l); ok {
			cmds = append(cmds, c)
		}
	}
	return cmds
}

// The runner's unescaping, replacement by replacement, in its order.
func unescapeData(s string) string {
	return replaceAll(s, "%0D", "\r", "%0A", "\n", "%25", "%")
}

func unescapeProperty(s string) string {
	return replaceAll(s, "%0D", "\r", "%0A", "\n", "%3A", ":", "%2C", ",", "%25", "%")
}

func replaceAll(s string, oldnew ...string) string {
	for i := 0; i < len(oldnew); i += 2 {
		s = strings.ReplaceAll(s, oldnew[i], oldnew[i+1])
	}
	return s
}

// The model must itself be right, or every test built on it proves nothing.
func TestRunnerModel(t *testing.T) {
	outs, err := parseOutputFile("a=1\n\nb<<EOF\nx\n\ny=2\nEOF\nc<<D\nD\n")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]output{{"a", "1"}, {"b", "x\n\ny=2"}, {"c", ""}}, outs); diff != "" {
		t.Errorf("parseOutputFile (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"a<<EOF\nx\n", "novalue\n", "<<EOF\nEOF\n"} {
		if _, err := parseOutputFile(bad); err == nil {
			t.Errorf("parseOutputFile(%q) accepted a malformed file", bad)
		}
	}
	if diff := cmp.Diff([]string{"a", "b", "c", "", "d"}, logLines("a\rb\r\nc\n\nd")); diff != "" {
		t.Errorf("logLines (-want +got):\n%s", diff)
	}
	for line, want := range map[string]command{
		"::error file=a%2Cb.go,line=3::x%0Ay": {Name: "error", Props: map[string]string{"file": "a,b.go", "line": "3"}, Data: "x\ny"},
		" \t\u00a0::warning::w":               {Name: "warning", Props: map[string]string{}, Data: "w"},
		"text ##[error]old":                   {Name: "error", Data: "old"},
	} {
		got, ok := parseCommand(line)
		if diff := cmp.Diff(want, got); !ok || diff != "" {
			t.Errorf("parseCommand(%q) = %v (-want +got):\n%s", line, ok, diff)
		}
	}
	for _, line := range []string{"text :: x", ":\u200b:error::x", "#\u200b#[error]x", "##\u200b[error]x", "::x", ":: ::x"} {
		if c, ok := parseCommand(line); ok {
			t.Errorf("parseCommand(%q) = %+v, want no command", line, c)
		}
	}
}
