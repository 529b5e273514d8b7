package promote

import (
	"crypto/x509"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"go.yaml.in/yaml/v3"

	"github.com/slipwayci/slipway/internal/fault"
	"github.com/slipwayci/slipway/internal/sign"
)

// Admission policy kinds slipway verify --emit writes.
const (
	EmitKyverno          = "kyverno"
	EmitPolicyController = "policy-controller"
)

// attestationTypes are the predicate types env's gates read, which the
// cluster should require too.
func attestationTypes(env *Environment) []string {
	var out []string
	if env.Gates.Scan != nil {
		out = append(out, ScanPredicateType)
	}
	if env.Gates.SBOM {
		// The cluster can require one type per entry; slipway image writes
		// SPDX for every image.
		out = append(out, sign.SPDXPredicate)
	}
	if env.Gates.Provenance != nil {
		out = append(out, sign.SLSAProvenancePredicate)
	}
	return out
}

// AdmissionPolicy is the admission policy of kind (kyverno or
// policy-controller) that requires, for the images of env's repository,
// a signature by the identities and keys of env's trust: and the
// attestations its gates read: the same trust from CI to cluster.
func AdmissionPolicy(cfg *Config, env *Environment, kind string) ([]byte, error) {
	if env == nil {
		return nil, fault.Invalidf("--emit needs --env: the policy admits the images of one environment's repository")
	}
	t := cfg.TrustFor(env)
	if t == nil {
		return nil, fault.Invalidf("environment %s has no trust: to write an admission policy from", env.Name)
	}
	var doc any
	var err error
	switch kind {
	case EmitKyverno:
		doc, err = kyvernoPolicy(t, env)
	case EmitPolicyController:
		doc, err = policyControllerPolicy(t, env)
	default:
		return nil, fault.Invalidf("--emit %q: use %s or %s", kind, EmitKyverno, EmitPolicyController)
	}
	if err != nil {
		return nil, err
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encoding the %s policy: %w", kind, err)
	}
	header := fmt.Sprintf("# Written by slipway verify --emit %s --env %s from the trust: of .slipway.yaml.\n", kind, env.Name)
	if kind == EmitPolicyController && t.root != nil {
		header += "# Create the TrustRoot slipway-" + env.Name + " (policy.sigstore.dev) from trust.trustedRoot " + t.TrustedRoot.Value + " before applying.\n"
	}
	return append([]byte(header), out...), nil
}

func emitPolicy(w io.Writer, cfg *Config, env *Environment, kind, image string) error {
	if image != "" {
		return fault.Invalidf("--emit writes a policy for the environment's repository; give no image")
	}
	out, err := AdmissionPolicy(cfg, env, kind)
	if err != nil {
		return err
	}
	_, err = w.Write(out)
	return err
}

type object = map[string]any

// pemKeys are the trusted keys as PEM.
func (t *TrustConfig) pemKeys() ([]string, error) {
	var out []string
	for _, k := range t.keys {
		p, err := cryptoutils.MarshalPublicKeyToPEM(k)
		if err != nil {
			return nil, fmt.Errorf("encoding a trusted key: %w", err)
		}
		out = append(out, string(p))
	}
	return out, nil
}

// rootPEMs are the trusted root's Fulcio chains and timestamp
// authorities' chains, when a trusted root file is given.
func (t *TrustConfig) rootPEMs() (fulcio, tsa string, err error) {
	if t.root == nil {
		return "", "", nil
	}
	var fc, tc []*x509.Certificate
	for _, ca := range t.root.FulcioCertificateAuthorities() {
		if f, ok := ca.(*root.FulcioCertificateAuthority); ok {
			fc = append(append(fc, f.Intermediates...), f.Root)
		}
	}
	for _, ta := range t.root.TimestampingAuthorities() {
		if s, ok := ta.(*root.SigstoreTimestampingAuthority); ok {
			if s.Leaf != nil {
				tc = append(tc, s.Leaf)
			}
			tc = append(append(tc, s.Intermediates...), s.Root)
		}
	}
	pem := func(cs []*x509.Certificate) (string, error) {
		if len(cs) == 0 {
			return "", nil
		}
		b, err := cryptoutils.MarshalCertificatesToPEM(cs)
		return string(b), err
	}
	if fulcio, err = pem(fc); err != nil {
		return "", "", err
	}
	tsa, err = pem(tc)
	return fulcio, tsa, err
}

func (t *TrustConfig) hasCTLog() bool { return t.root == nil || len(t.root.CTLogs()) > 0 }

