// Package actions holds slipway's GitHub Actions (one directory per step;
// the slipway action is the repository's root). Its test holds their
// inputs and outputs to one set of names, and to the tables of
// docs/github.md that document them.
package actions

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

// umbrella is the action at the repository's root, as the docs' tables
// name it.
const umbrella = "slipway"

// steps are the step actions, in the docs' column order.
var steps = []string{"build", "image", "scan", "push", "promote"}

// notOnUmbrella are step inputs the slipway action leaves out, and why.
var notOnUmbrella = map[string]string{
	"build": "image's: the slipway action always builds first",
	"merge": "image's: a matrix fan-in needs the step actions",
	"image": "scan's: the slipway action scans the image it just made",
}

// ownDefaults are inputs whose default differs between actions on purpose.
var ownDefaults = map[string]string{
	"platforms": "image images every platform the build made",
	"to":        "promote's is an environment, required; push's are repositories",
}

type input struct {
	Description string `yaml:"description"`
	Required    bool   `yaml:"required"`
	Default     string `yaml:"default"`
}

type action struct {
	Inputs  map[string]input          `yaml:"inputs"`
	Outputs map[string]map[string]any `yaml:"outputs"`
	text    string
}

func (a action) deprecated(name string) bool {
	return strings.HasPrefix(a.Inputs[name].Description, "Deprecated")
}

// names are the action's current inputs, deprecated ones left out.
func (a action) names() []string {
	var names []string
	for n := range a.Inputs {
		if !a.deprecated(n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

func loadActions(t *testing.T) map[string]action {
	t.Helper()
	paths := map[string]string{umbrella: filepath.Join("..", "action.yml")}
	for _, s := range steps {
		paths[s] = filepath.Join(s, "action.yml")
	}
	actions := map[string]action{}
	for name, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var a action
		if err := yaml.Unmarshal(data, &a); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		a.text = string(data)
		actions[name] = a
	}
	return actions
}

// table is a Markdown table: its header's cells and its rows' cells.
type table struct {
	header []string
	rows   [][]string
}

// docTable finds the table of doc whose header starts with the given
// cells.
func docTable(t *testing.T, doc string, header ...string) table {
	t.Helper()
	var tab table
	for line := range strings.SplitSeq(doc, "\n") {
		if !strings.HasPrefix(line, "|") {
			if tab.header != nil {
				return tab
			}
			continue
		}
		cells := splitRow(line)
		switch {
		case tab.header == nil && len(cells) >= len(header) && slices.Equal(cells[:len(header)], header):
			tab.header = cells
		case tab.header != nil && !strings.HasPrefix(line, "|---"):
			tab.rows = append(tab.rows, cells)
		}
	}
	if tab.header == nil {
		t.Fatalf("no table with header %q", header)
	}
	return tab
}

func splitRow(line string) []string {
	line = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(line), "|"), "|")
	// A | inside backticks is escaped as \| in the docs.
	cells := strings.Split(strings.ReplaceAll(line, `\|`, "\x00"), "|")
	for i, c := range cells {
		cells[i] = strings.ReplaceAll(strings.TrimSpace(c), "\x00", "|")
	}
	return cells
}

var code = regexp.MustCompile("`([^`]*)`")

// codes are the backticked words of a cell.
func codes(cell string) []string {
	var out []string
	for _, m := range code.FindAllStringSubmatch(cell, -1) {
		out = append(out, m[1])
	}
	return out
}

// marked are the actions a row ticks, by the header's column names.
func marked(tab table, row []string) []string {
	var names []string
	for i, c := range row {
		if c == "✓" {
			names = append(names, tab.header[i])
		}
	}
	return names
}

// defaults reads a default cell: "`value`" for all the row's actions, or
// "a, b: `value`; c: text" for some; backticks hold a literal default,
// plain text describes an empty one, and "required" is one.
func defaults(cell string, actions []string) map[string]string {
	out := map[string]string{}
	for seg := range strings.SplitSeq(cell, "; ") {
		who := actions
		if names, rest, ok := strings.Cut(seg, ": "); ok && !strings.Contains(names, "`") {
			who = strings.Split(names, ", ")
			seg = rest
		}
		val := ""
		switch {
		case strings.HasPrefix(seg, "`"):
			val = codes(seg)[0]
		case strings.HasPrefix(seg, "required"):
			val = "(required)"
		}
		for _, a := range who {
			out[a] = val
		}
	}
	return out
}

