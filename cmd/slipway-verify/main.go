// Command slipway-verify checks an image's signature and an environment's
// evidence gates, reading only, so that the dispatcher answers
// `slipway verify REF@sha256:…`; see `slipway verify --help`.
package main

import (
	"os"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/promote"
)

func main() {
	os.Exit(cli.Run("slipway verify", promote.VerifyMain))
}
