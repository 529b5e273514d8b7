package policy

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/slipwayci/slipway/internal/report"
	"github.com/slipwayci/slipway/internal/yamlstrict"
)

// WaiversFile is where the waivers live, relative to the repository root.
const WaiversFile = ".slipway/waivers.yaml"

// Waiver accepts one finding, by ID or alias, for the reason given and
// until it expires. One file serves every scanner.
//
//	waivers:
//	  - id: CVE-2022-32149          # or GHSA-…, GO-…, a gosec rule
//	    scope:                      # optional; every field given must match
//	      package: golang.org/x/text
//	      path: internal/legacy/**  # a source path or a path in the image
//	      image: ghcr.io/acme/*     # the scanned image's name
//	    reason: ParseAcceptLanguage is not called; upgrade in #41
//	    expires: 2027-03-31         # optional; through the end of that day, UTC
type Waiver struct {
	ID      string `yaml:"id"`
	Scope   Scope  `yaml:"scope"`
	Reason  string `yaml:"reason"`
	Expires Date   `yaml:"expires"`
	// Line is where the waiver starts in its file.
	Line int `yaml:"-"`
}

// Scope narrows a waiver to some findings.
type Scope struct {
	Image   string `yaml:"image"`
	Package string `yaml:"package"`
	Path    string `yaml:"path"`
}

// Date is a day, written YYYY-MM-DD.
type Date struct{ time.Time }

// UnmarshalYAML reads YYYY-MM-DD and nothing else, so that a waiver's
// life is never guessed from a sloppy date.
func (d *Date) UnmarshalYAML(n *yaml.Node) error {
	t, err := time.Parse(time.DateOnly, n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: expires %q is not a date written YYYY-MM-DD", n.Line, n.Value)
	}
	if t.Year() < 1970 {
		// The zero date would read as no expiry at all.
		return fmt.Errorf("line %d: expires %q is before 1970; give the waiver's real last day", n.Line, n.Value)
	}
	d.Time = t
	return nil
}

func (d Date) String() string {
	if d.IsZero() {
		return ""
	}
	return d.Format(time.DateOnly)
}

// Expired reports whether now is past the waiver's last day.
func (w Waiver) Expired(now time.Time) bool {
	return !w.Expires.IsZero() && !now.Before(w.Expires.AddDate(0, 0, 1))
}

// Matches reports whether the waiver covers the finding.
func (w Waiver) Matches(f *report.Finding, t Target) bool {
	idOK := false
	for _, id := range f.IDs() {
		if strings.EqualFold(id, w.ID) {
			idOK = true
			break
		}
	}
	if !idOK {
		return false
	}
	s := w.Scope
	if s.Package != "" && !match(s.Package, f.Package) {
		return false
	}
	if s.Image != "" && (!f.InImage() || !(match(s.Image, t.Image) || match(s.Image, repository(t.Image)))) {
		return false
	}
	if s.Path != "" {
		found := false
		for _, l := range f.Locations {
			if match(s.Path, strings.TrimPrefix(l.Path, "/")) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// match is path.Match, plus a lone * or ** for anything and a trailing
// /** for everything under a directory.
func match(pattern, name string) bool {
	if pattern == "*" || pattern == "**" {
		return true
	}
	if dir, ok := strings.CutSuffix(pattern, "/**"); ok {
		return name == dir || strings.HasPrefix(name, dir+"/")
	}
	ok, _ := path.Match(pattern, name)
	return ok
}

// repository strips a tag or digest from an image name.
func repository(name string) string {
	name, _, _ = strings.Cut(name, "@")
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name = name[:i]
	}
	return name
}

// LoadWaivers reads a waiver file. A file that does not exist holds no
// waivers unless required. Unknown keys, a waiver without an id or a
// reason, a bad date or a bad pattern are configuration errors.
func LoadWaivers(file string, required bool) ([]Waiver, error) {
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) && !required {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading waivers: %w", err)
	}
	ws, err := ParseWaivers(data)
	if err != nil {
		return nil, fmt.Errorf("reading waivers %s: %w", file, err)
	}
	return ws, nil
}

// ParseWaivers decodes a waiver file strictly.
func ParseWaivers(data []byte) ([]Waiver, error) {
	var doc struct {
		Waivers []Waiver `yaml:"waivers"`
	}
	if err := yamlstrict.Decode(data, &doc); err != nil {
		return nil, err
	}
	// Decoded again as nodes, only to say on which line each waiver is.
	var nodes struct {
		Waivers []yaml.Node `yaml:"waivers"`
	}
	if err := yaml.Unmarshal(data, &nodes); err != nil {
		return nil, fmt.Errorf("decoding waivers: %w", yamlstrict.Clean(err))
	}
	// The decoder drops an empty entry ("- " alone) from the list, which
	// would put every later waiver on the wrong line.
	for _, n := range nodes.Waivers {
		r := &n
		for r.Kind == yaml.AliasNode && r.Alias != nil {
			r = r.Alias
		}
		if r.ShortTag() == "!!null" {
			return nil, fmt.Errorf("line %d: empty waiver; give it an id and a reason", n.Line)
		}
	}
	if len(nodes.Waivers) != len(doc.Waivers) {
		return nil, errors.New("decoding waivers: the list does not read the same twice")
	}
	for i := range doc.Waivers {
		w := &doc.Waivers[i]
		w.Line = nodes.Waivers[i].Line
		w.ID = strings.TrimSpace(w.ID)
		w.Reason = strings.TrimSpace(w.Reason)
		switch {
		case w.ID == "":
			return nil, fmt.Errorf("line %d: waiver has no id", w.Line)
		case strings.ContainsFunc(w.ID, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
			// No finding's ID has a space, and the ID is quoted in messages.
			return nil, fmt.Errorf("line %d: waiver id %q is not one word, e.g. CVE-2022-32149", w.Line, w.ID)
		case w.Reason == "":
			return nil, fmt.Errorf("line %d: waiver %s has no reason; say why the risk is accepted", w.Line, w.ID)
		}
		for _, p := range []string{w.Scope.Image, w.Scope.Package, strings.TrimSuffix(w.Scope.Path, "/**")} {
			if _, err := path.Match(p, ""); err != nil {
				return nil, fmt.Errorf("line %d: waiver %s: bad pattern %q", w.Line, w.ID, p)
			}
		}
	}
	return doc.Waivers, nil
}
