//go:build !goexperiment.jsonv2

package trivy

import (
	"context"
	"errors"
	"testing"

	"github.com/slipwayci/slipway/internal/scan"
)

// Built without GOEXPERIMENT=jsonv2, the scanner is registered and says
// what is missing instead of failing the build.
func TestWithoutJSONv2(t *testing.T) {
	_, err := Scanner{}.ScanImage(context.Background(), &scan.Image{}, scan.ImageOptions{})
	if !errors.Is(err, ErrNoJSONv2) {
		t.Errorf("ScanImage = %v, want ErrNoJSONv2", err)
	}
	if (Scanner{}).Name() != "trivy" {
		t.Errorf("Name = %q", Scanner{}.Name())
	}
}
