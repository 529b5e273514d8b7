package policy

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.yaml.in/yaml/v3"
)

// FuzzParseWaivers feeds ParseWaivers arbitrary files: an error is one
// line, and a file it accepts says the same once written out again.
func FuzzParseWaivers(f *testing.F) {
	for _, s := range []string{
		"",
		"waivers: []\n",
		"waivers:\n  - id: GO-2022-1059\n    scope:\n      package: golang.org/x/text\n      path: app/**\n      image: ghcr.io/acme/*\n    reason: ParseAcceptLanguage is never called\n    expires: 2027-03-31\n  - id: G404\n    reason: \"jitter\"\n",
		"waivers: [{id: CVE-2024-1, reason: r, expires: 2027-02-29}]\n",
		"waiver:\n  - id: X\n",
		"waivers:\n  - id: X\n    reason: r\n    expires: next week\n",
		"waivers:\n  - id: X\n    reason: r\n    scope:\n      path: 'a[/b'\n",
		"waivers: yes\n",
		"waivers:\n  - &w {id: X, reason: r}\n  - *w\n",
		"waivers: [{id: X, reason: r}]\n---\nwaivers: [{id: Y}]\n",
		"waivers:\n  - id: \"a\\nb\"\n    reason: r\n",
		"waivers:\n  -\n  - id: X\n",
		"waivers: \"0\\n0\"\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ws, err := ParseWaivers(data)
		if err != nil {
			if msg := err.Error(); strings.ContainsAny(msg, "\r\n") || strings.Contains(msg, "<nil>") {
				t.Fatalf("error is not one clear line: %q", msg)
			}
			return
		}
		for _, w := range ws {
			if w.ID == "" || w.Reason == "" || w.Line < 1 {
				t.Fatalf("accepted a waiver without id, reason or line: %+v", w)
			}
		}
		again, err := ParseWaivers(renderWaivers(t, ws))
		if err != nil {
			t.Fatalf("the accepted waivers, written out, do not parse: %v", err)
		}
		if diff := cmp.Diff(ws, again, cmpopts.IgnoreFields(Waiver{}, "Line"), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("written out and parsed again (-first +again):\n%s", diff)
		}
	})
}

// renderWaivers writes waivers as a waiver file.
func renderWaivers(t *testing.T, ws []Waiver) []byte {
	t.Helper()
	type scope struct {
		Image   string `yaml:"image,omitempty"`
		Package string `yaml:"package,omitempty"`
		Path    string `yaml:"path,omitempty"`
	}
	type waiver struct {
		ID      string `yaml:"id"`
		Scope   *scope `yaml:"scope,omitempty"`
		Reason  string `yaml:"reason"`
		Expires string `yaml:"expires,omitempty"`
	}
	var doc struct {
		Waivers []waiver `yaml:"waivers"`
	}
	for _, w := range ws {
		out := waiver{ID: w.ID, Reason: w.Reason, Expires: w.Expires.String()}
		if w.Scope != (Scope{}) {
			out.Scope = &scope{w.Scope.Image, w.Scope.Package, w.Scope.Path}
		}
		doc.Waivers = append(doc.Waivers, out)
	}
	data, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
