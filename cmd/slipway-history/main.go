// Command slipway-history lists an environment's promotions, so that the
// dispatcher answers `slipway history production`; see
// `slipway history --help`.
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
	code := cli.Run(ctx, "slipway history", promote.HistoryMain)
	stop()
	os.Exit(code)
}
