package promote

import (
	"io"

	"github.com/slipwayci/slipway/internal/cli"
)

// emitPolicy writes the admission policy for kind.
func emitPolicy(w io.Writer, cfg *Config, env *Environment, kind, image string) error {
	return cli.Usagef("--emit %s: not yet", kind)
}
