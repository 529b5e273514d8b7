package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/slipwayci/slipway/internal/version"
)

// List is a flag.Value collecting values given repeatedly and
// newline-separated (GitHub inputs arrive as one multi-line string) and,
// with Comma, comma-separated too.
type List struct {
	Values []string
	Comma  bool
}

func (l *List) String() string { return strings.Join(l.Values, ",") }

// Set adds the values in s.
func (l *List) Set(s string) error {
	for _, v := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || (l.Comma && r == ',') }) {
		if v = strings.TrimSpace(v); v != "" {
			l.Values = append(l.Values, v)
		}
	}
	return nil
}

// Resolve makes p absolute against base, the step's working directory.
func (e Env) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(e.Dir, p)
}

// HumanSize renders a byte count for summaries: 5.2 MiB.
func HumanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// ParseFlags parses env.Args into fs with the conventions every step
// shares: --help prints the usage and flags on stdout, --version prints the
// step's version, and a bad flag is a usage error that points at --help.
// done is true when the step has nothing more to do (return err).
func ParseFlags(fs *flag.FlagSet, env Env, step, usage string) (done bool, err error) {
	showVersion := fs.Bool("version", false, "print slipway's version and exit")
	fs.SetOutput(io.Discard)
	if err := fs.Parse(env.Args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(env.Stdout, usage)
			fs.SetOutput(env.Stdout)
			fs.PrintDefaults()
			return true, nil
		}
		return true, Usagef("%v; see slipway %s --help", err, step)
	}
	if *showVersion {
		fmt.Fprintf(env.Stdout, "slipway-%s %s\n", step, version.String())
		return true, nil
	}
	return false, nil
}
