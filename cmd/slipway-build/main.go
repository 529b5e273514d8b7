// Command slipway-build cross-compiles a Go module reproducibly; see
// `slipway build --help`.
package main

import (
	"os"

	"github.com/slipwayci/slipway/internal/build"
	"github.com/slipwayci/slipway/internal/cli"
)

func main() {
	os.Exit(cli.Run("slipway build", build.Main))
}
