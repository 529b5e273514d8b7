package ci

import (
	"flag"
	"fmt"
)

// ApplyInputs fills every flag that the command line left unset from the
// platform's inputs, so a command line always wins over the environment.
// Call it after fs.Parse.
func ApplyInputs(fs *flag.FlagSet, p Platform) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || set[f.Name] {
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
