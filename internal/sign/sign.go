// Package sign signs in-toto statements into Sigstore bundles (v0.3, a
// DSSE envelope over the statement) the way cosign v3 does, so that
// `cosign verify` and `cosign verify-attestation` accept what slipway
// attaches: keyless, with a short-lived certificate from Fulcio for an
// OIDC identity, or with a key. Each signature gets an RFC 3161 timestamp
// from a timestamp authority, and an entry in a transparency log when one
// is configured.
//
// A Signer makes one key and asks Fulcio for one certificate per run, so
// each further statement costs a signature and a timestamp (and a log
// entry), not a certificate.
package sign

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	sgsign "github.com/sigstore/sigstore-go/pkg/sign"
)

// The public-good Sigstore instance, cosign's defaults.
const (
	PublicFulcio = "https://fulcio.sigstore.dev"
	PublicTSA    = "https://timestamp.sigstore.dev/api/v1/timestamp"
	PublicRekor  = "https://rekor.sigstore.dev"
)

// Options configure New. Exactly one of Key and Token is set.
type Options struct {
	// Key signs with a private key.
	Key *Key
	// Token is where a keyless signer gets its OIDC token.
	Token TokenSource
	// FulcioURL is the certificate authority for keyless signing.
	FulcioURL string
	// TSAURL is the timestamp authority's endpoint, path included; empty
	// for no signed timestamp.
	TSAURL string
	// RekorURL is the transparency log; empty for none (GitHub's own
	// Sigstore instance, for private repositories, has no log).
	RekorURL string
	// RekorVersion is the log's API: 1 (rekor.sigstore.dev, the default)
	// or 2 (rekor-tiles).
	RekorVersion uint32
	// Transport carries the requests to Fulcio and the TSA (default
	// http.DefaultTransport).
	Transport http.RoundTripper
	// Timeout bounds each request (default 30s).
	Timeout time.Duration
	// Retries is how often a request that failed with 5xx or 429 is
	// retried (default 2).
	Retries uint
}

// PublicGood returns options for the public-good instance: Fulcio, its
// timestamp authority and Rekor.
func PublicGood() Options {
	return Options{FulcioURL: PublicFulcio, TSAURL: PublicTSA, RekorURL: PublicRekor, RekorVersion: 1}
}

// Signer signs statements. It is safe for concurrent use.
type Signer struct {
	keypair sgsign.Keypair
	certs   *certCache // nil when signing with a key
	tsa     []*sgsign.TimestampAuthority
	tlog    []sgsign.Transparency
}

