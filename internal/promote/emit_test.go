package promote

import (
	"bytes"
	"compress/gzip"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/sigstore/sigstore-go/pkg/root"
	"go.yaml.in/yaml/v3"

	"github.com/slipwayci/slipway/internal/sign"
)

// crdSchema compiles the openAPIV3Schema of version of a vendored CRD
// (testdata/crds, see SOURCE.md). Objects that list their properties and
// do not preserve unknown fields are closed, as the API server's strict
// field validation treats them: a misspelt key fails, not pruned away.
func crdSchema(t *testing.T, file, version string) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "crds", file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(file, ".gz") {
		if r, err = gzip.NewReader(f); err != nil {
			t.Fatal(err)
		}
	}
	var crd struct {
		Spec struct {
			Versions []struct {
				Name   string
				Schema struct {
					OpenAPIV3Schema map[string]any `yaml:"openAPIV3Schema"`
				}
			}
		}
	}
	if err := yaml.NewDecoder(r).Decode(&crd); err != nil {
		t.Fatal(err)
	}
	for _, v := range crd.Spec.Versions {
		if v.Name != version {
			continue
		}
		s := v.Schema.OpenAPIV3Schema
		// Every object has these, whether or not its CRD lists them.
		props, _ := s["properties"].(map[string]any)
		for k, typ := range map[string]string{"apiVersion": "string", "kind": "string", "metadata": "object"} {
			if _, ok := props[k]; !ok {
				props[k] = map[string]any{"type": typ}
			}
		}
		closeObjects(s)
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft4)
		if err := c.AddResource("crd.json", roundTrip(t, s)); err != nil {
			t.Fatal(err)
		}
		sch, err := c.Compile("crd.json")
		if err != nil {
			t.Fatal(err)
		}
		return sch
	}
	t.Fatalf("%s has no version %s", file, version)
	return nil
}

func closeObjects(n any) {
	switch v := n.(type) {
	case map[string]any:
		if _, ok := v["properties"]; ok {
			_, ap := v["additionalProperties"]
			_, keep := v["x-kubernetes-preserve-unknown-fields"]
			if !ap && !keep {
				v["additionalProperties"] = false
			}
		}
		for _, c := range v {
			closeObjects(c)
		}
	case []any:
		for _, c := range v {
			closeObjects(c)
		}
	}
}

// roundTrip makes v what a JSON decoder would give.
func roundTrip(t *testing.T, v any) any {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

const emitConfig = `trust:
  identities:
    - issuer: https://token.actions.githubusercontent.com
      subjectRegexp: '^https://github\.com/acme/hello/\.github/workflows/release\.yml@refs/heads/main$'
      repository: acme/hello
      ref: refs/heads/main
  keys: [ci.pub]
  require: {timestamp: true}
environments:
  staging:
    repository: registry.test/staging/hello
    tags: [staging]
  production:
    repository: registry.test/prod/hello
    tags: [production]
    gates:
      from: staging
      scan: {maxSeverity: high}
      sbom: true
      provenance: {repository: acme/hello, ref: refs/heads/main}
`

// The policies --emit writes validate against Kyverno's and
// policy-controller's published CRDs, and carry the trust: block's
// identities, keys, roots and the gates' attestation types.
func TestAdmissionPolicyValidates(t *testing.T) {
	dir := t.TempDir()
	writePublicKey(t, filepath.Join(dir, "ci.pub"))
	path := filepath.Join(dir, ".slipway.yaml")
	if err := os.WriteFile(path, []byte(emitConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Trust.root = testRoot(t) // as if trustedRoot named a file
	prod := cfg.Environments["production"]

	for _, tc := range []struct {
		kind, file, version string
		want                []string
		typo                func(doc map[string]any)
	}{
		{EmitKyverno, "kyverno.io_clusterpolicies.yaml.gz", "v1",
			[]string{"kind: ClusterPolicy", "type: SigstoreBundle", "subjectRegExp: ^https://github\\.com/acme/hello/", "githubWorkflowRepository: acme/hello",
				"- registry.test/prod/hello*", "type: " + ScanPredicateType, "type: " + sign.SPDXPredicate, "type: " + sign.SLSAProvenancePredicate,
				"BEGIN PUBLIC KEY", "roots: |", "tsaCertChain: |", "ignoreTlog: true", "ignoreSCT: true"},
			func(doc map[string]any) {
				rule := doc["spec"].(map[string]any)["rules"].([]any)[0].(map[string]any)
				rule["verifyImages"].([]any)[0].(map[string]any)["imageReference"] = "x"
			}},
		{EmitPolicyController, "policy.sigstore.dev_clusterimagepolicies.yaml", "v1beta1",
			[]string{"kind: ClusterImagePolicy", "signatureFormat: bundle", "issuer: https://token.actions.githubusercontent.com", "- glob: registry.test/prod/hello**",
				"predicateType: " + ScanPredicateType, "predicateType: " + sign.SPDXPredicate, "predicateType: " + sign.SLSAProvenancePredicate,
				"BEGIN PUBLIC KEY", "trustRootRef: slipway-production"},
			func(doc map[string]any) {
				spec := doc["spec"].(map[string]any)
				spec["authorities"].([]any)[0].(map[string]any)["keyless"].(map[string]any)["identity"] = "x"
			}},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			out, err := AdmissionPolicy(cfg, prod, tc.kind)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("policy lacks %q:\n%s", w, out)
				}
			}
			var doc map[string]any
			if err := yaml.Unmarshal(out, &doc); err != nil {
				t.Fatal(err)
			}
			sch := crdSchema(t, tc.file, tc.version)
			if err := sch.Validate(roundTrip(t, doc)); err != nil {
				t.Fatalf("the %s policy does not validate against its CRD: %v\n%s", tc.kind, err, out)
			}
			// The validation can fail: a misspelt key does.
			tc.typo(doc)
			if err := sch.Validate(roundTrip(t, doc)); err == nil {
				t.Errorf("a misspelt key validated against the %s CRD", tc.kind)
			}
		})
	}

	if _, err := AdmissionPolicy(cfg, nil, EmitKyverno); err == nil || !strings.Contains(err.Error(), "--emit needs --env") {
		t.Errorf("no environment: %v", err)
	}
	if _, err := AdmissionPolicy(cfg, prod, "gatekeeper"); err == nil || !strings.Contains(err.Error(), "use kyverno or policy-controller") {
		t.Errorf("unknown kind: %v", err)
	}
}

// testRoot is a trusted root with one self-signed CA as its Fulcio and
// its timestamp authority, and no logs.
func testRoot(t *testing.T) root.TrustedMaterial {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "slipway test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	r, err := root.NewTrustedRoot(root.TrustedRootMediaType01,
		[]root.CertificateAuthority{&root.FulcioCertificateAuthority{Root: cert}}, nil,
		[]root.TimestampingAuthority{&root.SigstoreTimestampingAuthority{Root: cert}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
