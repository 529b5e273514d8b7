package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/slipwayci/slipway/internal/ci"
)

// TopFindings is how many findings the step summary lists.
const TopFindings = 10

// Summary is the step summary: counts by severity, the verdict and the
// most urgent findings. Untrusted text is cleaned and its markup defused;
// the platform masks secrets and keeps it off the command channel.
func Summary(r *Report) *ci.Summary {
	c := countsOf(r)
	s := &ci.Summary{
		Title: Headline(r),
		Table: ci.Table{Header: []string{"Severity", "ID", "Package", "Version", "Fixed", "Reachability", "Where", "Title"}},
	}
	if r.Verdict != nil {
		s.Lines = append(s.Lines, mdText(VerdictLine(r.Verdict)))
	}
	var counts []string
	for _, sev := range Severities {
		counts = append(counts, fmt.Sprintf("%s %d", strings.ToLower(string(sev)), c.Of(sev)))
	}
	s.Lines = append(s.Lines, fmt.Sprintf("%s · waived %d", strings.Join(counts, " · "), c.Waived))
	var scanners []string
	for _, sc := range r.Scanners {
		scanners = append(scanners, mdText(scannerLine(sc)))
	}
	if r.Scan.Grades != nil {
		scanners = append(scanners, mdText(gradesLine(r.Scan.Grades)))
	}
	if len(scanners) > 0 {
		s.Lines = append(s.Lines, "Scanners: "+strings.Join(scanners, "; "))
	}
	shown := 0
	for _, f := range r.Findings {
		if f.Waived() {
			continue
		}
		if shown == TopFindings {
			s.Notes = append(s.Notes, fmt.Sprintf("%d more not shown here; see the full report.", c.Total()-shown))
			break
		}
		shown++
		s.Table.Rows = append(s.Table.Rows, []string{
			string(f.Severity), f.ID, mdText(clean(f.Package, 60)), mdText(f.Version), mdText(f.FixedVersion),
			reach(f), mdText(where(f)), mdText(clean(f.Title, 80)),
		})
	}
	if shown == 0 {
		s.Table = ci.Table{}
	}
	if r.Verdict != nil {
		for _, u := range r.Verdict.Waivers {
			s.Notes = append(s.Notes, mdText(waiverLine(u)))
		}
	}
	return s
}

// mdText keeps untrusted text from becoming Markdown or HTML: no tags,
// links, images or bold, whatever a title says. (GitHub's Markdown takes
// no emphasis from underscores inside words, so package names stay
// readable on a terminal too.)
func mdText(s string) string {
	return strings.NewReplacer(
		"<", "&lt;", ">", "&gt;", "[", `\[`, "]", `\]`, "`", "'", "*", `\*`,
	).Replace(clean(s, 0))
}

// NewSummaryHandler returns the summary format: the step summary as
// Markdown.
func NewSummaryHandler(w io.Writer) Handler {
	return Collect(func(r *Report) error {
		_, err := io.WriteString(w, Summary(r).Markdown())
		return err
	})
}

// MaxAnnotations caps the annotations per step; GitHub shows only the
// first few of each kind anyway.
const MaxAnnotations = 20

// Annotations are the findings that point at a source line, most urgent
// first, as annotations for the platform. Waived findings are left out.
func Annotations(r *Report) []ci.Annotation {
	var as []ci.Annotation
	for _, f := range r.Findings {
		if f.Waived() {
			continue
		}
		l, ok := f.SourceLocation()
		if !ok || len(as) == MaxAnnotations {
			continue
		}
		as = append(as, ci.Annotation{
			Severity: annotationSeverity(f.Severity),
			File:     l.Path,
			Line:     l.Line,
			Col:      l.Column,
			Title:    fmt.Sprintf("%s (%s)", f.ID, strings.ToLower(string(f.Severity))),
			Message:  clean(messageBody(f, orDash(f.Title)), 400),
		})
	}
	return as
}

func annotationSeverity(s Severity) ci.Severity {
	switch s {
	case Critical, High:
		return ci.Error
	case Medium:
		return ci.Warning
	}
	return ci.Notice
}

// NewAnnotationsHandler returns the annotations, one per line as a
// compiler would print them.
func NewAnnotationsHandler(w io.Writer) Handler {
	return Collect(func(r *Report) error {
		for _, a := range Annotations(r) {
			if _, err := fmt.Fprintln(w, a.String()); err != nil {
				return err
			}
		}
		return nil
	})
}
