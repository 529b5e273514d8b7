package sign

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/slipwayci/slipway/internal/cli"
)

// Flags are the signing flags of every step that signs (push, sign),
// declared once: Register binds them, Setup turns them into a Signer.
type Flags struct {
	Sign          string
	IdentityToken string
	FulcioURL     string
	TSAURL        string
	RekorURL      string
	RekorAPI      uint
	// TrustedRoot is a trusted_root.json that what is signed must verify
	// against before anything is published: a Fulcio or timestamp
	// authority the verifiers do not trust then fails the step, not the
	// promotion a day later.
	TrustedRoot string
}

// Register declares the flags on fs.
func (f *Flags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.Sign, "sign", "", "`keyless`, off, or a private key file (cosign's, with COSIGN_PASSWORD; PEM ECDSA P-256 or Ed25519); default keyless where the CI offers an OIDC token, else off")
	fs.StringVar(&f.IdentityToken, "identity-token", "", "`file` holding the OIDC token for keyless signing outside GitHub and GitLab")
	fs.StringVar(&f.FulcioURL, "fulcio-url", PublicFulcio, "Fulcio, the certificate authority for keyless signing")
	fs.StringVar(&f.TSAURL, "tsa-url", PublicTSA, "timestamp authority's endpoint, or none")
	fs.StringVar(&f.RekorURL, "rekor-url", PublicRekor, "transparency log, or none (GitHub's own Sigstore instance has none)")
	fs.UintVar(&f.RekorAPI, "rekor-api", 1, "the log's API: 1 (rekor.sigstore.dev) or 2 (rekor-tiles)")
	fs.StringVar(&f.TrustedRoot, "trusted-root", "", "trusted_root.json `file` each signature must verify against before it is published (default: not checked)")
}

// Setup returns the signer the flags ask for (nil when signing is off),
// the one-line notice of a choice made for the user, and the trusted root
// to check signatures against (nil without --trusted-root). getenv reads
// the CI's token variables and COSIGN_PASSWORD; mask hides each secret
// before it is used.
func (f *Flags) Setup(ctx context.Context, getenv func(string) string, mask func(string)) (*Signer, string, root.TrustedMaterial, error) {
	if f.RekorAPI > math.MaxUint32 {
		return nil, "", nil, cli.Usagef("--rekor-api %d: slipway speaks Rekor's API 1 and 2", f.RekorAPI)
	}
	var tr root.TrustedMaterial
	if f.TrustedRoot != "" {
		data, err := os.ReadFile(f.TrustedRoot)
		if err != nil {
			return nil, "", nil, cli.Usage(fmt.Errorf("--trusted-root: %w", err))
		}
		if tr, err = root.NewTrustedRootFromJSON(data); err != nil {
			return nil, "", nil, cli.Usagef("--trusted-root %s: not a Sigstore trusted root: %v", f.TrustedRoot, err)
		}
	}
	s, notice, err := Setup(ctx, Config{
		Sign: f.Sign, IdentityToken: f.IdentityToken,
		FulcioURL: f.FulcioURL, TSAURL: f.TSAURL, RekorURL: f.RekorURL, RekorVersion: uint32(f.RekorAPI),
		Getenv: getenv, Mask: mask,
	})
	if err != nil || s == nil {
		return nil, notice, nil, err
	}
	return s, notice, tr, nil
}
