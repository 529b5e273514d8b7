// Package promote moves an image that already exists from one environment
// to the next, by digest, when the evidence attached to it passes the
// environment's gates.
package promote

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"go.yaml.in/yaml/v3"

	"github.com/slipwayci/slipway/internal/yamlstrict"
)

// ConfigFile is where environments are described, at the repository root.
const ConfigFile = ".slipway.yaml"

// Config is .slipway.yaml.
type Config struct {
	Environments map[string]*Environment `yaml:"environments"`
	// Trust is whose signatures the gates believe, unless an environment
	// has its own; without it, evidence counts unverified.
	Trust *TrustConfig `yaml:"trust"`
}

// Environment is one place an image can be promoted to.
type Environment struct {
	Name string `yaml:"-"`
	// Repository receives the image (any registry).
	Repository string `yaml:"repository"`
	// Tags are templates moved to the digest on promotion, e.g.
	// "production" or "{{.Version}}".
	Tags  []string `yaml:"tags"`
	Gates Gates    `yaml:"gates"`
	// Trust replaces the top-level trust: for this environment.
	Trust *TrustConfig `yaml:"trust"`
}

// Gates an image must pass to enter an environment.
type Gates struct {
	// From names the environment the digest must have been promoted to.
	From string `yaml:"from"`
	// Scan requires a passing scan attestation on the digest.
	Scan *ScanGate `yaml:"scan"`
	// SBOM requires an SBOM attached to the digest.
	SBOM bool `yaml:"sbom"`
	// Soak is the minimum time since the promotion into From.
	Soak Duration `yaml:"soak"`
	// Health probes a URL before promotion.
	Health *HealthGate `yaml:"health"`
	// Approval requires a named approver.
	Approval *ApprovalGate `yaml:"approval"`
	// Provenance requires signed SLSA provenance from the expected
	// source and builder.
	Provenance *ProvenanceGate `yaml:"provenance"`
}

// ProvenanceGate says where the image must have been built: a signed SLSA
// provenance v1 statement that verifies under trust:, whose subjects
// cover every manifest promoted, must name them.
type ProvenanceGate struct {
	// Repository is the source repository, owner/name on github.com or a
	// URL (externalParameters.repository).
	Repository located `yaml:"repository"`
	// Ref is a regular expression the whole ref built must match
	// (externalParameters.ref), e.g. refs/(heads/main|tags/v.*).
	Ref located `yaml:"ref"`
	// Builder is the builder's id exactly (runDetails.builder.id): the
	// workflow identity, .../.github/workflows/release.yml@refs/heads/main.
	Builder located `yaml:"builder"`

	ref *regexp.Regexp
}

// ScanGate bounds what a scan may have found.
type ScanGate struct {
	// MaxSeverity is the highest severity allowed after waivers: none,
	// low, medium, high or critical.
	MaxSeverity string `yaml:"maxSeverity"`
	// MaxAge is how old the scan may be.
	MaxAge Duration `yaml:"maxAge"`
}

// HealthGate is canary analysis in its simplest form: probe a URL and
// require a success rate and a latency percentile.
type HealthGate struct {
	URL         string   `yaml:"url"`
	Probes      int      `yaml:"probes"`
	Interval    Duration `yaml:"interval"`
	Timeout     Duration `yaml:"timeout"`
	SuccessRate float64  `yaml:"successRate"` // percent, e.g. 99
	P95         Duration `yaml:"p95"`         // e.g. 500ms
}

// ApprovalGate requires an approver. On GitHub the protection rules of the
// job's environment are the approver (the job runs only once approved),
// when the workflow names that environment and it is GitHubEnvironment;
// elsewhere --approved-by names one, who must be listed if Approvers is.
type ApprovalGate struct {
	Approvers []string `yaml:"approvers"`
	// GitHubEnvironment is the GitHub environment whose protection rules
	// approve promotions here (default: the environment's own name).
	GitHubEnvironment string `yaml:"githubEnvironment"`
	// Under trust:, the job's environment is read from its OIDC token,
	// issued by Issuer (default GitHub's) for Repository (if set).
	Issuer     string `yaml:"issuer"`
	Repository string `yaml:"repository"`
	// AllowApprovedBy accepts --approved-by under trust:, where it is
	// otherwise refused: anyone who runs the job can write any name.
	AllowApprovedBy bool `yaml:"allowApprovedBy"`
}

