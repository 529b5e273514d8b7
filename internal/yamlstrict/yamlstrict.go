// Package yamlstrict decodes configuration files written by people: an
// unknown key is an error, and every error is one line without the Go
// type names the decoder puts in its messages.
package yamlstrict

import (
	"bytes"
	"errors"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Decode decodes data into v, refusing keys v has no field for. An empty
// document leaves v as it is.
func Decode(data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return Clean(err)
	}
	return nil
}

// Clean makes a decoding error one line: yaml lists each field error on a
// line of its own, and the key or value it quotes may hold a line break.
// The Go type names its messages end with are dropped, and so is its
// "yaml: " prefix.
func Clean(err error) error {
	if err == nil {
		return nil
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return errors.New(escapeLineBreaks.Replace(strings.TrimPrefix(err.Error(), "yaml: ")))
	}
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		if j := strings.LastIndex(m, " in type "); j >= 0 {
			m = m[:j]
		} else if j := strings.LastIndex(m, " into "); j >= 0 {
			m = m[:j]
		}
		msgs[i] = escapeLineBreaks.Replace(strings.TrimSpace(m))
	}
	return errors.New(strings.Join(msgs, "; "))
}

var escapeLineBreaks = strings.NewReplacer("\r", `\r`, "\n", `\n`)
