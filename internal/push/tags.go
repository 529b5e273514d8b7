package push

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Tags are computed the way docker/metadata-action computes them, from a
// list of specs such as "type=semver,pattern={{major}}.{{minor}}", so a
// workflow moving to slipway keeps its tags. Differences: the date in
// {{date}} is the source date, not the clock (a rerun gives the same tags),
// and there is no pep440 or match type.

// DefaultTags is used when no --tag is given: a release v1.2.3 gives 1.2.3,
// 1.2, 1 and latest; a branch its name, a pull request pr-N, a scheduled run
// nightly, and every commit sha-<short>.
func DefaultTags() []string {
	return []string{
		"type=schedule",
		"type=semver,pattern={{version}}",
		"type=semver,pattern={{major}}.{{minor}}",
		"type=semver,pattern={{major}}",
		"type=ref,event=branch",
		"type=ref,event=pr",
		"type=sha",
	}
}

// TagContext is what tags are computed from: the commit and how CI came to
// build it.
type TagContext struct {
	Commit string
	// Tag is the git tag being released, e.g. v1.2.3 ("" if none).
	Tag string
	// Branch is the branch pushed to, or a pull request's head branch.
	Branch string
	// PR is the pull or merge request number ("" if none).
	PR            string
	BaseRef       string // a pull request's target branch
	DefaultBranch string
	Schedule      bool      // a scheduled (nightly) run
	Date          time.Time // the source date, for {{date}}
}

// tagTypes are the spec types, with metadata-action's priorities: the
// highest-priority value comes first in the list.
var tagTypes = map[string]int{
	"schedule": 1000,
	"semver":   900,
	"edge":     700,
	"ref":      600,
	"raw":      200,
	"sha":      100,
}

func tagTypeNames() string {
	names := make([]string, 0, len(tagTypes))
	for n := range tagTypes {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// tagSpec is one parsed spec.
type tagSpec struct {
	typ      string
	attrs    map[string]string
	priority int
	order    int
}

// flavor holds metadata-action's flavor: when to add latest, and a prefix
// and suffix for every tag.
type flavor struct {
	latest   string // auto, true or false
	prefix   string
	suffix   string
	onLatest bool // prefix and suffix latest too
}

// Tags computes the tags for c from specs (DefaultTags if empty) and the
// flavor entries (latest=auto|true|false, prefix=, suffix=, onlatest=).
// Tags are sanitised to valid OCI tags and listed once each, highest
// priority first.
func Tags(specs, flavorSpecs []string, c TagContext) ([]string, error) {
	if len(specs) == 0 {
		specs = DefaultTags()
	}
	fl, err := parseFlavor(flavorSpecs)
	if err != nil {
		return nil, err
	}
	var parsed []tagSpec
	for i, s := range specs {
		ts, err := parseTagSpec(s, i)
		if err != nil {
			return nil, err
		}
		parsed = append(parsed, ts)
	}
	slices.SortStableFunc(parsed, func(a, b tagSpec) int { return b.priority - a.priority })

	var tags []string
	latest := fl.latest == "true"
	add := func(t string) {
		if t = SanitizeTag(t); t != "" && !slices.Contains(tags, t) {
			tags = append(tags, t)
		}
	}
	for _, ts := range parsed {
		enabled, err := ts.enabled(c)
		if err != nil {
			return nil, err
		}
		if !enabled {
			continue
		}
		value, votesLatest, err := ts.value(c)
		if err != nil {
			return nil, err
		}
		if value == "" {
			continue
		}
		if fl.latest == "auto" && votesLatest {
			latest = true
		}
		pre, err := expand(ts.attrs["prefix"], c)
		if err != nil {
			return nil, err
		}
		suf, err := expand(ts.attrs["suffix"], c)
		if err != nil {
			return nil, err
		}
		add(fl.prefix + pre + value + suf + fl.suffix)
	}
	if latest {
		if fl.onLatest {
			add(fl.prefix + "latest" + fl.suffix)
		} else {
			add("latest")
		}
	}
	return tags, nil
}

func parseFlavor(specs []string) (flavor, error) {
	fl := flavor{latest: "auto"}
	for _, s := range specs {
		for _, kv := range splitAttrs(s) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return fl, fmt.Errorf("flavor %q: want key=value", kv)
			}
			switch k = strings.TrimSpace(k); k {
			case "latest":
				if v != "auto" && v != "true" && v != "false" {
					return fl, fmt.Errorf("flavor latest=%q: want auto, true or false", v)
				}
				fl.latest = v
			case "prefix":
				fl.prefix = v
			case "suffix":
				fl.suffix = v
			case "onlatest":
				fl.onLatest = v == "true"
			default:
				return fl, fmt.Errorf("flavor %q: unknown key %q; valid: latest, prefix, suffix, onlatest", kv, k)
			}
		}
	}
	return fl, nil
}

