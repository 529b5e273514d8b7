// Command slipway-push publishes the image step's OCI layout to
// registries; see `slipway push --help`.
package main

import (
	"os"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/push"
)

func main() {
	os.Exit(cli.Run("slipway push", push.Main))
}