// kyvernoPolicy is a Kyverno ClusterPolicy with one verifyImages rule
// reading Sigstore bundles as OCI referrers (type SigstoreBundle).
func kyvernoPolicy(t *TrustConfig, env *Environment) (object, error) {
	fulcioPEM, tsaPEM, err := t.rootPEMs()
	if err != nil {
		return nil, err
	}
	var entries []any
	for _, id := range t.Identities {
		k := object{}
		setEither(k, "issuer", id.Issuer.Value, "issuerRegExp", id.IssuerRegexp.Value)
		setEither(k, "subject", id.Subject.Value, "subjectRegExp", id.SubjectRegexp.Value)
		ext := object{}
		if id.Repository.Value != "" {
			ext["githubWorkflowRepository"] = strings.TrimPrefix(repositoryURI(id.Repository.Value), "https://github.com/")
		}
		if id.Ref.Value != "" {
			ext["githubWorkflowRef"] = id.Ref.Value
		}
		if len(ext) > 0 {
			k["additionalExtensions"] = ext
		}
		if fulcioPEM != "" {
			k["roots"] = fulcioPEM
		}
		k["rekor"] = object{"ignoreTlog": !t.Require.Tlog}
		ctlog := object{"ignoreSCT": !t.hasCTLog()}
		if tsaPEM != "" && t.Require.Timestamp {
			ctlog["tsaCertChain"] = tsaPEM
		}
		k["ctlog"] = ctlog
		entries = append(entries, object{"keyless": k})
	}
	keys, err := t.pemKeys()
	if err != nil {
		return nil, err
	}
	for _, p := range keys {
		k := object{"publicKeys": p, "rekor": object{"ignoreTlog": !t.Require.Tlog}, "ctlog": object{"ignoreSCT": true}}
		if tsaPEM != "" && t.Require.Timestamp {
			k["ctlog"] = object{"ignoreSCT": true, "tsaCertChain": tsaPEM}
		}
		entries = append(entries, object{"keys": k})
	}
	attestors := []any{object{"count": 1, "entries": entries}}
	var attestations []any
	for _, pt := range attestationTypes(env) {
		attestations = append(attestations, object{"type": pt, "attestors": attestors})
	}
	verify := object{
		"imageReferences": []any{env.Repository + "*"},
		"type":            "SigstoreBundle",
		"failureAction":   "Enforce",
		"mutateDigest":    true,
		"verifyDigest":    true,
		"required":        true,
		"attestors":       attestors,
	}
	if len(attestations) > 0 {
		verify["attestations"] = attestations
	}
	return object{
		"apiVersion": "kyverno.io/v1",
		"kind":       "ClusterPolicy",
		"metadata":   object{"name": policyName(env)},
		"spec": object{
			"background":            false,
			"webhookTimeoutSeconds": 30,
			"rules": []any{object{
				"name":         "slipway-trust",
				"match":        object{"any": []any{object{"resources": object{"kinds": []any{"Pod"}}}}},
				"verifyImages": []any{verify},
			}},
		},
	}, nil
}

// policyControllerPolicy is a sigstore policy-controller
// ClusterImagePolicy: one authority per identity and key (any one
// admits), each requiring the attestations the gates read.
func policyControllerPolicy(t *TrustConfig, env *Environment) (object, error) {
	var atts []any
	for _, pt := range attestationTypes(env) {
		atts = append(atts, object{"name": attestationName(pt), "predicateType": pt})
	}
	var authorities []any
	add := func(name string, a object) {
		a["name"] = name
		a["signatureFormat"] = "bundle"
		if t.root != nil {
			if t.Require.Timestamp {
				a["rfc3161timestamp"] = object{"trustRootRef": "slipway-" + env.Name}
			}
			if t.Require.Tlog {
				a["ctlog"] = object{"trustRootRef": "slipway-" + env.Name}
			}
		}
		if len(atts) > 0 {
			a["attestations"] = atts
		}
		authorities = append(authorities, a)
	}
	for i, id := range t.Identities {
		ident := object{}
		setEither(ident, "issuer", id.Issuer.Value, "issuerRegExp", id.IssuerRegexp.Value)
		setEither(ident, "subject", id.Subject.Value, "subjectRegExp", id.SubjectRegexp.Value)
		k := object{"identities": []any{ident}, "insecureIgnoreSCT": !t.hasCTLog()}
		if t.root != nil {
			k["trustRootRef"] = "slipway-" + env.Name
		}
		add(fmt.Sprintf("identity-%d", i), object{"keyless": k})
	}
	keys, err := t.pemKeys()
	if err != nil {
		return nil, err
	}
	for i, p := range keys {
		add(fmt.Sprintf("key-%d", i), object{"key": object{"data": p}})
	}
	return object{
		"apiVersion": "policy.sigstore.dev/v1beta1",
		"kind":       "ClusterImagePolicy",
		"metadata":   object{"name": policyName(env)},
		"spec": object{
			"images":      []any{object{"glob": env.Repository + "**"}},
			"authorities": authorities,
		},
	}, nil
}

func setEither(o object, exactKey, exact, reKey, re string) {
	if exact != "" {
		o[exactKey] = exact
	} else if re != "" {
		o[reKey] = re
	}
}

var nonName = regexp.MustCompile(`[^a-z0-9-]+`)

// policyName is a Kubernetes name for env's policy.
func policyName(env *Environment) string {
	return strings.Trim(nonName.ReplaceAllString("slipway-"+strings.ToLower(env.Name), "-"), "-")
}

func attestationName(pt string) string {
	switch pt {
	case ScanPredicateType:
		return "scan"
	case sign.SLSAProvenancePredicate:
		return "provenance"
	}
	if slices.Contains([]string{sign.SPDXPredicate, sign.CycloneDXPredicate}, pt) {
		return "sbom"
	}
	return "attestation"
}
