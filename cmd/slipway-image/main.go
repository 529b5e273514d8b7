// Command slipway-image layers the build's binaries onto a base image
// without a Docker daemon; see `slipway image --help`.
package main

import (
	"os"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/image"
)

func main() {
	os.Exit(cli.Run("slipway image", image.Main))
}