// splitAttrs splits a spec at commas, trimming each part.
func splitAttrs(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseTagSpec reads "type=T,key=value,…"; a spec without type= is a raw
// value, as in metadata-action.
func parseTagSpec(s string, order int) (tagSpec, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "type=") {
		return tagSpec{typ: "raw", attrs: map[string]string{"value": s}, priority: tagTypes["raw"], order: order}, nil
	}
	ts := tagSpec{attrs: map[string]string{}, order: order}
	for _, kv := range splitAttrs(s) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return ts, fmt.Errorf("tag spec %q: %q is not key=value", s, kv)
		}
		k = strings.TrimSpace(k)
		if k == "type" {
			ts.typ = v
			continue
		}
		ts.attrs[k] = v
	}
	prio, ok := tagTypes[ts.typ]
	if !ok {
		return ts, fmt.Errorf("tag spec %q: unknown type %q; valid: %s", s, ts.typ, tagTypeNames())
	}
	ts.priority = prio
	if p, ok := ts.attrs["priority"]; ok {
		n, err := strconv.Atoi(p)
		if err != nil {
			return ts, fmt.Errorf("tag spec %q: priority %q is not a number", s, p)
		}
		ts.priority = n
	}
	switch ts.typ {
	case "semver":
		if ts.attrs["pattern"] == "" {
			return ts, fmt.Errorf("tag spec %q: type=semver needs pattern=, e.g. {{version}}", s)
		}
	case "ref":
		if e := ts.attrs["event"]; e != "branch" && e != "tag" && e != "pr" {
			return ts, fmt.Errorf("tag spec %q: type=ref needs event=branch, tag or pr", s)
		}
	case "raw":
		if ts.attrs["value"] == "" {
			return ts, fmt.Errorf("tag spec %q: type=raw needs value=", s)
		}
	case "sha":
		if f := ts.attrs["format"]; f != "" && f != "short" && f != "long" {
			return ts, fmt.Errorf("tag spec %q: format must be short or long", s)
		}
		if _, ok := ts.attrs["prefix"]; !ok {
			ts.attrs["prefix"] = "sha-"
		}
	}
	return ts, nil
}

func (ts tagSpec) enabled(c TagContext) (bool, error) {
	e, ok := ts.attrs["enable"]
	if !ok {
		return true, nil
	}
	v, err := expand(e, c)
	if err != nil {
		return false, err
	}
	switch strings.TrimSpace(v) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("tag spec type=%s: enable=%q is %q, want true or false", ts.typ, e, v)
}

// value returns the spec's tag before prefix and suffix, and whether it
// asks for latest under latest=auto.
func (ts tagSpec) value(c TagContext) (string, bool, error) {
	switch ts.typ {
	case "schedule":
		if !c.Schedule {
			return "", false, nil
		}
		p := ts.attrs["pattern"]
		if p == "" {
			p = "nightly"
		}
		v, err := expand(p, c)
		return v, false, err
	case "semver":
		return ts.semver(c)
	case "edge":
		branch := ts.attrs["branch"]
		if branch == "" {
			branch = c.DefaultBranch
		}
		if c.PR == "" && c.Branch != "" && c.Branch == branch {
			return "edge", false, nil
		}
		return "", false, nil
	case "ref":
		switch ts.attrs["event"] {
		case "branch":
			if c.PR == "" {
				return c.Branch, false, nil
			}
		case "tag":
			return c.Tag, c.Tag != "", nil
		case "pr":
			if c.PR != "" {
				return "pr-" + c.PR, false, nil
			}
		}
		return "", false, nil
	case "raw":
		// A raw value names the tag outright: an expression with nothing
		// behind it would silently push no tag, or half of one.
		for _, m := range exprRE.FindAllString(ts.attrs["value"], -1) {
			if v, err := expand(m, c); err == nil && v == "" {
				return "", false, fmt.Errorf("tag spec type=raw,value=%s: %s is empty in this run; give enable=... to skip it when empty, or use type=ref,event=tag", ts.attrs["value"], m)
			}
		}
		v, err := expand(ts.attrs["value"], c)
		return v, false, err
	case "sha":
		if ts.attrs["format"] == "long" {
			return c.Commit, false, nil
		}
		return shortSHA(c.Commit), false, nil
	}
	return "", false, fmt.Errorf("tag type %q", ts.typ)
}

