// Command slipway-image layers the build's binaries onto a base image
// without a Docker daemon; see `slipway image --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/image"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, "slipway image", image.Main)
	stop()
	os.Exit(code)
}
