// Command slipway-history lists an environment's promotions, so that the
// dispatcher answers `slipway history production`; see
// `slipway history --help`.
package main

import (
	"os"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/promote"
)

func main() {
	os.Exit(cli.Run("slipway history", promote.HistoryMain))
}
