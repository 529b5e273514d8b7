package yamlstrict

import (
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	type doc struct {
		Name  string `yaml:"name"`
		Count int    `yaml:"count"`
	}
	var d doc
	if err := Decode([]byte("name: a\ncount: 2\n"), &d); err != nil || d != (doc{"a", 2}) {
		t.Errorf("Decode = %+v, %v", d, err)
	}
	if err := Decode(nil, &d); err != nil {
		t.Errorf("an empty document: %v", err)
	}
	for _, tt := range []struct{ in, want string }{
		{"name: a\ncolour: red\n", "line 2: field colour not found"},
		{"count: \"x\ny\"\n", `line 1: cannot unmarshal !!str ` + "`" + `x y` + "`"},
		{"name: [\n", "did not find expected node content"},
		{"name: a\ncount: b\nother: c\n", "line 2: cannot unmarshal !!str `b`; line 3: field other not found"},
	} {
		err := Decode([]byte(tt.in), &doc{})
		if err == nil {
			t.Errorf("%q: no error", tt.in)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, tt.want) || strings.ContainsAny(msg, "\r\n") || strings.Contains(msg, "yamlstrict.doc") || strings.HasPrefix(msg, "yaml: ") {
			t.Errorf("%q: error %q, want one line containing %q without type names", tt.in, msg, tt.want)
		}
	}
}
