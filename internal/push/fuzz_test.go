package push

import (
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/slipwayci/slipway/internal/cli"
)

// ociTag is the tag grammar of the OCI distribution spec.
var ociTag = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

// FuzzSanitizeTag checks that what SanitizeTag returns is empty or a valid
// tag, and that a valid tag is left as it is.
func FuzzSanitizeTag(f *testing.F) {
	for _, s := range []string{"v1.2.3", "feature/Add Thing!", "-.leading", "ünïcode", "   ", "_x", strings.Repeat("a", 200), "a\x00b", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := SanitizeTag(s)
		if got != "" && !ociTag.MatchString(got) {
			t.Fatalf("SanitizeTag(%q) = %q, not a valid tag", s, got)
		}
		if again := SanitizeTag(got); again != got {
			t.Fatalf("SanitizeTag(%q) = %q, but SanitizeTag(%q) = %q", s, got, got, again)
		}
		if ociTag.MatchString(s) && got != s {
			t.Fatalf("SanitizeTag(%q) = %q, changed a valid tag", s, got)
		}
	})
}

// FuzzTags computes tags from arbitrary specs, flavors and git state: every
// tag is a valid tag, listed once, and an error is one line.
func FuzzTags(f *testing.F) {
	for _, s := range []struct {
		spec, flavor, tag, branch, pr string
		schedule                      bool
	}{
		{"type=semver,pattern={{major}}.{{minor}}", "", "v1.2.3", "", "", false},
		{"type=semver,pattern={{raw}},value={{branch}}", "latest=auto", "", "v2.0.0-rc.1", "", false},
		{"type=ref,event=branch,prefix=br-", "prefix=app-,suffix=-linux", "", "feature/Add Thing!", "", false},
		{"type=ref,event=pr", "onlatest=true,latest=true", "", "fix", "42", false},
		{"type=schedule,pattern={{date 'YYYYMMDD-HHmmss'}}", "", "", "main", "", true},
		{"type=raw,value={{branch}}-{{sha}},enable={{is_default_branch}}", "", "", "main", "", false},
		{"type=edge,branch=main", "", "", "main", "", false},
		{"type=sha,format=long,priority=2000", "latest=false", "", "", "", false},
		{"release-{{tag}}", "", "r1", "", "", false},
		{"type=raw,value={{version}}", "colour=blue", "", "", "", false},
		{"type=raw,value={{nope\n}}", "", "", "", "", false},
		{"type=raw,value={{nope\n}}", "a\nb=c", "", "", "", false},
	} {
		f.Add(s.spec, s.flavor, s.tag, s.branch, s.pr, s.schedule)
	}
	f.Fuzz(func(t *testing.T, spec, flavor, tag, branch, pr string, schedule bool) {
		c := TagContext{
			Commit: commit, Tag: tag, Branch: branch, PR: pr, DefaultBranch: "main",
			BaseRef: "main", Schedule: schedule, Date: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		}
		tags, err := Tags(strings.Split(spec, ";"), strings.Split(flavor, ";"), c)
		if err != nil {
			if msg := err.Error(); strings.ContainsAny(msg, "\r\n") {
				t.Fatalf("error spans lines: %q", msg)
			}
			return
		}
		for i, tg := range tags {
			if !ociTag.MatchString(tg) {
				t.Fatalf("tag %q is not a valid tag", tg)
			}
			if slices.Contains(tags[:i], tg) {
				t.Fatalf("tag %q listed twice in %q", tg, tags)
			}
		}
	})
}

// FuzzParseDestinations reads --to values as the flag delivers them (one
// per line, trimmed): an accepted destination is a lower-case repository
// without tag or digest that reads back as itself.
func FuzzParseDestinations(f *testing.F) {
	for _, s := range []string{
		"ghcr.io/acme/app",
		"ghcr.io/Acme/App\nlocalhost:5000/app",
		"ghcr.io/acme/app:1.2.3",
		"ghcr.io/acme/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"Not A Repo",
		"app",
		"[::1]:5000/app",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, to string) {
		var values cli.List
		values.Set(to)
		repos, err := parseDestinations(values.Values, []string{"localhost:5000"}, io.Discard)
		if err != nil {
			if msg := err.Error(); strings.Contains(msg, "\n") {
				t.Fatalf("error spans lines: %q", msg)
			}
			return
		}
		for _, r := range repos {
			s := r.String()
			if s != strings.ToLower(s) || strings.ContainsAny(s, "@") {
				t.Fatalf("destination %q from %q is not a lower-case repository", s, to)
			}
			if len(r.RepositoryStr()) > 255 {
				// go-containerregistry checks the length before it adds
				// Docker Hub's library/; the registry refuses it at push.
				continue
			}
			again, err := name.NewRepository(s)
			if err != nil || again.String() != s {
				t.Fatalf("destination %q reads back as %v, %v", s, again, err)
			}
		}
	})
}
