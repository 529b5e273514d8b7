// Command slipway-push publishes the image step's OCI layout to
// registries; see `slipway push --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/push"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, "slipway push", push.Main)
	stop()
	os.Exit(code)
}
