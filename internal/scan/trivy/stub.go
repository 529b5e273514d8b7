//go:build !goexperiment.jsonv2

package trivy

import (
	"context"
	"errors"

	"github.com/slipwayci/slipway/internal/scan"
)

// ErrNoJSONv2 is why an image cannot be scanned by this build.
var ErrNoJSONv2 = errors.New("this slipway-scan was built without GOEXPERIMENT=jsonv2, which trivy needs, so it cannot scan images; " +
	"rebuild it with GOEXPERIMENT=jsonv2 go build ./cmd/slipway-scan, or scan without the image scanner: --scanners govulncheck,gosec")

// Open fails: trivy is not in this build. Asked only for a database that
// is there, to grade other scanners' findings, it has none to offer.
func (Scanner) Open(_ context.Context, o scan.ImageOptions) (scan.VulnDB, error) {
	if o.IfPresent {
		return nil, nil
	}
	return nil, ErrNoJSONv2
}
