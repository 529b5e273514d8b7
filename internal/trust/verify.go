// Package trust decides whether a Sigstore bundle is evidence slipway may
// believe: its signature verifies under a trusted root or a trusted key,
// the signer is an identity the policy names, it carries the timestamps
// and log entries the policy requires, and its statement is about the
// digest in question with the predicate type the caller reads. What it
// returns (the statement, the signer and the signature's time) comes from
// verified material only, never from the statement's own claims.
package trust

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/slipwayci/slipway/internal/sign"
)

// Identity is a keyless signer the policy trusts: the certificate's OIDC
// issuer and subject, each exact or a regular expression, and optionally
// certificate extensions that must match exactly, such as GitHub's
// SourceRepositoryURI, SourceRepositoryRef or BuildConfigURI.
type Identity struct {
	Issuer, IssuerRegexp   string
	Subject, SubjectRegexp string
	Extensions             certificate.Extensions
}

// Policy is what a Verifier trusts and requires.
type Policy struct {
	// Root holds the trusted certificate authorities, timestamp
	// authorities and transparency logs (a trusted_root.json). It may be
	// nil when only Keys are trusted.
	Root root.TrustedMaterial
	// Identities are the keyless signers trusted; a bundle must match one.
	Identities []Identity
	// Keys are the public keys trusted.
	Keys []crypto.PublicKey
	// Timestamps is how many signed timestamps from the root's timestamp
	// authorities a bundle needs.
	Timestamps int
	// TlogEntries is how many entries in the root's transparency logs a
	// bundle needs.
	TlogEntries int
	// SCTs is how many certificate transparency log timestamps a
	// certificate needs (private instances such as GitHub's have no CT
	// log, and then 0).
	SCTs int
}

// Expect says what the statement must be about.
type Expect struct {
	// Digest must be among the statement's subjects.
	Digest v1.Hash
	// PredicateType, if set, must be the statement's.
	PredicateType string
}

// Result is a verified bundle.
type Result struct {
	// Statement is the signed statement; Payload its bytes as signed.
	Statement *sign.Statement
	Payload   []byte
	// Signer is who signed it, as the certificate or key says.
	Signer Signer
	// Time is the earliest verified time of the signature (from a
	// timestamp authority or a log's signed entry); zero when the policy
	// required none and the bundle had none. Times lists them all.
	Time  time.Time
	Times []verify.TimestampVerificationResult
}

// Signer is a verified signer.
type Signer struct {
	// Subject and Issuer are the certificate's identity and OIDC issuer;
	// empty for a key.
	Subject, Issuer string
	// Extensions are the certificate's Fulcio extensions.
	Extensions certificate.Extensions
	// KeyID is the SHA-256 fingerprint of the trusted key that verified
	// the signature; empty for a certificate.
	KeyID string
}

func (s Signer) String() string {
	if s.KeyID != "" {
		return "key " + s.KeyID
	}
	return s.Subject + " (issuer " + s.Issuer + ")"
}

// Reason classifies a refusal, for the one-line reasons gates report.
type Reason int

const (
	// NotABundle: the data is not a Sigstore bundle over a statement
	// (an unsigned statement, for one).
	NotABundle Reason = iota + 1
	// OtherDigest: the statement is about other digests.
	OtherDigest
	// OtherPredicate: the statement's predicate type is not the expected one.
	OtherPredicate
	// Untrusted: the signature does not verify under the policy: wrong
	// key or identity, untrusted CA, missing timestamp or log entry, or
	// content changed after signing.
	Untrusted
)

// Error is a refused bundle.
type Error struct {
	Reason Reason
	// Claimed is who the bundle claims signed it, unverified: for
	// messages only.
	Claimed string
	Err     error
}

