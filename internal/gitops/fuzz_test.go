package gitops

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.yaml.in/yaml/v3"
)

// FuzzPin pins arbitrary YAML as Rewrite does a file: when it edits, the
// result still parses as YAML, changed only where the edits say, and a
// second pass finds nothing left to pin.
func FuzzPin(f *testing.F) {
	for _, file := range []string{"base/deployment.yaml", "overlays/production/kustomization.yaml", "chart/values.yaml", "notes.yaml"} {
		data, err := os.ReadFile(filepath.Join("testdata", "in", file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, filepath.Base(file) == "kustomization.yaml", false)
		f.Add(data, filepath.Base(file) == "kustomization.yaml", true)
	}
	for _, s := range []string{
		"image: registry.example.com/team/hello:1.0\n",
		"- image: 'registry.example.com/team/hello@sha256:0000000000000000000000000000000000000000000000000000000000000000'\n",
		"a: {image: \"registry.example.com/team/hello:1.0\"}\r\nb: 1\r\n",
		"images:\n- name: registry.example.com/team/hello\n  newName: prod.example.com/hello\n  newTag: \"1.0\"\n  digest: sha256:abc\n",
		"images:\n  - {name: registry.example.com/team/hello, newTag: v1}\n",
		"image:\n  registry: registry.example.com\n  repository: team/hello\n  tag: 1.0@sha256:abc\n",
		"image: {repository: registry.example.com/team/hello, tag: '', digest: x}\n",
		// Each of these once gave a broken or truncated file.
		"images:\n  - {name: registry.example.com/team/hello, newTag: v1}\n",
		"images:\n- name: prod.example.com/hello\n  digest: \n",
		"images:\n- name: registry.example.com/team/hello\n  digest:\n    a: b\n",
		"images:\n- newTag: v1\n  name: registry.example.com/team/hello\n",
		"images:\n- name: registry.example.com/team/hello\n  newTag: |\n    v1\n",
		"{ü: 1, image: \"registry.example.com/team/hello:1.0\"}\n",
		"\ufeffimage: 'registry.example.com/team/hello:1.0'\n",
		"a: &x \"registry.example.com/team/hello:1.0\"\nimage: *x\nb: {image: !!str \"registry.example.com/team/hello\"}\n",
		"{repository: registry.example.com/team/hello, digest}\n",
	} {
		f.Add([]byte(s), true, false)
		f.Add([]byte(s), true, true)
		f.Add([]byte(s), false, true)
	}
	targets := []Target{
		{Repository: "registry.example.com/team/hello", Digest: digest, Tag: "1.4.2"},
		{Repository: "prod.example.com/hello", Match: []string{"registry.example.com/team/hello"}, Digest: digest},
	}
	f.Fuzz(func(t *testing.T, data []byte, kustomization, otherRegistry bool) {
		tg := targets[0]
		if otherRegistry {
			tg = targets[1]
		}
		m, err := newMatcher(tg)
		if err != nil {
			t.Fatal(err)
		}
		base := "values.yaml"
		if kustomization {
			base = "kustomization.yaml"
		}
		edits, err := m.file(data, base)
		if err != nil || len(edits) == 0 {
			return
		}
		out, err := apply(data, edits)
		if err != nil {
			return
		}
		// Every edit replaces one value, or adds or removes one key and
		// value; nothing else may change.
		want, err := contents(data)
		if err != nil {
			t.Fatalf("file that read does not parse: %v", err)
		}
		for _, e := range edits {
			switch {
			case e.deleting:
				want.scalars["newTag"]--
				want.scalars[strings.TrimPrefix(e.old, "newTag: ")]--
			case e.after != nil:
				want.scalars[e.key]++
				want.scalars[e.new]++
			default:
				want.scalars[e.node.Value]--
				want.scalars[e.new]++
			}
		}
		got, err := contents(out)
		if err != nil {
			t.Fatalf("pinned file does not parse: %v\nin:\n%s\nout:\n%s", err, data, out)
		}
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(tree{}), cmpopts.IgnoreMapEntries(func(_ string, n int) bool { return n == 0 })); diff != "" {
			t.Fatalf("pinned file differs from the edits (-want +got):\n%s\nin:\n%s\nout:\n%s", diff, data, out)
		}
		again, err := m.file(out, base)
		if err != nil {
			t.Fatalf("pinned file does not read: %v\nin:\n%s\nout:\n%s", err, data, out)
		}
		if len(again) > 0 {
			t.Fatalf("a second pass would still change %+v\nin:\n%s\nout:\n%s", again, data, out)
		}
	})
}

// tree is what a file holds, regardless of layout: its documents, its
// mappings and sequences, and how often each key or value occurs.
type tree struct {
	docs, mappings, sequences int
	scalars                   map[string]int
}

func contents(data []byte) (tree, error) {
	c := tree{scalars: map[string]int{}}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		switch n.Kind {
		case yaml.ScalarNode:
			c.scalars[n.Value]++
		case yaml.MappingNode:
			c.mappings++
		case yaml.SequenceNode:
			c.sequences++
		}
		for _, k := range n.Content {
			walk(k)
		}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return c, nil
		}
		if err != nil {
			return c, err
		}
		c.docs++
		walk(&doc)
	}
}
