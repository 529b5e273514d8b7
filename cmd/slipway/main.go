// Command slipway dispatches to its steps git-style: `slipway build …`
// runs slipway-build from the same directory or PATH.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/dispatch"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	self, _ := os.Executable()
	code := cli.Run(ctx, "slipway", func(ctx context.Context, env cli.Env) error {
		return dispatch.Main(ctx, env, dispatch.Finder{Self: self, Path: env.Getenv("PATH")})
	})
	stop()
	os.Exit(code)
}
