// Command slipway-sign signs an image that something else pushed, so
// that cosign verify accepts it; see `slipway sign --help`.
package main

import (
	"os"

	"github.com/slipwayci/slipway/internal/attest"
	"github.com/slipwayci/slipway/internal/cli"
)

func main() {
	os.Exit(cli.Run("slipway sign", attest.Main))
}
