package promote

import (
	"context"
	"fmt"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
)

// GitHubIssuer is GitHub Actions' OIDC token issuer.
const GitHubIssuer = "https://token.actions.githubusercontent.com"

// ApprovalAudience is the audience of the token slipway asks for to read
// the job's environment: not Fulcio's, so that it cannot be replayed to
// get a signing certificate.
const ApprovalAudience = "slipway-approval"

// JobClaims are what a CI job's OIDC token says of the job, verified:
// which environment it ran in, for which repository and ref, and who
// started it.
type JobClaims struct {
	Issuer      string `json:"iss"`
	Repository  string `json:"repository"`
	Environment string `json:"environment"`
	Ref         string `json:"ref"`
	Actor       string `json:"actor"`
	RunID       string `json:"run_id"`
	// GitLab's: the project, whether the job's environment is protected,
	// the user who started the job, and the pipeline.
	ProjectPath          string `json:"project_path"`
	EnvironmentProtected string `json:"environment_protected"`
	UserLogin            string `json:"user_login"`
	PipelineID           string `json:"pipeline_id"`
}

// gitlab reports whether the claims are GitLab's.
func (c *JobClaims) gitlab() bool { return c.ProjectPath != "" }

// repository is the project the job ran for, as a URL.
func (c *JobClaims) repository() string {
	if c.gitlab() {
		return c.Issuer + "/" + c.ProjectPath
	}
	return repositoryURI(c.Repository)
}

// VerifyJobToken checks raw's signature against the keys issuer
// publishes (OpenID discovery), its audience and expiry, and returns its
// claims.
func VerifyJobToken(ctx context.Context, issuer, raw string) (*JobClaims, error) {
	p, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		return nil, fmt.Errorf("reading the OIDC issuer %s: %w", issuer, err)
	}
	tok, err := p.Verifier(&oidc.Config{ClientID: ApprovalAudience}).Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("verifying the job's OIDC token: %w", err)
	}
	var c JobClaims
	if err := tok.Claims(&c); err != nil {
		return nil, fmt.Errorf("reading the job's OIDC token: %w", err)
	}
	return &c, nil
}

// trustedApproval is the approval gate when the environment has trust:
// the job's environment comes only from its verified OIDC token, and
// --approved-by counts only where approval.allowApprovedBy says so.
func trustedApproval(env string, g *ApprovalGate, o EvalOptions) Verdict {
	v := Verdict{Gate: "approval"}
	want := g.GitHubEnvironment
	if want == "" {
		want = env
	}
	repo := repositoryURI(g.Repository)
	c := o.JobClaims
	if c != nil && c.gitlab() && repo != "" && !strings.Contains(g.Repository, "://") {
		// owner/name means the project on the token's own GitLab.
		repo = c.Issuer + "/" + g.Repository
	}
	switch {
	case c != nil && c.Environment == want && (repo == "" || sameRepository(c.repository(), repo)) && (!c.gitlab() || c.EnvironmentProtected == "true"):
		v.Pass = true
		if c.gitlab() {
			v.Detail = fmt.Sprintf("approved through GitLab's protected environment %s: %s started the job (verified OIDC token of %s, pipeline %s)", c.Environment, c.UserLogin, c.ProjectPath, c.PipelineID)
		} else {
			v.Detail = fmt.Sprintf("approved through the protection rules of GitHub environment %s (verified OIDC token of %s, run %s, started by %s)", c.Environment, c.Repository, c.RunID, c.Actor)
		}
		return v
	case c != nil && c.Environment != want:
		v.Detail = fmt.Sprintf("the job's verified OIDC token says environment %q, but approvals here come from %s", c.Environment, want)
	case c != nil && c.gitlab() && c.EnvironmentProtected != "true":
		v.Detail = fmt.Sprintf("GitLab environment %s is not protected, so running its job approves nothing; protect it (Settings > CI/CD > Protected environments)", c.Environment)
	case c != nil:
		v.Detail = fmt.Sprintf("the job's verified OIDC token is for %s, not %s", c.repository(), repo)
	case o.GitHubEnvironment != "":
		v.Detail = fmt.Sprintf("environment %s asserted without an OIDC token to prove it; give the job `permissions: id-token: write`", o.GitHubEnvironment)
	}
	if o.ApprovedBy == "" {
		if v.Detail == "" {
			v.Detail = "no approval: run the job in the protected GitHub environment " + want + " with `permissions: id-token: write`"
		}
		return v
	}
	if !g.AllowApprovedBy {
		v.Detail = "--approved-by is not accepted under trust:; set approval.allowApprovedBy to accept it, or approve through a protected GitHub environment"
		return v
	}
	if len(g.Approvers) > 0 && !contains(g.Approvers, o.ApprovedBy) {
		v.Detail = fmt.Sprintf("%s is not an approver (%s)", o.ApprovedBy, strings.Join(g.Approvers, ", "))
		return v
	}
	v.Pass = true
	v.Detail = "approved by " + o.ApprovedBy + " (asserted with --approved-by, as approval.allowApprovedBy allows)"
	return v
}
