package attest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slipwayci/slipway/internal/ci"
	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/registry"
	"github.com/slipwayci/slipway/internal/sign"
)

const usage = `usage: slipway sign [flags] REGISTRY/REPOSITORY@sha256:DIGEST

Signs an image that something other than slipway push published (ko,
crane, docker buildx): the image itself, for the index and for each
platform manifest it lists, as cosign sign does, each a Sigstore bundle
attached as cosign v3 attaches them, so that cosign verify accepts it.
--attest FILE --type TYPE also signs a predicate (or a whole in-toto
statement about the image) and attaches it to the index and its manifests,
as cosign attest does; cosign verify-attestation --type TYPE accepts it.

The signing flags are slipway push's (docs/sign.md): keyless with the CI's
OIDC token (GitHub's id-token: write, GitLab's id_tokens:
SIGSTORE_ID_TOKEN, or --identity-token FILE), or --sign KEY with a key
(COSIGN_PASSWORD decrypts cosign's key files). Credentials, TLS and retries
as in slipway push (docs/registries.md).

Flags:
`

// predicateNames are the --type names cosign knows, and the predicate
// types they stand for; any other type is given as its URI.
var predicateNames = map[string]string{
	"slsaprovenance1": sign.SLSAProvenancePredicate,
	"spdxjson":        sign.SPDXPredicate,
	"cyclonedx":       sign.CycloneDXPredicate,
	"custom":          "https://cosign.sigstore.dev/attestation/v1",
}

type config struct {
	image, attestFile, attestType string
	reg                           registry.Flags
	signing                       sign.Flags
}

func (c *config) register(fs *flag.FlagSet) {
	fs.StringVar(&c.image, "image", "", "the image to sign, `REPOSITORY@sha256:DIGEST` (or the argument)")
	fs.StringVar(&c.attestFile, "attest", "", "`file` holding a predicate (or an in-toto statement about the image) to sign and attach too")
	fs.StringVar(&c.attestType, "type", "", "the --attest predicate's `type`: slsaprovenance1, spdxjson, cyclonedx, custom or a URI")
	c.reg.Register(fs, "the image's")
	c.signing.Register(fs)
}

// Main runs slipway sign with the given process environment.
func Main(ctx context.Context, env cli.Env) error {
	fs := flag.NewFlagSet("slipway sign", flag.ContinueOnError)
	var c config
	c.register(fs)
	// The image may come first, before the flags, as cosign takes it.
	if len(env.Args) > 0 && !strings.HasPrefix(env.Args[0], "-") {
		env.Args = append(append([]string(nil), env.Args[1:]...), env.Args[0])
	}
	if done, err := cli.ParseFlags(fs, env, "sign", usage); done {
		return err
	}
	switch {
	case fs.NArg() > 1:
		return cli.Usagef("unexpected arguments %s; give one image", strings.Join(fs.Args()[1:], " "))
	case fs.NArg() == 1:
		c.image = fs.Arg(0)
	}
	p, err := ci.Start(fs, ci.Options{
		Getenv: env.Getenv, Stdout: env.Stdout, Stderr: env.Stderr, Dir: env.Dir, Step: "sign",
	}, nil)
	if err != nil {
		return cli.Usage(err)
	}
	if err := run(ctx, env, p, &c); err != nil {
		return &cli.Silent{Code: cli.ExitCode(p.Stderr(), "slipway sign", err)}
	}
	return nil
}

