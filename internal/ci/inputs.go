package ci

import (
	"flag"
	"fmt"
)

// metaFlags are about slipway itself, never inputs: a GitLab variable
// SLIPWAY_VERSION that pins slipway must not turn into --version.
var metaFlags = map[string]bool{"version": true, "help": true}

// ApplyInputs fills every flag that the command line left unset from the
// platform's inputs, so a command line always wins over the environment.
// Call it after fs.Parse.
func ApplyInputs(fs *flag.FlagSet, p Platform) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || set[f.Name] || metaFlags[f.Name] {
			return
		}
		v, ok := p.Input(f.Name)
		if !ok {
			return
		}
		if e := fs.Set(f.Name, v); e != nil {
			err = fmt.Errorf("input %s=%q: %w", f.Name, v, e)
		}
	})
	return err
}

// Start detects the platform and fills unset flags from its inputs. The
// summary file is named only after that, by summaryFile, since it usually
// depends on an input such as --out. With an error the platform is
// returned too, for the error (which quotes the input) to be printed
// through its stream.
func Start(fs *flag.FlagSet, o Options, summaryFile func() string) (Platform, error) {
	p := Detect(o)
	if err := ApplyInputs(fs, p); err != nil {
		return p, err
	}
	if summaryFile != nil {
		o.SummaryFile = summaryFile()
	}
	return Detect(o), nil
}
