// Command slipway-promote moves an image by digest between environments
// when its evidence passes their gates; see `slipway promote --help`.
package main

import (
	"os"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/promote"
)

func main() {
	os.Exit(cli.Run("slipway promote", promote.Main))
}