func readDoc(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "docs", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestDocumentedInputs holds every action.yml to the inputs table of
// docs/github.md: the same names in the same actions, the same defaults.
func TestDocumentedInputs(t *testing.T) {
	actions := loadActions(t)
	tab := docTable(t, readDoc(t, "github.md"), "input", "build", "image")
	documented := map[string][]string{} // action → inputs
	for _, row := range tab.rows {
		name := codes(row[0])[0]
		in := marked(tab, row)
		want := defaults(row[len(row)-1], in)
		for _, a := range in {
			documented[a] = append(documented[a], name)
			got, ok := actions[a].Inputs[name]
			if !ok {
				t.Errorf("docs/github.md: %s takes %s, but its action.yml has no such input", a, name)
				continue
			}
			gotDefault := got.Default
			if got.Required {
				gotDefault = "(required)"
			}
			if gotDefault != want[a] {
				t.Errorf("%s input %s: default %q in action.yml, %q in docs/github.md", a, name, gotDefault, want[a])
			}
		}
	}
	for name, a := range actions {
		slices.Sort(documented[name])
		if diff := cmp.Diff(documented[name], a.names()); diff != "" {
			t.Errorf("%s's inputs (-docs/github.md +action.yml):\n%s", name, diff)
		}
	}
}

// TestDocumentedOutputs does the same for the outputs.
func TestDocumentedOutputs(t *testing.T) {
	actions := loadActions(t)
	tab := docTable(t, readDoc(t, "github.md"), "output", "build", "image")
	documented := map[string][]string{}
	for _, row := range tab.rows {
		for _, a := range marked(tab, row) {
			documented[a] = append(documented[a], codes(row[0])[0])
		}
	}
	for name, a := range actions {
		var got []string
		for o := range a.Outputs {
			got = append(got, o)
		}
		slices.Sort(got)
		slices.Sort(documented[name])
		if diff := cmp.Diff(documented[name], got); diff != "" {
			t.Errorf("%s's outputs (-docs/github.md +action.yml):\n%s", name, diff)
		}
	}
}

// TestOneSetOfNames: the slipway action takes every input of the steps it
// runs and gives every output, and a name shared by two actions has one
// default.
func TestOneSetOfNames(t *testing.T) {
	actions := loadActions(t)
	u := actions[umbrella]
	for _, s := range []string{"build", "image", "scan", "push"} {
		for _, name := range actions[s].names() {
			if _, ok := u.Inputs[name]; !ok && notOnUmbrella[name] == "" {
				t.Errorf("%s's input %s is not an input of the slipway action", s, name)
			}
		}
		for name := range actions[s].Outputs {
			if _, ok := u.Outputs[name]; !ok {
				t.Errorf("%s's output %s is not an output of the slipway action", s, name)
			}
		}
	}
	for name, why := range notOnUmbrella {
		if _, ok := u.Inputs[name]; ok {
			t.Errorf("the slipway action takes %s, listed as left out (%s)", name, why)
		}
	}

	first := map[string]string{} // input → "action: default" first seen
	for _, a := range append([]string{umbrella}, steps...) {
		for _, name := range actions[a].names() {
			in := actions[a].Inputs[name]
			d := in.Default
			if in.Required {
				d = "(required)"
			}
			seen, ok := first[name]
			switch {
			case !ok:
				first[name] = a + ": " + d
			case ownDefaults[name] == "" && seen != strings.SplitN(seen, ": ", 2)[0]+": "+d:
				t.Errorf("input %s: default %q in %s, %s", name, d, a, seen)
			}
		}
	}
}

// TestInputsReachSlipway: every input an action declares is read by one
// of its steps; one that nothing reads would be silently ignored.
func TestInputsReachSlipway(t *testing.T) {
	for name, a := range loadActions(t) {
		for in := range a.Inputs {
			if !strings.Contains(a.text, "inputs."+in+" ") && !strings.Contains(a.text, "inputs."+in+"}") {
				t.Errorf("%s: no step reads input %s", name, in)
			}
		}
	}
}

// TestRenamedInputs: each old name of the table still works (its value
// is used when given) and warns with the new name.
func TestRenamedInputs(t *testing.T) {
	actions := loadActions(t)
	tab := docTable(t, readDoc(t, "github.md"), "old input", "new input")
	listed := map[string]bool{}
	for _, row := range tab.rows {
		old, renamed := codes(row[0])[0], codes(row[1])[0]
		for a := range strings.SplitSeq(row[2], ", ") {
			listed[a+" "+old] = true
			act, ok := actions[a]
			if !ok {
				t.Errorf("docs/github.md: renamed input of an unknown action %q", a)
				continue
			}
			if got, want := act.Inputs[old].Description, "Deprecated, use "+renamed+"."; got != want {
				t.Errorf("%s input %s: description %q, want %q", a, old, got, want)
			}
			if act.Inputs[old].Default != "" {
				t.Errorf("%s input %s has a default, which would always override %s", a, old, renamed)
			}
			if _, ok := act.Inputs[renamed]; !ok {
				t.Errorf("%s has no input %s, which replaces %s", a, renamed, old)
			}
			if !strings.Contains(act.text, "${{ inputs."+old+" || inputs."+renamed+" }}") {
				t.Errorf("%s does not pass inputs.%s || inputs.%s to slipway", a, old, renamed)
			}
			if !strings.Contains(act.text, "::warning title=slipway "+a+"::input "+old+" is deprecated; use "+renamed+`"`) {
				t.Errorf("%s does not warn that %s is deprecated", a, old)
			}
		}
	}
	for name, a := range actions {
		for in := range a.Inputs {
			if a.deprecated(in) && !listed[name+" "+in] {
				t.Errorf("%s's deprecated input %s is not in docs/github.md's table of renamed inputs", name, in)
			}
		}
	}
}

// TestStepDocsInputs: the action inputs each step's own page names in
// its table of flags are the action's.
func TestStepDocsInputs(t *testing.T) {
	actions := loadActions(t)
	for _, s := range steps {
		tab := docTable(t, readDoc(t, s+".md"), "flag", "action input")
		for _, row := range tab.rows {
			names := codes(row[1])
			if row[1] == "same" {
				names = nil
				for _, f := range codes(row[0]) {
					names = append(names, strings.TrimPrefix(f, "--"))
				}
			}
			for _, n := range names {
				if _, ok := actions[s].Inputs[n]; !ok || actions[s].deprecated(n) {
					t.Errorf("docs/%s.md names the action input %s, which actions/%s has not", s, n, s)
				}
			}
		}
	}
}
