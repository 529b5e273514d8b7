package promote

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.yaml.in/yaml/v3"
)

// FuzzParseConfig feeds ParseConfig arbitrary files: an error is one line,
// and a config it accepts holds only values that can pass and says the
// same once written out again.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		goodConfig,
		"",
		"environments: {}\n",
		"environmets: {}\n",
		"environments:\n  staging:\n    repository: r.example.com/a\n    tags: [staging]\n    gates:\n      scan: {maxAge: 2d}\n",
		"environments:\n  a:\n    repository: r.example.com/a\n    tags: [a]\n    gates: {from: b}\n  b:\n    repository: r.example.com/b\n    tags: [b]\n    gates: {from: a}\n",
		"environments:\n  s:\n    repository: r.example.com/a\n    tags: ['{{.Version']\n",
		"environments:\n  s:\n    repository: r.example.com/a\n    tags: [s]\n    gates: {health: {url: 'http://x', successRate: 150, p95: 10s, timeout: 2s}}\n",
		"environments:\n  'prod env':\n    repository: 'Not/Valid Repo'\n",
		"environments:\n  s: ~\n",
		"environments:\n  s:\n    repository: r.example.com/a\n    tags: [s]\n    gates: {health: {url: 'https://x', successRate: .nan}}\n",
		"environments:\n  s:\n    repository: r.example.com/a\n    tags: [s]\n    gates: {from: t, soak: 1177000d}\n  t:\n    repository: r.example.com/a\n    tags: [t]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			if msg := err.Error(); strings.ContainsAny(msg, "\r\n") {
				t.Fatalf("error spans lines: %q", msg)
			}
			return
		}
		for _, n := range c.Names() {
			e := c.Environments[n]
			for _, d := range durations(e) {
				if d < 0 {
					t.Fatalf("environment %s: accepted a negative duration %v", n, d)
				}
			}
			if h := e.Gates.Health; h != nil && !(h.SuccessRate >= 0 && h.SuccessRate <= 100) {
				t.Fatalf("environment %s: accepted successRate %v", n, h.SuccessRate)
			}
		}
		again, err := ParseConfig(renderConfig(t, c))
		if err != nil {
			t.Fatalf("the accepted config, written out, does not parse: %v", err)
		}
		if diff := cmp.Diff(c, again, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("written out and parsed again (-first +again):\n%s", diff)
		}
	})
}

func durations(e *Environment) []time.Duration {
	g := e.Gates
	ds := []time.Duration{g.Soak.Duration}
	if g.Scan != nil {
		ds = append(ds, g.Scan.MaxAge.Duration)
	}
	if h := g.Health; h != nil {
		ds = append(ds, h.Interval.Duration, h.Timeout.Duration, h.P95.Duration)
	}
	return ds
}

// renderConfig writes c as a .slipway.yaml.
func renderConfig(t *testing.T, c *Config) []byte {
	t.Helper()
	// A zero duration is left out, as "" is not a duration.
	putDur := func(m map[string]any, key string, d Duration) {
		if d.Duration != 0 {
			m[key] = d.String()
		}
	}
	envs := map[string]any{}
	for n, e := range c.Environments {
		g := map[string]any{}
		if e.Gates.From != "" {
			g["from"] = e.Gates.From
		}
		if e.Gates.SBOM {
			g["sbom"] = true
		}
		putDur(g, "soak", e.Gates.Soak)
		if s := e.Gates.Scan; s != nil {
			scan := map[string]any{"maxSeverity": s.MaxSeverity}
			putDur(scan, "maxAge", s.MaxAge)
			g["scan"] = scan
		}
		if h := e.Gates.Health; h != nil {
			health := map[string]any{"url": h.URL, "probes": h.Probes, "successRate": h.SuccessRate}
			putDur(health, "interval", h.Interval)
			putDur(health, "timeout", h.Timeout)
			putDur(health, "p95", h.P95)
			g["health"] = health
		}
		if a := e.Gates.Approval; a != nil {
			g["approval"] = map[string]any{"approvers": a.Approvers, "githubEnvironment": a.GitHubEnvironment}
		}
		envs[n] = map[string]any{"repository": e.Repository, "tags": e.Tags, "gates": g}
	}
	data, err := yaml.Marshal(map[string]any{"environments": envs})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// FuzzParseDuration checks that a duration read is never negative and reads
// back from its own rendering.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"90s", "1h30m", "2d", "0", "0d", "-1h", "-2d", "2.5d", "1e3d", "an hour", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDuration(s)
		if err != nil {
			if msg := err.Error(); strings.ContainsAny(msg, "\r\n") {
				t.Fatalf("error spans lines: %q", msg)
			}
			return
		}
		if d < 0 {
			t.Fatalf("parseDuration(%q) = %v, negative", s, d)
		}
		if again, err := parseDuration(d.String()); err != nil || again != d {
			t.Fatalf("parseDuration(%q) = %v, which reads back as %v, %v", s, d, again, err)
		}
	})
}
