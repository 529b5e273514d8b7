package promote

import (
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strings"
	"text/template"
)

// tagFields are the fields a tag template may use, as written in one.
func tagFields() string {
	t := reflect.TypeFor[TagData]()
	names := make([]string, t.NumField())
	for i := range names {
		names[i] = "." + t.Field(i).Name
	}
	return strings.Join(names, ", ")
}

var unknownField = regexp.MustCompile(`can't evaluate field (\w+)`)

// templateError says what is wrong with a tag template in the template's
// own terms: text/template names the Go type it evaluated a field in,
// which a config author never wrote.
func templateError(t string, err error) error {
	if m := unknownField.FindStringSubmatch(err.Error()); m != nil {
		return fmt.Errorf("tag template %q: no field .%s; valid: %s", t, m[1], tagFields())
	}
	return fmt.Errorf("tag template %q: %w", t, err)
}

// checkTagTemplate parses t and runs it on sample data, so that a typo is
// found when the config is read, not at the promotion.
func checkTagTemplate(t string) error {
	tmpl, err := template.New("tag").Option("missingkey=error").Parse(t)
	if err != nil {
		return templateError(t, err)
	}
	sample := TagData{Environment: "e", Digest: "sha256:0", ShortDigest: "0", Version: "1", Revision: "0", Created: "0", Source: "s"}
	if err := tmpl.Execute(io.Discard, sample); err != nil {
		return templateError(t, err)
	}
	return nil
}
