package text

import (
	"path/filepath"
	"testing"
)

func TestRel(t *testing.T) {
	root := filepath.FromSlash("/work/repo")
	for _, tc := range []struct{ p, want string }{
		{"/work/repo/cmd/app/main.go", "cmd/app/main.go"},
		{"/work/repo", "."},
		{"/work/repo/..foo/x.go", "..foo/x.go"},
		{"/work/other/x.go", "/work/other/x.go"},
		{"/work", "/work"},
	} {
		if got := Rel(root, filepath.FromSlash(tc.p)); got != tc.want {
			t.Errorf("Rel(%s) = %q, want %q", tc.p, got, tc.want)
		}
	}
	if got := Rel("", filepath.FromSlash("a/b")); got != "a/b" {
		t.Errorf("Rel with no root = %q", got)
	}
}

func TestShortDigest(t *testing.T) {
	for in, want := range map[string]string{
		"sha256:0123456789abcdef0123": "sha256:0123456789ab",
		"sha256:0123":                 "sha256:0123",
		"plain":                       "plain",
	} {
		if got := ShortDigest(in); got != want {
			t.Errorf("ShortDigest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPluralAndOneLine(t *testing.T) {
	if Plural(1, "gate") != "gate" || Plural(0, "gate") != "gates" || Plural(2, "gate") != "gates" {
		t.Error("Plural")
	}
	if got := OneLine("a\n  b\tc "); got != "a b c" {
		t.Errorf("OneLine = %q", got)
	}
}
