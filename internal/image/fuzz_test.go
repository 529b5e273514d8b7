package image

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/google/go-cmp/cmp"
)

// oneLine fails t if err's message spans lines.
func oneLine(t *testing.T, err error) {
	t.Helper()
	if msg := err.Error(); strings.ContainsAny(msg, "\r\n") {
		t.Fatalf("error spans lines: %q", msg)
	}
}

// FuzzParseMeta checks --label and --annotation: keys accepted are
// reverse-DNS words, values hold no control character but tab, and the
// pairs written back as KEY=VALUE read as the same map.
func FuzzParseMeta(f *testing.F) {
	for _, p := range [][2]string{
		{"org.example.team=payments", "a=b=c"},
		{"org.example.note=", "k=1"},
		{"team", "=x"},
		{"my team=x", "org.example.=x"},
		{"k=a\nb", "k=a\tb"},
		{"k=\x7f", "k=\u0085"},
	} {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		m, err := ParseMeta("label", []string{a, b})
		if err != nil {
			oneLine(t, err)
			return
		}
		var pairs []string
		for k, v := range m {
			if !metaKey.MatchString(k) {
				t.Fatalf("accepted key %q", k)
			}
			if strings.ContainsFunc(v, func(r rune) bool { return unicode.IsControl(r) && r != '\t' }) {
				t.Fatalf("accepted value %q of %s, which has a control character", v, k)
			}
			pairs = append(pairs, k+"="+v)
		}
		again, err := ParseMeta("label", pairs)
		if err != nil {
			t.Fatalf("%q, written back as %q, does not parse: %v", []string{a, b}, pairs, err)
		}
		if diff := cmp.Diff(m, again); diff != "" {
			t.Fatalf("written back and parsed again (-first +again):\n%s", diff)
		}
	})
}

// FuzzParseEnv checks that --env accepts only KEY=VALUE with KEY a
// variable name, and passes what it accepts on unchanged.
func FuzzParseEnv(f *testing.F) {
	for _, s := range []string{"GOMEMLIMIT=200MiB", "EMPTY=", "NOVALUE", "1X=a", "A B=c", "=x", "_X=a=b\nc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		env, err := ParseEnv([]string{s})
		if err != nil {
			oneLine(t, err)
			return
		}
		k, _, ok := strings.Cut(s, "=")
		if !ok || !envKey.MatchString(k) || !slices.Equal(pairs(env), []string{s}) {
			t.Fatalf("parseEnv(%q) = %q", s, env)
		}
	})
}

var portRE = regexp.MustCompile(`^[1-9][0-9]{0,4}/(tcp|udp|sctp)$`)

// FuzzParsePorts checks that --port values come out as PORT/PROTO with
// PORT 1-65535, sorted, and that the output is its own normal form.
func FuzzParsePorts(f *testing.F) {
	for _, p := range [][2]string{{"9090", "53/udp"}, {"8080/tcp", "8080"}, {"0", "65536"}, {"80/http", "http"}, {"+80", "0080/sctp"}, {"-1", "80/"}} {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ports, err := parsePorts([]string{a, b})
		if err != nil {
			oneLine(t, err)
			return
		}
		for _, p := range ports {
			num, _, _ := strings.Cut(p, "/")
			if n, err := strconv.Atoi(num); !portRE.MatchString(p) || err != nil || n < 1 || n > 65535 {
				t.Fatalf("parsePorts(%q, %q) gave %q", a, b, p)
			}
		}
		if !slices.IsSorted(ports) {
			t.Fatalf("parsePorts(%q, %q) = %q, not sorted", a, b, ports)
		}
		again, err := parsePorts(ports)
		if err != nil || !slices.Equal(again, ports) {
			t.Fatalf("parsePorts(%q) = %q, %v; want it unchanged", ports, again, err)
		}
	})
}

// FuzzParseLayoutSpec checks that oci:DIR[:tag|@digest] splits into parts
// that join back into the spec.
func FuzzParseLayoutSpec(f *testing.F) {
	for _, s := range []string{"base", "./out/base:nonroot", "/x/base@sha256:abc", "/a:b/base", "a@b", "a:", "c:/x/base:tag", "a@b:c/d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		path, tag, digest := parseLayoutSpec(s)
		joined := path
		switch {
		case tag != "" && digest != "":
			t.Fatalf("parseLayoutSpec(%q) gave both tag %q and digest %q", s, tag, digest)
		case digest != "":
			joined += "@" + digest
		case tag != "":
			joined += ":" + tag
		}
		if joined != s && joined+":" != s {
			t.Fatalf("parseLayoutSpec(%q) = %q, %q, %q", s, path, tag, digest)
		}
		if strings.Contains(tag, "/") {
			t.Fatalf("parseLayoutSpec(%q) took a path for tag %q", s, tag)
		}
	})
}

// FuzzParsePlatform checks that os/arch[/variant] reads back from its own
// rendering.
func FuzzParsePlatform(f *testing.F) {
	for _, s := range []string{"linux/amd64", "linux/arm/v7", "linux", "linux/arm/v7/x", "/amd64", "linux/", "linux/amd64/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePlatform(s)
		if err != nil {
			oneLine(t, err)
			return
		}
		if p.OS == "" || p.Architecture == "" {
			t.Fatalf("parsePlatform(%q) = %+v", s, p)
		}
		again, err := parsePlatform(platformString(p))
		if err != nil || !cmp.Equal(again, p) {
			t.Fatalf("parsePlatform(%q) = %+v, which reads back as %+v, %v", s, p, again, err)
		}
	})
}
