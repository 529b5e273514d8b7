package report

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// Formats maps each format's name to its handler.
var Formats = map[string]func(io.Writer) Handler{
	"text":        NewTextHandler,
	"json":        NewJSONHandler,
	"sarif":       NewSARIFHandler,
	"gitlab":      NewGitLabContainerHandler, // container_scanning
	"gitlab-sast": NewGitLabSASTHandler,
	"summary":     NewSummaryHandler,
	"annotations": NewAnnotationsHandler,
}

// FormatNames lists the formats, for messages.
func FormatNames() []string {
	var names []string
	for n := range Formats {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Output is one format written to one place: a file, or stdout if File is
// empty.
type Output struct {
	Format string
	File   string
}

// ParseOutput reads FORMAT or FORMAT=FILE.
func ParseOutput(s string) (Output, error) {
	name, file, _ := strings.Cut(strings.TrimSpace(s), "=")
	name = strings.ToLower(strings.TrimSpace(name))
	if _, ok := Formats[name]; !ok {
		return Output{}, fmt.Errorf("unknown format %q (want one of %s)", name, strings.Join(FormatNames(), ", "))
	}
	return Output{Format: name, File: strings.TrimSpace(file)}, nil
}