func (e *Error) Error() string {
	switch e.Reason {
	case Untrusted:
		if e.Claimed != "" {
			return fmt.Sprintf("signed by %s, not trusted: %v", e.Claimed, e.Err)
		}
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Verifier verifies bundles under one policy.
type Verifier struct {
	p          Policy
	identities []verify.CertificateIdentity
	keyless    *verify.Verifier
	keys       []keyVerifier
}

type keyVerifier struct {
	id string
	v  *verify.Verifier
}

// New checks the policy and prepares its verifiers.
func New(p Policy) (*Verifier, error) {
	if len(p.Identities) == 0 && len(p.Keys) == 0 {
		return nil, errors.New("a trust policy needs at least one identity or key")
	}
	if p.Timestamps < 0 || p.TlogEntries < 0 || p.SCTs < 0 {
		return nil, errors.New("a trust policy cannot require a negative number of timestamps, log entries or SCTs")
	}
	v := &Verifier{p: p}
	base := p.Root
	if base == nil {
		base = &root.BaseTrustedMaterial{}
	}
	if len(p.Identities) > 0 {
		if p.Root == nil {
			return nil, errors.New("keyless identities need a trusted root")
		}
		if p.Timestamps == 0 && p.TlogEntries == 0 {
			return nil, errors.New("keyless identities need a signed timestamp or a transparency log entry to date the certificate")
		}
		for _, id := range p.Identities {
			ci, err := newIdentity(id)
			if err != nil {
				return nil, err
			}
			v.identities = append(v.identities, ci)
		}
		opts := v.timeOptions(true)
		if p.SCTs > 0 {
			opts = append(opts, verify.WithSignedCertificateTimestamps(p.SCTs))
		}
		kv, err := verify.NewVerifier(base, opts...)
		if err != nil {
			return nil, fmt.Errorf("preparing the keyless verifier: %w", err)
		}
		v.keyless = kv
	}
	for _, k := range p.Keys {
		sv, err := signature.LoadDefaultVerifier(k)
		if err != nil {
			return nil, fmt.Errorf("loading trusted key: %w", err)
		}
		expiring := root.NewExpiringKey(sv, time.Time{}, time.Time{})
		keys := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) { return expiring, nil })
		kv, err := verify.NewVerifier(root.TrustedMaterialCollection{base, keys}, v.timeOptions(false)...)
		if err != nil {
			return nil, fmt.Errorf("preparing the key verifier: %w", err)
		}
		id, err := KeyID(k)
		if err != nil {
			return nil, err
		}
		v.keys = append(v.keys, keyVerifier{id: id, v: kv})
	}
	return v, nil
}

// timeOptions says where a signature's time comes from: signed
// timestamps, a log's integrated time, or (for keys only) nowhere.
func (v *Verifier) timeOptions(keyless bool) []verify.VerifierOption {
	var opts []verify.VerifierOption
	if v.p.TlogEntries > 0 {
		opts = append(opts, verify.WithTransparencyLog(v.p.TlogEntries))
	}
	switch {
	case v.p.Timestamps > 0:
		opts = append(opts, verify.WithSignedTimestamps(v.p.Timestamps))
	case v.p.TlogEntries > 0 && keyless:
		opts = append(opts, verify.WithIntegratedTimestamps(v.p.TlogEntries))
	case !keyless:
		opts = append(opts, verify.WithNoObserverTimestamps())
	}
	return opts
}

func newIdentity(id Identity) (verify.CertificateIdentity, error) {
	if id.Issuer == "" && id.IssuerRegexp == "" {
		return verify.CertificateIdentity{}, errors.New("a trusted identity needs an OIDC issuer")
	}
	if id.Subject == "" && id.SubjectRegexp == "" {
		return verify.CertificateIdentity{}, errors.New("a trusted identity needs a subject")
	}
	for _, re := range []string{id.IssuerRegexp, id.SubjectRegexp} {
		if re == "" {
			continue
		}
		if _, err := regexp.Compile(re); err != nil {
			return verify.CertificateIdentity{}, fmt.Errorf("compiling %q: %w", re, err)
		}
	}
	san, err := verify.NewSANMatcher(id.Subject, id.SubjectRegexp)
	if err != nil {
		return verify.CertificateIdentity{}, err
	}
	iss, err := verify.NewIssuerMatcher(id.Issuer, id.IssuerRegexp)
	if err != nil {
		return verify.CertificateIdentity{}, err
	}
	return verify.NewCertificateIdentity(san, iss, id.Extensions)
}

