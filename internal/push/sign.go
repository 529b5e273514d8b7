package push

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/slipwayci/slipway/internal/attest"
	"github.com/slipwayci/slipway/internal/registry"
	"github.com/slipwayci/slipway/internal/sign"
)

// imageSigner signs what push publishes (internal/attest decides what
// that is). The statements are signed once, when the first destination
// has the image, and every destination gets the same bundles: a push to
// many repositories costs one signature per statement.
type imageSigner struct {
	signer  *sign.Signer
	trusted root.TrustedMaterial // nil: not checked before publishing
	in      attest.Input         // everything but the descriptors
	now     time.Time

	mu     sync.Mutex
	signed []attest.Signed
	err    error
}

var _ Signer = (*imageSigner)(nil)

func (g *imageSigner) Sign(ctx context.Context, repo *registry.Repository, root v1.Descriptor, manifests []v1.Descriptor) (int, error) {
	signed, err := g.sign(ctx, root, manifests)
	if err != nil {
		return 0, err
	}
	pub, err := attest.AttachTo(ctx, repo, signed, g.now)
	return len(pub), err
}

// sign plans and signs the statements once; a failure is kept, so the
// other destinations fail alike instead of asking Fulcio again.
func (g *imageSigner) sign(ctx context.Context, root v1.Descriptor, manifests []v1.Descriptor) ([]attest.Signed, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.signed != nil || g.err != nil {
		return g.signed, g.err
	}
	in := g.in
	in.Index, in.Manifests = root, manifests
	ev, err := attest.Plan(in)
	if err == nil {
		g.signed, err = attest.SignAll(ctx, g.signer, ev)
	}
	if err == nil && g.trusted != nil {
		err = attest.Check(g.trusted, g.signer, g.signed)
	}
	if err != nil {
		g.signed, g.err = nil, err
	}
	return g.signed, g.err
}

// predicateTypes are the kinds of statement signed, in the order first
// signed, for the step's output.
func (g *imageSigner) predicateTypes() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for _, s := range g.signed {
		if !slices.Contains(out, s.PredicateType) {
			out = append(out, s.PredicateType)
		}
	}
	return out
}

// describe says in one line what was signed, and as whom.
func (g *imageSigner) describe() string {
	g.mu.Lock()
	n := len(g.signed)
	var names []string
	for _, s := range g.signed {
		if !slices.Contains(names, s.Name) && !strings.HasPrefix(s.Name, "sbom ") {
			names = append(names, s.Name)
		}
	}
	sboms := 0
	for _, s := range g.signed {
		if strings.HasPrefix(s.Name, "sbom ") {
			sboms++
		}
	}
	g.mu.Unlock()
	if sboms > 0 {
		names = append(names, fmt.Sprintf("%d SBOMs", sboms))
	}
	return fmt.Sprintf("signed %d statements (%s) as %s", n, strings.Join(names, ", "), g.signer.Name())
}
