// Package text holds the small wording helpers every step shares, so that
// a digest, a size or a path reads the same in every step's output.
package text

import (
	"path"
	"path/filepath"
	"strings"
)

// Plural is word when n is one, else its plural: the one given, or word
// with an s.
func Plural(n int, word string, plural ...string) string {
	if n == 1 {
		return word
	}
	if len(plural) > 0 {
		return plural[0]
	}
	return word + "s"
}

// ShortDigest shortens a digest to its algorithm and first 12 hex digits:
// sha256:abcdef012345.
func ShortDigest(d string) string {
	if _, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return d[:len(d)-len(hex)] + hex[:12]
	}
	return d
}

// Rel makes p relative to root, with forward slashes. A path outside root
// stays as it is; one inside whose name starts with dots (..foo) is inside.
func Rel(root, p string) string {
	if root == "" {
		return filepath.ToSlash(p)
	}
	r, err := filepath.Rel(root, p)
	if err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return filepath.ToSlash(p)
	}
	return path.Clean(filepath.ToSlash(r))
}

// OneLine folds s onto one line, runs of white space made one space: a
// multi-line message is a hard read in a CI log.
func OneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
