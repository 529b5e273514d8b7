package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// FuzzRead reads arbitrary bytes as a findings stream, as slipway scan
// --findings does: an error is one line; a stream accepted loses none of
// its messages, reads back the same once written, and renders in every
// format without a panic.
func FuzzRead(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		`{"scan":{"slipway":"v1"}}`,
		`{"scan":{"slipway":"v1","bogus":1}}`,
		`{"scan":{"slipway":"v1"}}` + "\n{}",
		`{"finding":{"id":"X","kind":"vulnerability","severity":"LOW","scanners":["trivy"]}}`,
		`{"scan":{"slipway":"v1"},"finding":{"id":"X","severity":"BOGUS","locations":[{"path":"a","line":-1}],"waiver":{"id":"X"}}}`,
		`{"scan":{}}{"verdict":{"pass":false,"counts":{"critical":-1}}}{"scanner":{"name":"trivy","db":{}}}`,
		`SARIF?`,
		`{"config":{"protocol_version":"v1.0.0"}}`,
		"{\"scan\":{\"slipway\":\"v1\"}}\n{\"scan\":null,\"finding\":null}",
		"\xff\xfe{",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := Read(bytes.NewReader(data))
		if err != nil {
			if msg := err.Error(); strings.ContainsAny(msg, "\r\n") {
				t.Fatalf("error spans lines: %q", msg)
			}
			return
		}
		for n, m := range messages(t, data) {
			if len(m) != 1 {
				t.Fatalf("message %d has %d entries, and Read took it: %s", n+1, len(m), data)
			}
		}
		var buf bytes.Buffer
		if err := Send(rep, NewJSONHandler(&buf)); err != nil {
			t.Fatal(err)
		}
		again, err := Read(&buf)
		if err != nil {
			t.Fatalf("the report read, written out, does not read: %v\n%s", err, buf.Bytes())
		}
		if diff := cmp.Diff(rep, again, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("written out and read again (-first +again):\n%s", diff)
		}
		for name, format := range Formats {
			if err := Send(rep, format(io.Discard)); err != nil && strings.ContainsAny(err.Error(), "\r\n") {
				t.Errorf("%s: error spans lines: %q", name, err)
			}
		}
	})
}

// messages returns the entries each message of a stream sets, by name in
// lower case (the decoder matches names in any case).
func messages(t *testing.T, data []byte) []map[string]bool {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	var out []map[string]bool
	for {
		var raw map[string]json.RawMessage
		if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatalf("Read took a stream that is not JSON objects: %v", err)
		}
		set := map[string]bool{}
		for k, v := range raw {
			if string(v) != "null" {
				set[strings.ToLower(k)] = true
			}
		}
		out = append(out, set)
	}
}