// Severities are the scan gate's severities in increasing order, as
// slipway scan ranks them.
func Severities() []string {
	return []string{"none", "unknown", "low", "medium", "high", "critical"}
}

// envName is what an environment may be called: its name is part of the
// tag that holds its history.
var envName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// tagName is a tag as the distribution spec allows it.
var tagName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// Duration reads "90s", "1h30m" or "2d" from YAML.
type Duration struct{ time.Duration }

// UnmarshalYAML accepts Go durations and whole days ("2d").
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := parseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	d.Duration = v
	return nil
}

func parseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		if _, err := fmt.Sscanf(days, "%d", &n); err == nil && fmt.Sprint(n) == days && n >= 0 {
			// Past about 292 years the product wraps round to a negative.
			if int64(n) > math.MaxInt64/int64(24*time.Hour) {
				return 0, fmt.Errorf("duration %q is too long", s)
			}
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration like 30s, 1h or 2d", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	return v, nil
}

// LoadConfig reads and checks the config file.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s not found; describe your environments there (see docs/promote.md)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := c.loadTrust(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseConfig decodes strictly: an unknown key is an error, not a typo
// silently ignored, and so is any value that could never pass.
func ParseConfig(data []byte) (*Config, error) {
	var c Config
	if err := yamlstrict.Decode(data, &c); err != nil {
		return nil, err
	}
	if len(c.Environments) == 0 {
		return nil, errors.New("no environments; add environments: {staging: {repository: …}}")
	}
	for n, e := range c.Environments {
		if !envName.MatchString(n) {
			return nil, fmt.Errorf("environment name %q: use letters, digits, '.', '_' and '-' (it becomes part of a tag)", n)
		}
		if e == nil {
			return nil, fmt.Errorf("environment %s is empty; give it a repository", n)
		}
		e.Name = n
	}
	if c.Trust != nil {
		if err := c.Trust.check(); err != nil {
			return nil, err
		}
	}
	for _, n := range c.Names() {
		if t := c.Environments[n].Trust; t != nil {
			if err := t.check(); err != nil {
				return nil, fmt.Errorf("environment %s: %w", n, err)
			}
		}
		if err := c.check(c.Environments[n]); err != nil {
			return nil, fmt.Errorf("environment %s: %w", n, err)
		}
	}
	return &c, nil
}

// loadTrust reads the files the trust: blocks name, relative to dir.
func (c *Config) loadTrust(dir string) error {
	if c.Trust != nil {
		if err := c.Trust.load(dir); err != nil {
			return err
		}
	}
	for _, n := range c.Names() {
		if t := c.Environments[n].Trust; t != nil {
			if err := t.load(dir); err != nil {
				return fmt.Errorf("environment %s: %w", n, err)
			}
		}
	}
	return nil
}

