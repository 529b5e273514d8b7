package build

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/slipwayci/slipway/internal/cli"
)

// FuzzParsePlatforms checks that every platform accepted is a known one
// with a variant Go has, listed once, and that the list written back reads
// as the same list.
func FuzzParsePlatforms(f *testing.F) {
	for _, s := range []string{
		"linux/amd64,linux/arm64",
		"linux/amd64\n darwin/arm64 ",
		"linux/arm/v7,linux/arm64/v8.2,linux/amd64/v3,linux/386/sse2",
		"linux/amd64,linux/amd64",
		"linux/amd65",
		"linux",
		"linux/arm/v7/x",
		"linux/arm/",
		"windows/amd64/v2,darwin/arm64/foo",
		" , ",
	} {
		f.Add(s)
	}
	knownSet := map[string]bool{}
	for _, k := range known {
		knownSet[k] = true
	}
	f.Fuzz(func(t *testing.T, list string) {
		ps, err := ParsePlatforms(list, known)
		if err != nil {
			if msg := err.Error(); strings.ContainsAny(msg, "\r\n") {
				t.Fatalf("error spans lines: %q", msg)
			}
			return
		}
		var written []string
		for i, p := range ps {
			if !knownSet[p.OS+"/"+p.Arch] {
				t.Fatalf("accepted unknown platform %s", p)
			}
			if _, ok := variants[p.Arch].values[p.Variant]; p.Variant != "" && !ok {
				t.Fatalf("accepted unknown variant in %s", p)
			}
			for _, q := range ps[:i] {
				if q == p {
					t.Fatalf("%s listed twice", p)
				}
			}
			written = append(written, p.String())
		}
		again, err := ParsePlatforms(strings.Join(written, ","), known)
		if err != nil {
			t.Fatalf("%q, written back as %q, does not parse: %v", list, written, err)
		}
		if diff := cmp.Diff(ps, again); diff != "" {
			t.Fatalf("written back and parsed again (-first +again):\n%s", diff)
		}
	})
}

// FuzzLDFlags parses and renders arbitrary --ldflags templates: errors are
// one line naming --ldflags, and text without actions passes through as it
// is.
func FuzzLDFlags(f *testing.F) {
	for _, s := range []string{
		"-s -w",
		"-X main.v={{.Version}} -X main.c={{.Commit}} -X main.d={{.Date}} -X main.s={{.ShortCommit}}",
		"-X main.f={{.Env.FOO}} -X main.p={{.Os}}/{{.Arch}}{{with .Variant}}/{{.}}{{end}}",
		"{{.Env.NOPE}}",
		"{{.Versoin}}",
		"{{.Version",
		"{{if eq .Os \"windows\"}}-H windowsgui{{end}}",
		"{{printf \"%d\" .Timestamp}}",
		"{{`a\nb` | nope}}",
		"{{define \"a\"}}{{template \"a\"}}{{end}}{{template \"a\"}}",
	} {
		f.Add(s)
	}
	data := templateData{Version: "1.2.3", Commit: "abc", ShortCommit: "a", Date: "2026-01-02T03:04:05Z", Env: map[string]string{"FOO": "bar"}}
	f.Fuzz(func(t *testing.T, s string) {
		tmpl, err := parseLDFlags(s)
		if err == nil {
			if strings.Contains(s, "range") {
				// {{range 1e9}} would render for as long as it was asked
				// to, which says nothing about the code under test.
				return
			}
			var out string
			out, err = data.render(tmpl, Platform{"linux", "arm", "v7"})
			if err == nil && !strings.Contains(s, "{{") && out != s {
				t.Fatalf("text without actions %q rendered as %q", s, out)
			}
		}
		if err != nil {
			// As the command prints it: options named as flags.
			if msg := cli.Flags(err).Error(); !strings.HasPrefix(msg, "--ldflags template: ") || strings.ContainsAny(msg, "\r\n") {
				t.Fatalf("error is not one line naming --ldflags: %q", msg)
			}
		}
	})
}
