// Package templates holds the GitLab CI template; this test checks what the
// template promises against the code that reads it.
package templates

import (
	"os"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/slipwayci/slipway/internal/promote"
)

// TestJobsAskForTheTokensTheyUse fails when a job of the template does not
// declare, under id_tokens:, an OIDC token that its step reads on GitLab
// with the audience the step verifies: without the block GitLab gives the
// job no token, and push would not sign, promote would neither sign its
// record nor prove an approval, silently.
func TestJobsAskForTheTokensTheyUse(t *testing.T) {
	data, err := os.ReadFile("slipway.gitlab-ci.yml")
	if err != nil {
		t.Fatal(err)
	}
	var jobs map[string]struct {
		IDTokens map[string]struct {
			Aud any `yaml:"aud"`
		} `yaml:"id_tokens"`
	}
	if err := yaml.Unmarshal(data, &jobs); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ job, token, aud string }{
		{".slipway-push", "SIGSTORE_ID_TOKEN", "sigstore"},
		{".slipway-promote", "SIGSTORE_ID_TOKEN", "sigstore"},
		{".slipway-promote", "SLIPWAY_ID_TOKEN", promote.ApprovalAudience},
	} {
		job, ok := jobs[tc.job]
		if !ok {
			t.Errorf("the template has no job %s", tc.job)
			continue
		}
		tok, ok := job.IDTokens[tc.token]
		if !ok {
			t.Errorf("%s declares no id_tokens: %s", tc.job, tc.token)
			continue
		}
		if tok.Aud != tc.aud {
			t.Errorf("%s's %s has aud %v, want %q", tc.job, tc.token, tok.Aud, tc.aud)
		}
	}
}