// Names lists the environments in a stable order.
func (c *Config) Names() []string {
	names := make([]string, 0, len(c.Environments))
	for n := range c.Environments {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Environment returns the named environment or an error listing them.
func (c *Config) Environment(n string) (*Environment, error) {
	if e, ok := c.Environments[n]; ok {
		return e, nil
	}
	return nil, fmt.Errorf("no environment %q in %s; have: %s", n, ConfigFile, strings.Join(c.Names(), ", "))
}

func (c *Config) check(e *Environment) error {
	if e.Repository == "" {
		return errors.New("repository is required")
	}
	if _, err := name.NewRepository(e.Repository); err != nil {
		return fmt.Errorf("repository %q: %w", e.Repository, err)
	}
	if len(e.Tags) == 0 {
		return errors.New("tags: give at least one, e.g. [" + e.Name + "]: the tags are what the environment deploys")
	}
	for _, t := range e.Tags {
		if err := checkTagTemplate(t); err != nil {
			return err
		}
		if !strings.Contains(t, "{{") && !tagName.MatchString(t) {
			return fmt.Errorf("tag %q is not a valid tag", t)
		}
		if strings.HasPrefix(t, "slipway-history-") || strings.HasPrefix(t, "sha256-") {
			return fmt.Errorf("tag %q: slipway-history-* and sha256-* are slipway's own tags", t)
		}
	}
	g := e.Gates
	if g.From != "" {
		if g.From == e.Name {
			return errors.New("gates.from names the environment itself")
		}
		if _, ok := c.Environments[g.From]; !ok {
			return fmt.Errorf("gates.from: no environment %q; have: %s", g.From, strings.Join(c.Names(), ", "))
		}
		// Follow the chain: a cycle means no image could ever enter. A
		// missing link ends it; its own check reports it.
		seen := map[string]bool{e.Name: true}
		for f := g.From; f != "" && c.Environments[f] != nil; f = c.Environments[f].Gates.From {
			if seen[f] {
				return fmt.Errorf("gates.from makes a cycle through %s", f)
			}
			seen[f] = true
		}
	}
	if g.Soak.Duration > 0 && g.From == "" {
		return errors.New("gates.soak needs gates.from: the soak is time since promotion into that environment")
	}
	if s := g.Scan; s != nil {
		if s.MaxSeverity == "" {
			s.MaxSeverity = "none"
		}
		if severityRank(s.MaxSeverity) < 0 {
			return fmt.Errorf("gates.scan.maxSeverity %q: use one of %s", s.MaxSeverity, strings.Join(Severities(), ", "))
		}
	}
	if p := g.Provenance; p != nil {
		if c.TrustFor(e) == nil {
			return errors.New("gates.provenance needs trust: to say whose signature on the provenance counts")
		}
		if p.Repository.Value == "" {
			return errors.New("gates.provenance.repository is required: the source repository the image must be built from")
		}
		re := p.Ref.Value
		if re == "" {
			re = ".*"
		}
		var err error
		if p.ref, err = regexp.Compile("^(?:" + re + ")$"); err != nil {
			return fmt.Errorf("line %d: gates.provenance.ref %q does not compile: %v", p.Ref.Line, p.Ref.Value, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
	}
	if a := g.Approval; a != nil {
		if a.GitHubEnvironment == "" {
			a.GitHubEnvironment = e.Name
		}
		if a.Issuer == "" {
			a.Issuer = GitHubIssuer
		}
	}
	if h := g.Health; h != nil {
		u, err := url.Parse(h.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("gates.health.url %q is not an http(s) URL", h.URL)
		}
		if h.Probes == 0 {
			h.Probes = 10
		}
		if h.Probes < 1 || h.Probes > 10000 {
			return fmt.Errorf("gates.health.probes %d: use 1 to 10000", h.Probes)
		}
		if h.SuccessRate == 0 {
			h.SuccessRate = 100
		}
		if !(h.SuccessRate >= 0 && h.SuccessRate <= 100) { // NaN too: no rate is below it
			return fmt.Errorf("gates.health.successRate %v: a percentage, 0 to 100", h.SuccessRate)
		}
		if h.Timeout.Duration == 0 {
			h.Timeout.Duration = 5 * time.Second
		}
		if h.P95.Duration > 0 && h.P95.Duration > h.Timeout.Duration {
			return fmt.Errorf("gates.health.p95 %v exceeds the probe timeout %v, so it can never fail; lower it or raise timeout", h.P95.Duration, h.Timeout.Duration)
		}
	}
	return nil
}

func severityRank(s string) int {
	for i, v := range Severities() {
		if strings.EqualFold(v, s) {
			return i
		}
	}
	return -1
}