// New makes a signer. A keyless signer makes its key and gets its
// certificate now, so that a token Fulcio refuses fails before anything
// is published.
func New(ctx context.Context, o Options) (*Signer, error) {
	if (o.Key == nil) == (o.Token == nil) {
		return nil, errors.New("signing needs either a key or an OIDC token source")
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Retries == 0 {
		o.Retries = 2
	}
	s := &Signer{}
	if o.TSAURL != "" {
		s.tsa = []*sgsign.TimestampAuthority{sgsign.NewTimestampAuthority(&sgsign.TimestampAuthorityOptions{
			URL: o.TSAURL, Timeout: o.Timeout, Retries: o.Retries, Transport: o.Transport,
		})}
	}
	if o.RekorURL != "" {
		v := o.RekorVersion
		if v == 0 {
			v = 1
		}
		if v != 1 && v != 2 {
			return nil, fmt.Errorf("rekor API version %d: slipway speaks 1 and 2", v)
		}
		s.tlog = []sgsign.Transparency{sgsign.NewRekor(&sgsign.RekorOptions{
			BaseURL: o.RekorURL, Timeout: o.Timeout, Retries: o.Retries, Version: v,
		})}
	}
	if o.Key != nil {
		kp, err := newKeypair(o.Key)
		if err != nil {
			return nil, err
		}
		s.keypair = kp
		return s, nil
	}
	if o.FulcioURL == "" {
		return nil, errors.New("keyless signing needs a Fulcio URL")
	}
	kp, err := sgsign.NewEphemeralKeypair(nil)
	if err != nil {
		return nil, fmt.Errorf("making a signing key: %w", err)
	}
	s.keypair = kp
	s.certs = &certCache{
		token:  o.Token,
		fulcio: sgsign.NewFulcio(&sgsign.FulcioOptions{BaseURL: o.FulcioURL, Timeout: o.Timeout, Retries: o.Retries, Transport: o.Transport}),
	}
	if _, err := s.certs.GetCertificate(ctx, kp, nil); err != nil {
		return nil, err
	}
	return s, nil
}

// Identity describes who signs: the certificate's subject and OIDC
// issuer, or "key" and the key's fingerprint.
func (s *Signer) Identity() (subject, issuer string) {
	if s.certs == nil {
		return "key", string(s.keypair.GetHint())
	}
	return s.certs.identity()
}

// Name is the signer as a verifier will see it, for messages: "SUBJECT
// (issuer ISSUER)" or "key HINT".
func (s *Signer) Name() string {
	subject, issuer := s.Identity()
	if s.certs == nil {
		return "key " + issuer
	}
	return subject + " (issuer " + issuer + ")"
}

// PublicKey is the public half of the signing key.
func (s *Signer) PublicKey() crypto.PublicKey { return s.keypair.GetPublicKey() }

// Keyless reports whether the signer signs with a Fulcio certificate.
func (s *Signer) Keyless() bool { return s.certs != nil }

// Evidence is how many signed timestamps and log entries each bundle
// carries.
func (s *Signer) Evidence() (timestamps, tlogEntries int) { return len(s.tsa), len(s.tlog) }

// PayloadType is the DSSE payload type of an in-toto statement.
const PayloadType = "application/vnd.in-toto+json"

// Sign signs an in-toto Statement v1 and returns the Sigstore bundle
// (v0.3) as JSON.
func (s *Signer) Sign(ctx context.Context, statement []byte) ([]byte, error) {
	if _, err := ParseStatement(statement); err != nil {
		return nil, err
	}
	opts := sgsign.BundleOptions{
		TimestampAuthorities: s.tsa,
		TransparencyLogs:     s.tlog,
		Context:              ctx,
	}
	if s.certs != nil {
		opts.CertificateProvider = s.certs
	}
	b, err := sgsign.Bundle(&sgsign.DSSEData{Data: statement, PayloadType: PayloadType}, s.keypair, opts)
	if err != nil {
		return nil, s.scrub(fmt.Errorf("signing: %w", err))
	}
	out, err := protojson.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("encoding the bundle: %w", err)
	}
	return out, nil
}

// scrub replaces the last OIDC token in err's text, should a service
// have echoed it back. The error then no longer wraps the original.
func (s *Signer) scrub(err error) error {
	if s.certs == nil {
		return err
	}
	return s.certs.scrub(err)
}

// certCache is a CertificateProvider that asks Fulcio once per key and
// again only when the certificate has under refreshBefore left: Fulcio's
// certificates last ten minutes, and a signature must be timestamped
// inside them.
type certCache struct {
	token  TokenSource
	fulcio *sgsign.Fulcio

	mu       sync.Mutex
	der      []byte
	cert     *x509.Certificate
	lastTok  string
	requests int
}

const refreshBefore = 2 * time.Minute

var _ sgsign.CertificateProvider = (*certCache)(nil)

// GetCertificate returns the cached certificate, or a new one for the
// keypair from Fulcio. The options are ignored: the token comes from the
// cache's source.
func (c *certCache) GetCertificate(ctx context.Context, kp sgsign.Keypair, _ *sgsign.CertificateProviderOptions) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cert != nil && time.Until(c.cert.NotAfter) > refreshBefore {
		return c.der, nil
	}
	tok, err := c.token.Token(ctx)
	if err != nil {
		return nil, fmt.Errorf("getting %s: %w", c.token, err)
	}
	c.lastTok = tok
	der, err := c.fulcio.GetCertificate(ctx, kp, &sgsign.CertificateProviderOptions{IDToken: tok})
	if err != nil {
		return nil, c.scrubLocked(fmt.Errorf("getting a certificate from Fulcio for %s: %w", c.token, err))
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("reading Fulcio's certificate: %w", err)
	}
	c.der, c.cert = der, cert
	c.requests++
	return der, nil
}

func (c *certCache) identity() (subject, issuer string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cert == nil {
		return "", ""
	}
	sum, err := certificate.SummarizeCertificate(c.cert)
	if err != nil {
		return "", ""
	}
	return sum.SubjectAlternativeName, sum.Issuer
}

func (c *certCache) scrub(err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.scrubLocked(err)
}

func (c *certCache) scrubLocked(err error) error {
	if err == nil || c.lastTok == "" || !strings.Contains(err.Error(), c.lastTok) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), c.lastTok, "***"))
}
