package report

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/slipwayci/slipway/internal/text"
)

// NewTextHandler returns the text format: a table for a terminal or a log.
func NewTextHandler(w io.Writer) Handler {
	return Collect(func(r *Report) error { return writeText(w, r) })
}

func writeText(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", Headline(r))
	for _, s := range r.Scanners {
		fmt.Fprintf(&b, "  %s\n", scannerLine(s))
	}
	if r.Scan.Grades != nil {
		fmt.Fprintf(&b, "  %s\n", gradesLine(r.Scan.Grades))
	}
	b.WriteString("\n")
	if len(r.Findings) == 0 {
		b.WriteString("No findings.\n")
	} else {
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEVERITY\tID\tPACKAGE\tVERSION\tFIXED\tREACH\tWHERE\tTITLE")
		for _, f := range r.Findings {
			sev := string(f.Severity)
			if f.Waived() {
				sev = "waived"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
				sev, f.ID, orDash(clean(f.Package, 50)), orDash(f.Version), orDash(f.FixedVersion),
				orDash(reach(f)), orDash(where(f)), clean(f.Title, 70))
		}
		tw.Flush()
	}
	b.WriteString("\n")
	c := countsOf(r)
	fmt.Fprintf(&b, "%s\n", CountsLine(c))
	if v := r.Verdict; v != nil {
		for _, u := range v.Waivers {
			fmt.Fprintf(&b, "%s\n", waiverLine(u))
		}
		fmt.Fprintf(&b, "%s\n", VerdictLine(v))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Headline names what was scanned, in one line.
func Headline(r *Report) string {
	var parts []string
	if r.Scan.Module != "" {
		src := r.Scan.Module
		if r.Scan.Source != "" && r.Scan.Source != "." {
			src += " (" + r.Scan.Source + ")"
		}
		parts = append(parts, src)
	}
	if img := r.Scan.Image; img != nil {
		s := "image " + clean(img.Name, 80)
		if img.Digest != "" {
			s += "@" + text.ShortDigest(img.Digest)
		}
		var platforms []string
		for _, p := range img.Platforms {
			if p.Platform != "" {
				platforms = append(platforms, p.Platform)
			}
		}
		if len(platforms) > 0 {
			s += " " + strings.Join(platforms, ", ")
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		parts = append(parts, "nothing")
	}
	return "Slipway scan: " + strings.Join(parts, " · ")
}

func scannerLine(s *Scanner) string {
	line := s.Name + " " + s.Version
	if len(s.Targets) > 0 {
		line += " on " + strings.Join(s.Targets, ", ")
	}
	if s.DB != nil {
		line += "; db " + clean(s.DB.Source, 80)
		if s.DB.Version != "" {
			line += " v" + s.DB.Version
		}
		if s.DB.Updated != "" {
			line += " updated " + s.DB.Updated
		}
	}
	return line
}

// gradesLine names the database ungraded vulnerabilities were graded
// from.
func gradesLine(db *DB) string {
	line := "severities of what no scanner graded: trivy's database " + clean(db.Source, 80)
	if db.Version != "" {
		line += " v" + db.Version
	}
	if db.Updated != "" {
		line += " updated " + db.Updated
	}
	return line
}

// CountsLine gives the findings by severity.
func CountsLine(c Counts) string {
	var parts []string
	for _, s := range Severities {
		if n := c.Of(s); n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, strings.ToLower(string(s))))
		}
	}
	line := fmt.Sprintf("%d %s", c.Total(), text.Plural(c.Total(), "finding"))
	if len(parts) > 0 {
		line += ": " + strings.Join(parts, ", ")
	}
	if c.Waived > 0 {
		line += fmt.Sprintf("; %d waived", c.Waived)
	}
	return line
}

// VerdictLine gives policy's answer and its reasons.
func VerdictLine(v *Verdict) string {
	rule := "fail on " + strings.ToLower(v.FailOn)
	if v.FailOn == "" || v.FailOn == "none" {
		rule = "fail on nothing"
	} else if v.ReachableOnly {
		rule += ", reachable only"
	}
	if v.Pass {
		return "Verdict: pass (" + rule + ")"
	}
	return "Verdict: FAIL (" + rule + "): " + strings.Join(v.Reasons, "; ")
}

func waiverLine(u WaiverUse) string {
	state := fmt.Sprintf("waived %d", len(u.Findings))
	if u.Expired {
		state = "EXPIRED " + u.Expires
	} else if u.Expires != "" {
		state += ", until " + u.Expires
	}
	return fmt.Sprintf("Waiver %s (%s): %s", clean(u.ID, 60), state, clean(u.Reason, 120))
}

// reach is the reachability and the analysis that gave it, for a table
// cell: "called (source)", "linked (binary)".
func reach(f *Finding) string {
	if f.Reachability == "" || f.Analysis == "" {
		return string(f.Reachability)
	}
	return string(f.Reachability) + " (" + f.Analysis + ")"
}

// where is the first place a finding was seen, for a table cell.
func where(f *Finding) string {
	if len(f.Locations) == 0 {
		return ""
	}
	l := f.Locations[0]
	s := l.String()
	if l.Symbol != "" {
		s += " " + l.Symbol
	}
	if n := len(f.Locations) - 1; n > 0 {
		s += fmt.Sprintf(" (+%d)", n)
	}
	return clean(s, 80)
}

// clean makes untrusted text safe and short for one cell or line: control
// characters (escape sequences, line breaks) become spaces, runs of white
// space one space, and anything past max runes an ellipsis.
func clean(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if max > 0 {
		if r := []rune(s); len(r) > max {
			s = string(r[:max-1]) + "…"
		}
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// sortedScanners lists scanner names in the order they should appear.
func sortedScanners(r *Report) []string {
	var names []string
	for _, s := range r.Scanners {
		names = append(names, s.Name)
	}
	slices.Sort(names)
	return slices.Compact(names)
}