var semverRE = regexp.MustCompile(`^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$`)

// semver applies pattern to the git tag (or value=). A pre-release gives
// only its full version, whatever the pattern, since 1.2 and 1 must not move
// to a release candidate; it never asks for latest.
func (ts tagSpec) semver(c TagContext) (string, bool, error) {
	raw := c.Tag
	if v, ok := ts.attrs["value"]; ok {
		var err error
		if raw, err = expand(v, c); err != nil {
			return "", false, err
		}
	}
	m := semverRE.FindStringSubmatch(strings.TrimSpace(raw))
	if m == nil {
		return "", false, nil
	}
	version := m[1] + "." + m[2] + "." + m[3]
	if m[4] != "" {
		version += "-" + m[4]
	}
	pattern := ts.attrs["pattern"]
	pre := m[4] != ""
	if pre && !strings.Contains(pattern, "{{raw}}") {
		pattern = "{{version}}"
	}
	out := strings.NewReplacer(
		"{{raw}}", raw, "{{version}}", version,
		"{{major}}", m[1], "{{minor}}", m[2], "{{patch}}", m[3],
	).Replace(pattern)
	out, err := expand(out, c)
	return out, !pre, err
}

func shortSHA(commit string) string {
	if len(commit) > 7 {
		return commit[:7]
	}
	return commit
}

var exprRE = regexp.MustCompile(`\{\{\s*([a-z_]+)((?:\s+[^}]*)?)\s*\}\}`)

// expand replaces metadata-action's global expressions: {{branch}},
// {{tag}}, {{sha}}, {{base_ref}}, {{is_default_branch}} and
// {{date 'YYYYMMDD'}} (moment.js tokens; the source date, in UTC).
func expand(s string, c TagContext) (string, error) {
	var err error
	out := exprRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := exprRE.FindStringSubmatch(m)
		switch sub[1] {
		case "branch":
			return c.Branch
		case "tag":
			return c.Tag
		case "sha":
			return shortSHA(c.Commit)
		case "base_ref":
			return c.BaseRef
		case "is_default_branch":
			return strconv.FormatBool(c.PR == "" && c.Branch != "" && c.Branch == c.DefaultBranch)
		case "date":
			f := strings.Trim(strings.TrimSpace(sub[2]), `'"`)
			if f == "" {
				f = "YYYYMMDD"
			}
			return formatDate(c.Date, f)
		}
		if err == nil {
			err = fmt.Errorf("unknown expression %q in %q; valid: branch, tag, sha, base_ref, is_default_branch, date", m, s)
		}
		return m
	})
	return out, err
}

// formatDate formats t with moment.js tokens, longest first.
func formatDate(t time.Time, f string) string {
	t = t.UTC()
	return strings.NewReplacer(
		"YYYY", fmt.Sprintf("%04d", t.Year()),
		"YY", fmt.Sprintf("%02d", t.Year()%100),
		"MM", fmt.Sprintf("%02d", int(t.Month())),
		"DD", fmt.Sprintf("%02d", t.Day()),
		"HH", fmt.Sprintf("%02d", t.Hour()),
		"mm", fmt.Sprintf("%02d", t.Minute()),
		"ss", fmt.Sprintf("%02d", t.Second()),
	).Replace(f)
}

var invalidTagChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// SanitizeTag makes s a valid OCI tag, [A-Za-z0-9_][A-Za-z0-9._-]{0,127}, as
// metadata-action does: runs of other characters become "-" (a branch
// feature/x gives feature-x). It returns "" if nothing is left.
func SanitizeTag(s string) string {
	s = invalidTagChars.ReplaceAllString(strings.TrimSpace(s), "-")
	s = strings.TrimLeft(s, ".-")
	if len(s) > 128 {
		s = s[:128]
	}
	return s
}
