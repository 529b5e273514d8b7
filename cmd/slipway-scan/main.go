// Command slipway-scan scans an image and its Go source for vulnerabilities
// and weaknesses and applies the policy; see `slipway scan --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/scan"
	_ "github.com/slipwayci/slipway/internal/scan/trivy" // the image scanner; trivy links here only
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, "slipway scan", scan.Main)
	stop()
	os.Exit(code)
}