// KeyID is a public key's SHA-256 fingerprint over its PKIX encoding.
func KeyID(k crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		return "", fmt.Errorf("encoding public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// Verify verifies a bundle as published (the JSON of a Sigstore bundle
// v0.3 with a DSSE envelope) against the policy and what is expected.
func (v *Verifier) Verify(data []byte, want Expect) (*Result, error) {
	if want.Digest.Algorithm == "" || want.Digest.Hex == "" {
		return nil, errors.New("verifying a bundle needs the digest it must be about")
	}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(data); err != nil {
		return nil, &Error{Reason: NotABundle, Err: fmt.Errorf("not a Sigstore bundle: %w", err)}
	}
	if !b.MinVersion("v0.3") {
		return nil, &Error{Reason: NotABundle, Err: errors.New("a Sigstore bundle older than v0.3")}
	}
	env := b.GetDsseEnvelope()
	if env == nil || env.GetPayloadType() != sign.PayloadType {
		return nil, &Error{Reason: NotABundle, Err: errors.New("the bundle holds no in-toto statement")}
	}
	// Checked before the signature so that the reason names the real
	// problem; the signature check below covers these bytes too.
	st, err := sign.ParseStatement(env.GetPayload())
	if err != nil {
		return nil, &Error{Reason: NotABundle, Err: err}
	}
	if !st.Names(want.Digest) {
		return nil, &Error{Reason: OtherDigest, Err: fmt.Errorf("about another digest, not %s", want.Digest)}
	}
	if want.PredicateType != "" && st.PredicateType != want.PredicateType {
		return nil, &Error{Reason: OtherPredicate, Err: fmt.Errorf("a %s statement, not %s", st.PredicateType, want.PredicateType)}
	}
	digest, err := hex.DecodeString(want.Digest.Hex)
	if err != nil {
		return nil, &Error{Reason: OtherDigest, Err: fmt.Errorf("expected digest %s: %w", want.Digest, err)}
	}
	artifact := verify.WithArtifactDigest(want.Digest.Algorithm, digest)

	vc, err := b.VerificationContent()
	if err != nil {
		return nil, &Error{Reason: NotABundle, Err: err}
	}
	var res *verify.VerificationResult
	var signer Signer
	switch {
	case vc.Certificate() != nil:
		claimed := claimedSigner(vc.Certificate())
		if v.keyless == nil {
			return nil, &Error{Reason: Untrusted, Claimed: claimed, Err: errors.New("the policy trusts no keyless identity")}
		}
		ids := make([]verify.PolicyOption, len(v.identities))
		for i, id := range v.identities {
			ids[i] = verify.WithCertificateIdentity(id)
		}
		res, err = v.keyless.Verify(&b, verify.NewPolicy(artifact, ids...))
		if err != nil {
			return nil, &Error{Reason: Untrusted, Claimed: claimed, Err: err}
		}
		c := res.Signature.Certificate
		signer = Signer{Subject: c.SubjectAlternativeName, Issuer: c.Issuer, Extensions: c.Extensions}
	case vc.PublicKey() != nil:
		if len(v.keys) == 0 {
			return nil, &Error{Reason: Untrusted, Claimed: "a key", Err: errors.New("the policy trusts no key")}
		}
		var errs []error
		for _, k := range v.keys {
			res, err = k.v.Verify(&b, verify.NewPolicy(artifact, verify.WithKey()))
			if err == nil {
				signer = Signer{KeyID: k.id}
				break
			}
			errs = append(errs, err)
		}
		if res == nil {
			return nil, &Error{Reason: Untrusted, Claimed: "a key", Err: fmt.Errorf("no trusted key verifies it: %w", errors.Join(errs...))}
		}
	default:
		return nil, &Error{Reason: NotABundle, Err: errors.New("the bundle has no certificate or key")}
	}

	out := &Result{Statement: st, Payload: bytes.Clone(env.GetPayload()), Signer: signer, Times: res.VerifiedTimestamps}
	for _, t := range res.VerifiedTimestamps {
		if out.Time.IsZero() || t.Timestamp.Before(out.Time) {
			out.Time = t.Timestamp
		}
	}
	return out, nil
}

// claimedSigner names who a certificate says it belongs to, unverified.
func claimedSigner(c *x509.Certificate) string {
	s, err := certificate.SummarizeCertificate(c)
	if err != nil {
		return "an unreadable certificate"
	}
	return s.SubjectAlternativeName + " (issuer " + s.Issuer + ")"
}
