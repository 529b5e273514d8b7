// Command slipway-build cross-compiles a Go module reproducibly; see
// `slipway build --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/slipwayci/slipway/internal/build"
	"github.com/slipwayci/slipway/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, "slipway build", build.Main)
	stop()
	os.Exit(code)
}
