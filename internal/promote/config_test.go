package promote

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipwayci/slipway/internal/testkit"
)

const goodConfig = `
environments:
  staging:
    repository: 127.0.0.1:5000/hello-staging
    tags: [staging, "{{.Version}}"]
    gates:
      scan: {maxSeverity: medium, maxAge: 2d}
      sbom: true
  production:
    repository: registry.example.com/team/hello
    tags: [production]
    gates:
      from: staging
      soak: 1h
      health: {url: "https://staging.example.com/healthz", probes: 20, successRate: 99, p95: 500ms}
      approval: {approvers: [alice, bob]}
`

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte(goodConfig))
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Environment("production")
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "production" || p.Gates.From != "staging" || p.Gates.Soak.Duration != time.Hour {
		t.Errorf("production = %+v", p)
	}
	h := p.Gates.Health
	if h.Probes != 20 || h.SuccessRate != 99 || h.P95.Duration != 500*time.Millisecond || h.Timeout.Duration != 5*time.Second {
		t.Errorf("health = %+v (timeout defaults to 5s)", h)
	}
	s, _ := c.Environment("staging")
	if s.Gates.Scan.MaxAge.Duration != 48*time.Hour || s.Gates.Scan.MaxSeverity != "medium" || !s.Gates.SBOM {
		t.Errorf("staging gates = %+v", s.Gates)
	}
	if p.Gates.Approval.GitHubEnvironment != "production" {
		t.Errorf("approval.githubEnvironment = %q, want the environment's name by default", p.Gates.Approval.GitHubEnvironment)
	}
	if _, err := c.Environment("prod"); err == nil || !strings.Contains(err.Error(), `no environment "prod" in .slipway.yaml; have: production, staging`) {
		t.Errorf("unknown environment: %v", err)
	}
}

func TestParseConfigErrors(t *testing.T) {
	env := func(gates string) string {
		return "environments:\n  staging:\n    repository: r.example.com/a\n    tags: [staging]\n  production:\n    repository: r.example.com/b\n    tags: [production]\n    gates:\n" + gates
	}
	tests := []struct {
		name, yaml, wantErr string
	}{
		{"unknown top-level key", "environmets: {}\n", "field environmets not found"},
		{"unknown gate", env("      form: staging\n"), "field form not found"},
		{"unknown scan key", env("      scan: {maxSeverty: high}\n"), "field maxSeverty not found"},
		{"no environments", "environments: {}\n", "no environments"},
		{"no repository", "environments:\n  staging:\n    tags: [x]\n", "environment staging: repository is required"},
		{"no tags", "environments:\n  staging:\n    repository: r.example.com/a\n", "environment staging: tags: give at least one"},
		{"bad tag", "environments:\n  staging:\n    repository: r.example.com/a\n    tags: ['a b']\n", `tag "a b" is not a valid tag`},
		{"slipway's own tag", "environments:\n  staging:\n    repository: r.example.com/a\n    tags: [slipway-history-x]\n", "slipway's own tags"},
		{"bad environment name", "environments:\n  'prod env':\n    repository: r.example.com/a\n    tags: [x]\n", `environment name "prod env"`},
		{"bad repository", "environments:\n  staging:\n    repository: 'Not/Valid Repo'\n", `repository "Not/Valid Repo"`},
		{"from unknown", env("      from: qa\n"), `gates.from: no environment "qa"; have: production, staging`},
		{"from itself", env("      from: production\n"), "gates.from names the environment itself"},
		{"from cycle", "environments:\n  a:\n    repository: r.example.com/a\n    tags: [a]\n    gates: {from: b}\n  b:\n    repository: r.example.com/b\n    tags: [b]\n    gates: {from: a}\n", "cycle"},
		{"from a chain with a missing link", "environments:\n  a:\n    repository: r.example.com/a\n    tags: [a]\n    gates: {from: b}\n  b:\n    repository: r.example.com/b\n    tags: [b]\n    gates: {from: qa}\n", `environment b: gates.from: no environment "qa"`},
		{"soak without from", env("      soak: 1h\n"), "gates.soak needs gates.from"},
		{"bad duration", env("      from: staging\n      soak: an hour\n"), `"an hour" is not a duration`},
		{"negative duration", env("      from: staging\n      soak: -1h\n"), "negative"},
		{"bad severity", env("      scan: {maxSeverity: severe}\n"), `maxSeverity "severe": use one of none, unknown, low, medium, high, critical`},
		{"bad url", env("      health: {url: 'ftp://x'}\n"), "is not an http(s) URL"},
		{"success rate over 100", env("      health: {url: 'http://x', successRate: 150}\n"), "successRate 150: a percentage"},
		{"success rate not a number", env("      health: {url: 'http://x', successRate: .nan}\n"), "successRate NaN: a percentage"},
		{"days past what a duration holds", env("      from: staging\n      soak: 1177000d\n"), `line 10: duration "1177000d" is too long`},
		{"value with a line break", "environments: \"a\\nb\"\n", "cannot unmarshal !!str `a\\nb`"},
		{"negative probes", env("      health: {url: 'http://x', probes: -1}\n"), "probes -1"},
		{"p95 that cannot fail", env("      health: {url: 'http://x', p95: 10s, timeout: 2s}\n"), "exceeds the probe timeout"},
		{"tag template typo", "environments:\n  s:\n    repository: r.example.com/a\n    tags: ['{{.Versoin}}']\n", `tag template "{{.Versoin}}": no field .Versoin; valid: .Environment, .Digest, .ShortDigest, .Version, .Revision, .Created, .Source`},
		{"bad tag template", "environments:\n  s:\n    repository: r.example.com/a\n    tags: ['{{.Version']\n", "tag template"},
		{"wrong type", env("      sbom: maybe\n"), "cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
			if strings.Contains(err.Error(), "promote.") {
				t.Errorf("error names a Go type: %q", err)
			}
		})
	}
}

// TestRepositoryConfig keeps slipway's own .slipway.yaml, which its release
// workflow promotes with, valid.
func TestRepositoryConfig(t *testing.T) {
	c, err := LoadConfig(filepath.Join(testkit.RepoRoot(t), ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Environment("production")
	if err != nil {
		t.Fatal(err)
	}
	if p.Gates.From != "staging" || p.Gates.Approval == nil {
		t.Errorf("production gates = %+v, want from staging with approval", p.Gates)
	}
}
