package benchkit

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/slipwayci/slipway/internal/image"
)

// PushStaticBase pushes slipway's static base for linux/amd64 and
// linux/arm64 as ref, so that slipway and ko can start from the same base
// in a registry.
func PushStaticBase(ctx context.Context, ref, cacheDir string) error {
	idx, err := image.StaticBase(ctx, cacheDir,
		v1.Platform{OS: "linux", Architecture: "amd64"}, v1.Platform{OS: "linux", Architecture: "arm64"})
	if err != nil {
		return err
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	if err := remote.WriteIndex(r, idx, remote.WithContext(ctx)); err != nil {
		return fmt.Errorf("pushing the base to %s: %w", ref, err)
	}
	return nil
}
