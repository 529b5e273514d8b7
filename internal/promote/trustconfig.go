package promote

import (
	"crypto"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"go.yaml.in/yaml/v3"

	"github.com/slipwayci/slipway/internal/trust"
)

// TrustConfig is the trust: block of .slipway.yaml: whose signatures the
// gates believe. Set at the top level it applies to every environment; an
// environment's own trust: replaces it whole.
type TrustConfig struct {
	// TrustedRoot is a trusted_root.json (Fulcio CAs, timestamp
	// authorities, logs), relative to the config file; empty for the
	// public-good Sigstore instance's, fetched through TUF when needed.
	TrustedRoot located `yaml:"trustedRoot"`
	// Identities are the keyless signers trusted.
	Identities []TrustedIdentity `yaml:"identities"`
	// Keys are public key files (PEM), relative to the config file.
	Keys    []located    `yaml:"keys"`
	Require TrustRequire `yaml:"require"`

	keys []crypto.PublicKey
	root root.TrustedMaterial

	once     sync.Once
	verifier *trust.Verifier
	err      error
}

// TrustedIdentity is one keyless signer: the OIDC issuer and the
// certificate's subject, each exact or a regular expression, and GitHub's
// certificate extensions where given (matched exactly).
type TrustedIdentity struct {
	Issuer        located `yaml:"issuer"`
	IssuerRegexp  located `yaml:"issuerRegexp"`
	Subject       located `yaml:"subject"`
	SubjectRegexp located `yaml:"subjectRegexp"`
	// Repository is owner/name on github.com or a repository URL (the
	// certificate's Source Repository URI).
	Repository located `yaml:"repository"`
	// Ref is the git ref the workflow ran for (Source Repository Ref).
	Ref located `yaml:"ref"`
	// Workflow is the workflow file at its ref (Build Config URI),
	// https://github.com/OWNER/REPO/.github/workflows/FILE@REF.
	Workflow located `yaml:"workflow"`
}

// TrustRequire says what dates a signature.
type TrustRequire struct {
	// Timestamp requires a signed timestamp from a timestamp authority
	// of the trusted root.
	Timestamp bool `yaml:"timestamp"`
	// Tlog requires an entry in a transparency log of the trusted root.
	Tlog bool `yaml:"tlog"`
}

// located is a string with the line it was read from, for errors that
// name it.
type located struct {
	Value string
	Line  int
}

// UnmarshalYAML reads a scalar and remembers its line.
func (l *located) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: expected a string", n.Line)
	}
	l.Value, l.Line = n.Value, n.Line
	return nil
}

// firstLine is the line of the first of ls that was given.
func firstLine(ls ...located) int {
	for _, l := range ls {
		if l.Line > 0 {
			return l.Line
		}
	}
	return 0
}

