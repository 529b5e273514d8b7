package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
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

// ParseSize reads a byte count written as 500MB, 2GiB, 1.5G or 0: kB, MB,
// GB and TB (or k, M, G, T) are powers of 1000, KiB, MiB, GiB and TiB
// powers of 1024, and a bare number is bytes. Case does not matter.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return r != '.' && (r < '0' || r > '9') })
	if i < 0 {
		i = len(t)
	}
	f, err := strconv.ParseFloat(t[:i], 64)
	mult, ok := sizeUnits[strings.ToLower(strings.TrimSpace(t[i:]))]
	if err != nil || !ok {
		return 0, fmt.Errorf("%q is not a size such as 500MB or 2GiB", s)
	}
	n := f * float64(mult)
	if n >= 1<<63 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return int64(n), nil
}

var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
	"ki": 1 << 10, "kib": 1 << 10, "mi": 1 << 20, "mib": 1 << 20, "gi": 1 << 30, "gib": 1 << 30, "ti": 1 << 40, "tib": 1 << 40,
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

// Alias declares old as a former name of the flag named current, for
// command lines and CI inputs (SLIPWAY_OLD, INPUT_OLD) written before the
// rename: setting it sets current. Declare current first.
func Alias(fs *flag.FlagSet, old, current string) {
	f := fs.Lookup(current)
	fs.Var(&alias{Value: f.Value}, old, "deprecated: the former name of --"+current)
}

type alias struct {
	flag.Value
	// changed is set when the alias gave the flag a value it did not
	// have already: a CI template that passes the current name and the
	// former one, alike, is not using the former.
	changed bool
}

func (a *alias) Set(s string) error {
	if a.Value.String() != s {
		a.changed = true
	}
	return a.Value.Set(s)
}

// Renamed prints one line on w for each former name (see Alias) that gave
// a flag its value.
func Renamed(fs *flag.FlagSet, w io.Writer) {
	fs.Visit(func(f *flag.Flag) {
		a, ok := f.Value.(*alias)
		if !ok || !a.changed {
			return
		}
		current := strings.TrimPrefix(f.Usage, "deprecated: the former name of --")
		fmt.Fprintf(w, "note: --%s is deprecated; it is now --%s (SLIPWAY_%s, input %s)\n", f.Name, current,
			strings.ToUpper(strings.ReplaceAll(current, "-", "_")), current)
	})
}
