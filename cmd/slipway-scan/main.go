// Command slipway-scan scans an image and its Go source for vulnerabilities
// and weaknesses and applies the policy; see `slipway scan --help`.
package main

import (
	"os"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/scan"
	_ "github.com/slipwayci/slipway/internal/scan/trivy" // the image scanner; trivy links here only
)

func main() {
	os.Exit(cli.Run("slipway scan", scan.Main))
}
