package sign

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/slipwayci/slipway/internal/cli"
)

// Config is how a step asks for signing, as its flags give it.
type Config struct {
	// Sign is "keyless", "off", a private key file, or "" for the
	// default: keyless where the CI offers an OIDC token, else off.
	Sign string
	// IdentityToken is a file holding the OIDC token, for keyless
	// signing where the CI offers none.
	IdentityToken string
	// FulcioURL, TSAURL and RekorURL default to the public-good
	// instance's; "none" leaves the timestamp authority or the log out.
	FulcioURL, TSAURL, RekorURL string
	// RekorVersion is the log's API, 1 (default) or 2.
	RekorVersion uint32
	// Getenv reads the environment: the CI's token variables and
	// COSIGN_PASSWORD.
	Getenv func(string) string
	// Mask is given every secret before it is used (the key password,
	// each OIDC token), so that no stream of the step prints it.
	Mask func(string)
}

// Setup returns the signer c asks for, or nil when signing is off. When
// it chose for the user (no --sign), notice says what it chose, in one
// line. Configuration that cannot work is a usage error (exit 2).
func Setup(ctx context.Context, c Config) (s *Signer, notice string, err error) {
	if c.Getenv == nil {
		c.Getenv = func(string) string { return "" }
	}
	if c.Mask == nil {
		c.Mask = func(string) {}
	}
	o := PublicGood()
	o.RekorVersion = c.RekorVersion
	for _, u := range []struct {
		flag, v  string
		dst      *string
		optional bool
	}{
		{"--fulcio-url", c.FulcioURL, &o.FulcioURL, false},
		{"--tsa-url", c.TSAURL, &o.TSAURL, true},
		{"--rekor-url", c.RekorURL, &o.RekorURL, true},
	} {
		switch v := strings.TrimSpace(u.v); {
		case v == "":
		case v == "none" && u.optional:
			*u.dst = ""
		case strings.HasPrefix(v, "https://") || strings.HasPrefix(v, "http://"):
			*u.dst = strings.TrimSuffix(v, "/")
		case u.optional:
			return nil, "", cli.Usagef("%s %q: give an http(s) URL, or none", u.flag, v)
		default:
			return nil, "", cli.Usagef("%s %q: give an http(s) URL", u.flag, v)
		}
	}
	if o.RekorVersion > 2 {
		return nil, "", cli.Usagef("--rekor-api %d: slipway speaks Rekor's API 1 and 2", o.RekorVersion)
	}

	mode := strings.TrimSpace(c.Sign)
	switch mode {
	case "off":
		return nil, "", nil
	case "", "keyless":
		src, ok := c.tokenSource()
		if !ok {
			if mode == "" {
				return nil, "not signing: no OIDC token here (on GitHub add `permissions: id-token: write`, on GitLab an `id_tokens: SIGSTORE_ID_TOKEN` with aud sigstore; or --sign KEY)", nil
			}
			return nil, "", cli.Usagef("--sign keyless needs an OIDC token: on GitHub add `permissions: id-token: write` to the job, on GitLab declare `id_tokens: SIGSTORE_ID_TOKEN: {aud: sigstore}`, elsewhere give --identity-token FILE")
		}
		o.Token = &maskedToken{src: src, mask: c.Mask}
		s, err := New(ctx, o)
		if err != nil {
			return nil, "", err
		}
		if mode == "" {
			subject, issuer := s.Identity()
			notice = fmt.Sprintf("signing keyless as %s (issuer %s)", subject, issuer)
		}
		return s, notice, nil
	default:
		key, err := LoadKey(mode, func() ([]byte, error) {
			p := c.Getenv("COSIGN_PASSWORD")
			c.Mask(p)
			return []byte(p), nil
		})
		if err != nil {
			return nil, "", cli.Usage(fmt.Errorf("--sign: %w", err))
		}
		o.Key, o.FulcioURL = key, ""
		s, err := New(ctx, o)
		return s, "", err
	}
}

func (c Config) tokenSource() (TokenSource, bool) {
	if c.IdentityToken != "" {
		return &FileToken{Path: c.IdentityToken}, true
	}
	return DetectToken(c.Getenv)
}

// maskedToken masks each token before handing it on.
type maskedToken struct {
	src  TokenSource
	mask func(string)
}

func (m *maskedToken) String() string { return m.src.String() }

func (m *maskedToken) Token(ctx context.Context) (string, error) {
	tok, err := m.src.Token(ctx)
	if err != nil {
		return "", err
	}
	if tok == "" {
		return "", errors.New("the OIDC token is empty")
	}
	m.mask(tok)
	return tok, nil
}
