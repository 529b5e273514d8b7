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
	_, err := Scanner{}.Open(context.Background(), scan.ImageOptions{})
	if !errors.Is(err, ErrNoJSONv2) {
		t.Errorf("Open = %v, want ErrNoJSONv2", err)
	}
	if db, err := (Scanner{}).Open(context.Background(), scan.ImageOptions{IfPresent: true}); db != nil || err != nil {
		t.Errorf("Open only if present = %v, %v; want nothing to grade with, and no error", db, err)
	}
	if (Scanner{}).Name() != "trivy" {
		t.Errorf("Name = %q", Scanner{}.Name())
	}
}
