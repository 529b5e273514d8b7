// Package trivy is slipway's one adapter to trivy, used as a library to
// scan an image for vulnerable OS packages and Go modules. Trivy says its
// Go API is not a stable one, so nothing else in slipway imports trivy:
// this package turns trivy's report into slipway findings, and it links
// into slipway-scan only (cmd/slipway-scan imports it for its side effect
// of registering the scanner).
//
// Trivy needs GOEXPERIMENT=jsonv2. Built without it, the package still
// compiles, and scanning an image fails with an error saying so.
package trivy

import "github.com/slipwayci/slipway/internal/scan"

// Scanner is the image scanner backed by trivy.
type Scanner struct{}

var _ scan.ImageScanner = Scanner{}

func init() { scan.RegisterImageScanner(Scanner{}) }

// Name is the scanner's name in findings.
func (Scanner) Name() string { return scan.Trivy }
