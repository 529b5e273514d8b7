// Command slipway dispatches to its steps git-style: `slipway build …`
// runs slipway-build from the same directory or PATH.
package main

import (
	"context"
	"os"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/dispatch"
)

func main() {
	self, _ := os.Executable()
	os.Exit(cli.Run("slipway", func(ctx context.Context, env cli.Env) error {
		return dispatch.Main(ctx, env, dispatch.Finder{Self: self, Path: env.Getenv("PATH")})
	}))
}