// check finds what can be found wrong without reading files: a regexp
// that does not compile, an identity without issuer or subject, keyless
// identities with nothing to date their certificates.
func (t *TrustConfig) check() error {
	if len(t.Identities) == 0 && len(t.Keys) == 0 {
		return errors.New("trust: give identities or keys; an empty trust: block would trust nothing")
	}
	for i, id := range t.Identities {
		line := firstLine(id.Issuer, id.IssuerRegexp, id.Subject, id.SubjectRegexp, id.Repository, id.Ref, id.Workflow)
		switch {
		case id.Issuer.Value == "" && id.IssuerRegexp.Value == "":
			return fmt.Errorf("line %d: trust.identities[%d] has no issuer; add issuer: (https://token.actions.githubusercontent.com on GitHub)", line, i)
		case id.Issuer.Value != "" && id.IssuerRegexp.Value != "":
			return fmt.Errorf("line %d: trust.identities[%d]: give issuer or issuerRegexp, not both", line, i)
		case id.Subject.Value == "" && id.SubjectRegexp.Value == "":
			return fmt.Errorf("line %d: trust.identities[%d] has no subject; add subject: or subjectRegexp: (the workflow identity)", line, i)
		case id.Subject.Value != "" && id.SubjectRegexp.Value != "":
			return fmt.Errorf("line %d: trust.identities[%d]: give subject or subjectRegexp, not both", line, i)
		}
		for _, re := range []located{id.IssuerRegexp, id.SubjectRegexp} {
			if re.Value == "" {
				continue
			}
			if _, err := regexp.Compile(re.Value); err != nil {
				return fmt.Errorf("line %d: regexp %q does not compile: %v", re.Line, re.Value, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
			}
		}
	}
	if len(t.Identities) > 0 && !t.Require.Timestamp && !t.Require.Tlog {
		return fmt.Errorf("line %d: keyless identities need require: {timestamp: true} or {tlog: true}: their certificates last minutes, and only a signed time shows the signature was made in them", firstLine(t.Identities[0].Issuer, t.Identities[0].IssuerRegexp, t.Identities[0].Subject, t.Identities[0].SubjectRegexp))
	}
	return nil
}

// load reads the key files and the trusted root, relative to dir.
func (t *TrustConfig) load(dir string) error {
	for _, k := range t.Keys {
		data, err := os.ReadFile(resolve(dir, k.Value))
		if err != nil {
			return fmt.Errorf("line %d: reading trusted key %s: %v", k.Line, k.Value, unwrapPath(err))
		}
		pub, err := cryptoutils.UnmarshalPEMToPublicKey(data)
		if err != nil {
			return fmt.Errorf("line %d: trusted key %s is not a PEM public key (cosign.pub, or openssl pkey -pubout)", k.Line, k.Value)
		}
		if _, err := trust.KeyID(pub); err != nil {
			return fmt.Errorf("line %d: trusted key %s: %v", k.Line, k.Value, err)
		}
		t.keys = append(t.keys, pub)
	}
	if f := t.TrustedRoot; f.Value != "" {
		r, err := root.NewTrustedRootFromPath(resolve(dir, f.Value))
		if err != nil {
			return fmt.Errorf("line %d: reading trusted root %s: %v", f.Line, f.Value, unwrapPath(err))
		}
		t.root = r
	}
	// A policy that cannot be built is a configuration error too; with
	// the public-good root it is built when first needed, since fetching
	// it takes the network.
	if t.root != nil || !t.needsRoot() {
		if _, err := t.Verifier(); err != nil {
			return fmt.Errorf("line %d: %v", firstLine(append([]located{t.TrustedRoot}, t.Keys...)...), err)
		}
	}
	return nil
}

func (t *TrustConfig) needsRoot() bool {
	return len(t.Identities) > 0 || t.Require.Timestamp || t.Require.Tlog
}

func resolve(dir, p string) string {
	if filepath.IsAbs(p) || dir == "" {
		return p
	}
	return filepath.Join(dir, p)
}

// unwrapPath drops the path an *os.PathError repeats.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// fetchPublicGoodRoot is the public-good instance's trusted root, through
// TUF (cached under ~/.sigstore). A variable so that tests never reach it.
var fetchPublicGoodRoot = func() (root.TrustedMaterial, error) { return root.FetchTrustedRoot() }

// Verifier is the policy's verifier, built once.
func (t *TrustConfig) Verifier() (*trust.Verifier, error) {
	t.once.Do(func() {
		p := trust.Policy{Root: t.root, Keys: t.keys}
		if p.Root == nil && t.needsRoot() {
			r, err := fetchPublicGoodRoot()
			if err != nil {
				t.err = fmt.Errorf("fetching the public-good Sigstore trusted root through TUF (give trust.trustedRoot for an offline file): %w", err)
				return
			}
			p.Root = r
		}
		if t.Require.Timestamp {
			p.Timestamps = 1
		}
		if t.Require.Tlog {
			p.TlogEntries = 1
		}
		// A root with certificate transparency logs has its certificates
		// logged; a private instance without one (GitHub's) cannot.
		if p.Root != nil && len(p.Root.CTLogs()) > 0 {
			p.SCTs = 1
		}
		for _, id := range t.Identities {
			p.Identities = append(p.Identities, trust.Identity{
				Issuer: id.Issuer.Value, IssuerRegexp: id.IssuerRegexp.Value,
				Subject: id.Subject.Value, SubjectRegexp: id.SubjectRegexp.Value,
				Extensions: certificate.Extensions{
					SourceRepositoryURI: repositoryURI(id.Repository.Value),
					SourceRepositoryRef: id.Ref.Value,
					BuildConfigURI:      id.Workflow.Value,
				},
			})
		}
		t.verifier, t.err = trust.New(p)
	})
	return t.verifier, t.err
}

// repositoryURI takes owner/name as a github.com repository.
func repositoryURI(s string) string {
	if s == "" || strings.Contains(s, "://") {
		return s
	}
	return "https://github.com/" + s
}

// TrustFor is the trust: that applies to env: its own, or the top-level
// one; nil when there is none.
func (c *Config) TrustFor(env *Environment) *TrustConfig {
	if env.Trust != nil {
		return env.Trust
	}
	return c.Trust
}