func run(ctx context.Context, env cli.Env, p ci.Platform, c *config) error {
	if c.image == "" {
		return cli.Usagef("no image: give REPOSITORY@sha256:DIGEST, e.g. slipway sign ghcr.io/owner/app@sha256:...")
	}
	repoName, dgst, ok := strings.Cut(c.image, "@")
	if !ok || !strings.HasPrefix(dgst, "sha256:") {
		return cli.Usagef("image %s: give it by digest, REPOSITORY@sha256:DIGEST (slipway push's digest output); a tag may move", c.image)
	}
	h, err := v1.NewHash(dgst)
	if err != nil {
		return cli.Usagef("image %s: %v", c.image, err)
	}
	ref, err := registry.ParseRepository(repoName, c.reg.PlainHTTP.Values)
	if err != nil {
		return cli.Usagef("image %s: %v", c.image, err)
	}
	extra, err := c.attestation()
	if err != nil {
		return cli.Usage(err)
	}
	s, notice, trusted, err := c.signing.Setup(ctx, env.Getenv, p.Mask)
	if err != nil {
		return err
	}
	if s == nil {
		if notice != "" {
			return cli.Usagef("slipway sign: %s", strings.TrimPrefix(notice, "not signing: "))
		}
		return cli.Usagef("--sign off: slipway sign has nothing to do; give keyless or a key")
	}
	client, err := c.reg.Client(registry.Login{Env: env, Mask: p.Mask, Registry: ref.RegistryStr(), Warn: p.Stderr()})
	if err != nil {
		return err
	}
	repo, err := client.Dial(ctx, ref, registry.DialOptions{Push: true})
	if err != nil {
		return err
	}
	root, manifests, err := describe(ctx, repo, h)
	if err != nil {
		return err
	}
	ev, err := Plan(Input{Index: root, Manifests: manifests})
	if err != nil {
		return err
	}
	if extra != nil {
		e, err := extra(root, manifests)
		if err != nil {
			return cli.Usage(err)
		}
		ev = append(ev, e)
	}
	signed, err := SignAll(ctx, s, ev)
	if err != nil {
		return err
	}
	if trusted != nil {
		if err := Check(trusted, s, signed); err != nil {
			return err
		}
	}
	pub, err := AttachTo(ctx, repo, signed, time.Now())
	for _, b := range pub {
		fmt.Fprintf(p.Stdout(), "signed %s %s@%s: %s\n", b.Evidence, ref, b.Subject, b.Referrer.Digest)
	}
	if err != nil {
		return err
	}
	who := s.Name()
	fmt.Fprintf(p.Stderr(), "signed %d statements about %s@%s as %s\n", len(signed), ref, h, who)
	var types []string
	for _, b := range signed {
		if !slices.Contains(types, b.PredicateType) {
			types = append(types, b.PredicateType)
		}
	}
	for _, o := range [][2]string{{"digest", h.String()}, {"signer", who}, {"signed", strings.Join(types, ",")}} {
		if err := p.SetOutput(o[0], o[1]); err != nil {
			return fmt.Errorf("setting output %s: %w", o[0], err)
		}
	}
	return nil
}

// describe reads the image's root manifest and, for an index, the
// manifests it lists.
func describe(ctx context.Context, repo *registry.Repository, h v1.Hash) (v1.Descriptor, []v1.Descriptor, error) {
	raw, mt, found, err := repo.Manifest(ctx, h.String())
	if err != nil {
		return v1.Descriptor{}, nil, err
	}
	if !found {
		return v1.Descriptor{}, nil, cli.Usagef("%s@%s is not in the registry; sign what was pushed, by its digest", repo.Name(), h)
	}
	root := v1.Descriptor{MediaType: mt, Digest: h, Size: int64(len(raw))}
	if !mt.IsIndex() {
		return root, nil, nil
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return v1.Descriptor{}, nil, fmt.Errorf("reading index %s: %w", h, err)
	}
	return root, idx.Manifests, nil
}

// attestation reads --attest and --type, returning the evidence to add
// once the image's manifests are known; nil without --attest.
func (c *config) attestation() (func(root v1.Descriptor, manifests []v1.Descriptor) (Evidence, error), error) {
	if c.attestFile == "" {
		if c.attestType != "" {
			return nil, errors.New("--type names the type of an --attest predicate; give --attest FILE too")
		}
		return nil, nil
	}
	pt, ok := predicateNames[c.attestType]
	switch {
	case ok:
	case strings.Contains(c.attestType, "://"):
		pt = c.attestType
	case c.attestType == "":
		return nil, errors.New("--attest needs --type: slsaprovenance1, spdxjson, cyclonedx, custom or the predicate type's URI")
	default:
		return nil, fmt.Errorf("--type %q: give slsaprovenance1, spdxjson, cyclonedx, custom or the predicate type's URI", c.attestType)
	}
	data, err := os.ReadFile(c.attestFile)
	if err != nil {
		return nil, fmt.Errorf("--attest: %w", err)
	}
	name := "attestation " + filepath.Base(c.attestFile)
	return func(root v1.Descriptor, manifests []v1.Descriptor) (Evidence, error) {
		all := append([]v1.Descriptor{root}, manifests...)
		// A whole statement is signed as it is, if it is about this image.
		if st, err := sign.ParseStatement(data); err == nil {
			if st.PredicateType != pt {
				return Evidence{}, fmt.Errorf("--attest %s is a %s statement, not --type %s", c.attestFile, st.PredicateType, c.attestType)
			}
			return evidence(name, data, all)
		}
		trimmed := bytes.TrimSpace(data)
		if len(trimmed) == 0 || trimmed[0] != '{' {
			return Evidence{}, fmt.Errorf("--attest %s: not a JSON object (a predicate) or an in-toto statement", c.attestFile)
		}
		var subjects []sign.Subject
		for _, d := range all {
			subjects = append(subjects, sign.DigestSubject("", d.Digest))
		}
		st, err := sign.NewStatement(pt, json.RawMessage(trimmed), subjects...)
		if err != nil {
			return Evidence{}, err
		}
		if _, err := sign.ParseStatement(st); err != nil {
			return Evidence{}, fmt.Errorf("--attest %s: %w", c.attestFile, err)
		}
		return Evidence{Name: name, Statement: st, Subjects: all}, nil
	}, nil
}
