package promote

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slipwayci/slipway/internal/fault"
	"github.com/slipwayci/slipway/internal/sign"
)

// VerifyResult is what slipway verify found about an image.
type VerifyResult struct {
	Image       string    `json:"image"`
	Environment string    `json:"environment,omitempty"`
	Pass        bool      `json:"pass"`
	Checks      []Verdict `json:"checks"`
}

// Verify checks, reading only, what a promotion into o.To would: the
// image's own signature under the environment's trust:, and every gate
// that reads evidence (from, soak, scan, sbom, provenance) against what
// is attached to o.Source in its repository. Health and approval are
// about a promotion job, not the image, and are left out. o.To may be
// nil: then only the signature is checked, under the top-level trust:.
// A failing check is a *Refused error, with the result.
func Verify(ctx context.Context, o Options) (*VerifyResult, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	t := o.Config.Trust
	res := &VerifyResult{Image: o.Source.String()}
	env := &Environment{}
	if o.To != nil {
		t = o.Config.TrustFor(o.To)
		res.Environment = o.To.Name
		env.Name, env.Gates = o.To.Name, o.To.Gates
		env.Gates.Health, env.Gates.Approval = nil, nil
	}
	if t == nil {
		where := ".slipway.yaml"
		if o.To != nil {
			where = "environment " + o.To.Name
		}
		return nil, fault.Invalidf("%s has no trust: to verify against; add trust: with the identities or keys that sign (see docs/promote.md#trust)", where)
	}
	verifier, err := t.Verifier()
	if err != nil {
		return nil, err
	}
	digest, err := v1.NewHash(o.Source.DigestStr())
	if err != nil {
		return nil, err
	}
	src, err := o.dial(ctx, o.Source.Context(), false)
	if err != nil {
		return nil, err
	}
	img, err := readImage(ctx, src, digest)
	if err != nil {
		return nil, err
	}
	ev := o.evidence(src, digest, img, verifier)
	sig, err := signatureCheck(ctx, ev)
	if err != nil {
		return nil, err
	}
	res.Checks = append(res.Checks, sig)
	gates, err := Evaluate(ctx, env, ev, o.Eval)
	if err != nil {
		return nil, err
	}
	res.Checks = append(res.Checks, gates...)
	res.Pass = Passed(res.Checks)
	if !res.Pass {
		var failing []Verdict
		for _, v := range res.Checks {
			if !v.Pass {
				failing = append(failing, v)
			}
		}
		return res, &Refused{Failing: failing}
	}
	return res, nil
}

// signatureCheck passes when the image itself carries a signature that
// verifies, as `cosign sign` makes it: the check `cosign verify` does.
func signatureCheck(ctx context.Context, ev *registryEvidence) (Verdict, error) {
	v := Verdict{Gate: "signature"}
	vs, err := ev.verified(ctx, v.Gate, sign.CosignSignPredicate)
	if err != nil {
		return v, err
	}
	for _, s := range vs {
		if s.res.Statement.Names(ev.digest) {
			v.Pass, v.Evidence = true, s.ref.String()
			v.Detail = "signed by " + s.res.Signer.String()
			if !s.res.Time.IsZero() {
				v.Detail += " at " + s.res.Time.UTC().Format("2006-01-02T15:04:05Z")
			}
			return v, nil
		}
	}
	v.Detail = "no signature on the image verifies under trust:"
	return withIgnored(v, ev), nil
}

// verifyDigest reads REPOSITORY@sha256:… for slipway verify.
func verifyDigest(s string, plainHTTP []string) (name.Digest, error) {
	if strings.HasPrefix(s, "sha256:") {
		return name.Digest{}, fmt.Errorf("image %s: name its repository, REPOSITORY@sha256:…", s)
	}
	d, err := parseDigest(&Config{}, &Environment{}, s, plainHTTP)
	if err != nil {
		// parseDigest speaks of --digest; here it is the argument.
		msg, _ := strings.CutPrefix(err.Error(), "--digest ")
		return name.Digest{}, errors.New("image " + msg)
	}
	return d, nil
}
