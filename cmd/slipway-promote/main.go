// Command slipway-promote moves an image by digest between environments
// when its evidence passes their gates; see `slipway promote --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/promote"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, "slipway promote", promote.Main)
	stop()
	os.Exit(code)
}
