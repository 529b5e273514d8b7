package ci

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/slipwayci/slipway/internal/safefile"
)

// local runs in a terminal: outputs and annotations are printed, the
// summary goes to a file and the terminal.
type local struct {
	o       Options
	secrets *secrets
	stdout  *stream
	stderr  *stream
}

var _ Platform = (*local)(nil)

func newLocal(o Options) *local {
	s := &secrets{}
	return &local{o: o, secrets: s, stdout: newStream(o.Stdout, s, false), stderr: newStream(o.Stderr, s, false)}
}

func (l *local) Name() string                  { return "local" }
func (l *local) Stdout() io.Writer             { return l.stdout }
func (l *local) Stderr() io.Writer             { return l.stderr }
func (l *local) Input(string) (string, bool)   { return "", false }
func (l *local) Mask(secret string)            { l.secrets.add(secret) }
func (l *local) Annotate(a Annotation)         { fmt.Fprintln(l.stderr, a.String()) }
func (l *local) WriteSummary(s *Summary) error { return writeSummaryFile(l.o, l.stdout, l.secrets, s) }
func (l *local) Info() Info                    { return Info{Platform: "local"} }
func (l *local) SetOutput(name, value string) error {
	_, err := fmt.Fprintf(l.stdout, "output %s=%s\n", name, value)
	return err
}

// Group does nothing in a terminal: nothing there folds, and a header line
// would only stand between the user and a one-line error.
func (l *local) Group(string) func() { return func() {} }

// writeSummaryFile prints the terminal table and writes the Markdown to
// SLIPWAY_SUMMARY_FILE or the step's default file.
func writeSummaryFile(o Options, w io.Writer, s *secrets, sum *Summary) error {
	fmt.Fprint(w, sum.Text())
	path := o.Getenv("SLIPWAY_SUMMARY_FILE")
	if path == "" {
		path = o.SummaryFile
	}
	if path == "" {
		return nil
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(o.Dir, path)
	}
	if err := safefile.Write(path, s.mask([]byte(sum.Markdown()+"\n")), 0o644); err != nil {
		return fmt.Errorf("writing summary: %w", err)
	}
	return nil
}
