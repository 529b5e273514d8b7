package sign

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// BundleMediaType is a Sigstore bundle v0.3's media type, which cosign
// uses as the referrer's artifactType and its one layer's media type.
const BundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"

// Annotations cosign puts on a bundle's referrer, so that a referrers
// listing says what each bundle holds without fetching it.
const (
	AnnotationContent       = "dev.sigstore.bundle.content"
	AnnotationPredicateType = "dev.sigstore.bundle.predicateType"
	AnnotationCreated       = "org.opencontainers.image.created"
)

// An Attacher publishes a one-layer OCI 1.1 artifact (the empty config,
// data as its layer) whose subject is a manifest already in the
// repository, listed among the subject's referrers through the referrers
// API or the fallback tag. It returns the artifact manifest's descriptor.
type Attacher interface {
	Attach(ctx context.Context, subject v1.Descriptor, data []byte, mediaType, artifactType string, annotations map[string]string) (v1.Descriptor, error)
}

// AttachFunc adapts a function to Attacher, e.g. a registry client's
// attach method.
type AttachFunc func(ctx context.Context, subject v1.Descriptor, data []byte, mediaType, artifactType string, annotations map[string]string) (v1.Descriptor, error)

// Attach calls f.
func (f AttachFunc) Attach(ctx context.Context, subject v1.Descriptor, data []byte, mediaType, artifactType string, annotations map[string]string) (v1.Descriptor, error) {
	return f(ctx, subject, data, mediaType, artifactType, annotations)
}

// Publish attaches a bundle to subject the way cosign v3 stores one: an
// artifact of type BundleMediaType with the bundle as its layer, and the
// content, predicate type and creation time as annotations. The bundle's
// statement must name the subject, so nothing is published that a
// verifier would then refuse as about another digest.
func Publish(ctx context.Context, repo Attacher, subject v1.Descriptor, bundle []byte, created time.Time) (v1.Descriptor, error) {
	st, err := BundleStatement(bundle)
	if err != nil {
		return v1.Descriptor{}, err
	}
	if !st.Names(subject.Digest) {
		return v1.Descriptor{}, fmt.Errorf("publishing a %s bundle: its statement does not name %s", st.PredicateType, subject.Digest)
	}
	ann := map[string]string{
		AnnotationContent:       "dsse-envelope",
		AnnotationPredicateType: st.PredicateType,
		AnnotationCreated:       created.UTC().Format(time.RFC3339),
	}
	desc, err := repo.Attach(ctx, subject, bundle, BundleMediaType, BundleMediaType, ann)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("publishing the %s bundle for %s: %w", st.PredicateType, subject.Digest, err)
	}
	return desc, nil
}

// BundleStatement reads the statement inside a bundle's DSSE envelope,
// unverified: for labels and checks before publishing, never for trust.
func BundleStatement(bundle []byte) (*Statement, error) {
	var b struct {
		MediaType    string `json:"mediaType"`
		DSSEEnvelope *struct {
			Payload     []byte `json:"payload"`
			PayloadType string `json:"payloadType"`
		} `json:"dsseEnvelope"`
	}
	if err := json.Unmarshal(bundle, &b); err != nil {
		return nil, fmt.Errorf("reading the bundle: %w", err)
	}
	if b.MediaType != BundleMediaType {
		return nil, fmt.Errorf("reading the bundle: media type %q, not %s", b.MediaType, BundleMediaType)
	}
	if b.DSSEEnvelope == nil {
		return nil, errors.New("reading the bundle: it holds no DSSE envelope")
	}
	if b.DSSEEnvelope.PayloadType != PayloadType {
		return nil, fmt.Errorf("reading the bundle: payload type %q, not %s", b.DSSEEnvelope.PayloadType, PayloadType)
	}
	return ParseStatement(b.DSSEEnvelope.Payload)
}
