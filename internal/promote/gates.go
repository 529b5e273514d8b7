package promote

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slipwayci/slipway/internal/clock"
)

// Evidence is what the gates read about one digest: what is attached to it,
// and what the history of an environment says of it.
type Evidence interface {
	// Promotions lists the promotions of the digest into env that env's
	// history holds.
	Promotions(ctx context.Context, env string) ([]Promotion, error)
	// Scans lists the scan results attached to the digest.
	Scans(ctx context.Context) ([]Scan, error)
	// SBOMs lists the digests of the SBOMs attached to it.
	SBOMs(ctx context.Context) ([]string, error)
	// Provenance lists the verified SLSA provenance about it.
	Provenance(ctx context.Context) ([]Provenance, error)
}

// Provenance is the part of a verified SLSA provenance statement the
// provenance gate reads.
type Provenance struct {
	Repository, Ref, Builder string
	// Uncovered are the promoted manifests its subjects do not name.
	Uncovered []string
	Signer    string
	Record    string
}

// Promotion is a record of one promotion (or rollback) of a digest.
type Promotion struct {
	Digest   string    `json:"digest"`
	From     string    `json:"from,omitempty"`
	To       string    `json:"to"`
	Time     time.Time `json:"time"`
	Rollback bool      `json:"rollback,omitempty"`
	// Undone is set when a later rollback undid this promotion: the digest
	// was found wanting there.
	Undone bool `json:"undone,omitempty"`
	// Record is the digest of the attestation that says so.
	Record string `json:"-"`
	// statement is the digest of the record's statement, which a signed
	// record's bundle signs.
	statement v1.Hash
}

// Scan is the part of a scan attestation the gates read.
type Scan struct {
	Time    time.Time
	Verdict string // pass or fail
	// MaxSeverity is the highest severity left after waivers ("none").
	MaxSeverity string
	// Record is the attestation's digest.
	Record string
	// Signer is who signed it, verified; empty for unsigned evidence.
	Signer string
	// Unscanned are the image's platform manifests that the statement does
	// not name ("sha256:… linux/arm64"): it is evidence about the image
	// only when there are none.
	Unscanned []string
}

// Verdict is one gate's answer.
type Verdict struct {
	Gate     string `json:"gate"`
	Pass     bool   `json:"pass"`
	Detail   string `json:"detail"`
	Evidence string `json:"evidence,omitempty"` // digest of what was read
}

// EvalOptions are the facts gates need from outside the registry.
type EvalOptions struct {
	Now func() time.Time
	// ApprovedBy is --approved-by.
	ApprovedBy string
	// GitHubEnvironment is set when the job runs in a GitHub environment,
	// whose protection rules approved it before it could start.
	GitHubEnvironment string
	Client            *http.Client
	// Sleep waits between health probes (time.Sleep honouring ctx).
	Sleep func(context.Context, time.Duration) error
	// Trusted is set when the environment has trust:: the approval gate
	// then believes only JobClaims, and --approved-by only where allowed.
	Trusted bool
	// JobClaims are the job's verified OIDC token claims, if it has one.
	JobClaims *JobClaims
}

// Evaluate runs every gate of env in a fixed order and returns all
// verdicts; it stops early only on an error reading the evidence.
func Evaluate(ctx context.Context, env *Environment, ev Evidence, o EvalOptions) ([]Verdict, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Client == nil {
		o.Client = http.DefaultClient
	}
	if o.Sleep == nil {
		o.Sleep = clock.Sleep
	}
	g := env.Gates
	var out []Verdict
	if g.From != "" {
		proms, err := ev.Promotions(ctx, g.From)
		if err != nil {
			return nil, fmt.Errorf("reading promotion records: %w", err)
		}
		out = append(out, withIgnored(fromGate(g.From, proms), ev))
		if g.Soak.Duration > 0 {
			out = append(out, soakGate(g.From, g.Soak.Duration, proms, o.Now()))
		}
	}
	if g.Scan != nil {
		scans, err := ev.Scans(ctx)
		if err != nil {
			return nil, fmt.Errorf("reading scan attestations: %w", err)
		}
		out = append(out, withIgnored(scanGate(g.Scan, scans, o.Now()), ev))
	}
	if g.SBOM {
		sboms, err := ev.SBOMs(ctx)
		if err != nil {
			return nil, fmt.Errorf("reading SBOMs: %w", err)
		}
		v := Verdict{Gate: "sbom", Pass: len(sboms) > 0, Detail: fmt.Sprintf("%d SBOM(s) attached", len(sboms))}
		if len(sboms) > 0 {
			v.Evidence = sboms[0]
		} else {
			v.Detail = "no SBOM attached to the digest; run slipway image and push it"
		}
		out = append(out, withIgnored(v, ev))
	}
	if g.Provenance != nil {
		provs, err := ev.Provenance(ctx)
		if err != nil {
			return nil, fmt.Errorf("reading provenance: %w", err)
		}
		out = append(out, withIgnored(provenanceGate(g.Provenance, provs), ev))
	}
	if g.Health != nil {
		out = append(out, healthGate(ctx, g.Health, o))
	}
	if g.Approval != nil {
		if o.Trusted {
			out = append(out, trustedApproval(env.Name, g.Approval, o))
		} else {
			out = append(out, approvalGate(env.Name, g.Approval, o))
		}
	}
	return out, nil
}

// withIgnored adds to v's detail the evidence its gate set aside and why,
// when ev keeps such a list.
func withIgnored(v Verdict, ev Evidence) Verdict {
	l, ok := ev.(interface{ Ignored(gate string) []Ignored })
	if !ok {
		return v
	}
	ig := l.Ignored(v.Gate)
	if len(ig) == 0 {
		return v
	}
	const most = 5
	parts := make([]string, 0, most+1)
	for i, x := range ig {
		if i == most {
			parts = append(parts, fmt.Sprintf("%d more", len(ig)-most))
			break
		}
		parts = append(parts, x.String())
	}
	v.Detail += "; ignored: " + strings.Join(parts, "; ")
	return v
}

// Passed reports whether every verdict passed.
func Passed(vs []Verdict) bool {
	for _, v := range vs {
		if !v.Pass {
			return false
		}
	}
	return true
}

// latestInto returns the newest promotion of the digest into env that has
// not been rolled back since. A rollback to the digest is not a promotion:
// the time in env counts from the promotion it returned to.
func latestInto(env string, proms []Promotion) (Promotion, bool) {
	var best Promotion
	found := false
	for _, p := range proms {
		if p.To == env && !p.Rollback && !p.Undone && (!found || p.Time.After(best.Time)) {
			best, found = p, true
		}
	}
	return best, found
}

func fromGate(from string, proms []Promotion) Verdict {
	p, ok := latestInto(from, proms)
	if !ok {
		for _, p := range proms {
			if p.Undone {
				return Verdict{Gate: "from", Detail: fmt.Sprintf("the digest's promotion to %s was rolled back", from), Evidence: p.Record}
			}
		}
		return Verdict{Gate: "from", Detail: fmt.Sprintf("the digest was never promoted to %s", from)}
	}
	return Verdict{Gate: "from", Pass: true, Detail: fmt.Sprintf("promoted to %s at %s", from, p.Time.UTC().Format(time.RFC3339)), Evidence: p.Record}
}

func soakGate(from string, soak time.Duration, proms []Promotion, now time.Time) Verdict {
	p, ok := latestInto(from, proms)
	if !ok {
		return Verdict{Gate: "soak", Detail: fmt.Sprintf("no promotion to %s to soak from", from)}
	}
	age := now.Sub(p.Time)
	v := Verdict{Gate: "soak", Evidence: p.Record, Pass: age >= soak}
	if v.Pass {
		v.Detail = fmt.Sprintf("in %s for %s (≥ %s)", from, roundDur(age), soak)
	} else {
		v.Detail = fmt.Sprintf("in %s for only %s; needs %s (another %s)", from, roundDur(age), soak, roundDur(soak-age))
	}
	return v
}

func scanGate(g *ScanGate, scans []Scan, now time.Time) Verdict {
	if len(scans) == 0 {
		return Verdict{Gate: "scan", Detail: "no scan attestation on the digest; run slipway scan and push it"}
	}
	// Newest first; of two at the same time (signed timestamps have
	// whole seconds), the worse, so that a tie never favours a pass.
	sort.SliceStable(scans, func(i, j int) bool {
		if !scans[i].Time.Equal(scans[j].Time) {
			return scans[i].Time.After(scans[j].Time)
		}
		return worse(scans[i], scans[j]) > 0
	})
	// A scan of some platforms of an index says nothing of the others.
	whole := slices.DeleteFunc(slices.Clone(scans), func(s Scan) bool { return len(s.Unscanned) > 0 })
	if len(whole) == 0 {
		return Verdict{Gate: "scan", Evidence: scans[0].Record, Detail: fmt.Sprintf(
			"no scan attestation covers every platform of the image; the newest leaves %s unscanned: run slipway scan on the whole index (no --platform)",
			strings.Join(scans[0].Unscanned, ", "))}
	}
	s := whole[0]
	if s.Time.IsZero() {
		// Signed without a timestamp (a key alone): nothing says which
		// is newest, so the worst one decides.
		s = slices.MaxFunc(whole, worse)
	}
	v := Verdict{Gate: "scan", Evidence: s.Record}
	age := now.Sub(s.Time)
	switch {
	case s.Time.IsZero() && g.MaxAge.Duration > 0:
		v.Detail = "the newest verified scan's signature has no signed time, so maxAge cannot be checked; sign with a timestamp authority (require: {timestamp: true})"
	case g.MaxAge.Duration > 0 && age > g.MaxAge.Duration:
		v.Detail = fmt.Sprintf("the newest scan is %s old; maxAge is %s: scan again", roundDur(age), g.MaxAge.Duration)
	case !strings.EqualFold(s.Verdict, "pass") && s.Time.IsZero():
		v.Detail = fmt.Sprintf("a scan's verdict is %q, and without signed timestamps no scan is known to be newer", s.Verdict)
	case !strings.EqualFold(s.Verdict, "pass"):
		v.Detail = fmt.Sprintf("the newest scan's verdict is %q", s.Verdict)
	case severityRank(orNone(s.MaxSeverity)) > severityRank(g.MaxSeverity):
		v.Detail = fmt.Sprintf("findings up to %s after waivers; allowed up to %s", s.MaxSeverity, g.MaxSeverity)
	default:
		v.Pass = true
		if s.Time.IsZero() {
			v.Detail = fmt.Sprintf("passed, worst %s (allowed %s)", orNone(s.MaxSeverity), g.MaxSeverity)
		} else {
			v.Detail = fmt.Sprintf("passed %s ago, worst %s (allowed %s)", roundDur(age), orNone(s.MaxSeverity), g.MaxSeverity)
		}
	}
	if s.Signer != "" {
		v.Detail += ", signed by " + s.Signer
	}
	return v
}

// provenanceGate passes on a provenance that names the expected source
// repository, a ref the pattern matches and the builder, and covers every
// manifest; otherwise it says what the closest one got wrong.
func provenanceGate(g *ProvenanceGate, provs []Provenance) Verdict {
	v := Verdict{Gate: "provenance"}
	if len(provs) == 0 {
		v.Detail = "no signed SLSA provenance on the digest that verifies; push with --sign"
		return v
	}
	wantRepo := repositoryURI(g.Repository.Value)
	var why string
	for _, p := range provs {
		switch {
		case !sameRepository(p.Repository, wantRepo):
			why = fmt.Sprintf("provenance %s is from %s, not %s", short(p.Record), orUnknown(p.Repository), wantRepo)
		case !g.ref.MatchString(p.Ref):
			why = fmt.Sprintf("provenance %s built ref %s, which does not match %s", short(p.Record), orUnknown(p.Ref), g.Ref.Value)
		case g.Builder.Value != "" && p.Builder != g.Builder.Value:
			why = fmt.Sprintf("provenance %s was built by %s, not %s", short(p.Record), orUnknown(p.Builder), g.Builder.Value)
		case len(p.Uncovered) > 0:
			why = fmt.Sprintf("provenance %s does not name %s", short(p.Record), strings.Join(p.Uncovered, ", "))
		default:
			v.Pass, v.Evidence = true, p.Record
			v.Detail = fmt.Sprintf("built from %s at %s by %s, signed by %s", p.Repository, p.Ref, p.Builder, p.Signer)
			return v
		}
		v.Evidence = p.Record
	}
	v.Detail = why
	return v
}

// sameRepository compares repository URLs without a trailing .git or
// slash, and case-insensitively (as GitHub names them).
func sameRepository(a, b string) bool {
	norm := func(s string) string {
		return strings.ToLower(strings.TrimSuffix(strings.TrimSuffix(s, "/"), ".git"))
	}
	return a != "" && norm(a) == norm(b)
}

func orUnknown(s string) string {
	if s == "" {
		return "(none named)"
	}
	return s
}

// worse compares scans by verdict (a fail is worse than a pass), then by
// their worst severity.
func worse(a, b Scan) int {
	if fa, fb := !strings.EqualFold(a.Verdict, "pass"), !strings.EqualFold(b.Verdict, "pass"); fa != fb {
		if fa {
			return 1
		}
		return -1
	}
	return severityRank(orNone(a.MaxSeverity)) - severityRank(orNone(b.MaxSeverity))
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func approvalGate(env string, g *ApprovalGate, o EvalOptions) Verdict {
	v := Verdict{Gate: "approval"}
	want := g.GitHubEnvironment
	if want == "" {
		want = env
	}
	switch {
	case o.GitHubEnvironment != "" && o.GitHubEnvironment == want:
		v.Pass = true
		v.Detail = fmt.Sprintf("approved through the protection rules of GitHub environment %s", o.GitHubEnvironment)
	case o.GitHubEnvironment != "" && o.ApprovedBy == "":
		v.Detail = fmt.Sprintf("the job runs in GitHub environment %s, but approvals here come from %s; set approval.githubEnvironment or --approved-by", o.GitHubEnvironment, want)
	case o.ApprovedBy == "":
		v.Detail = "no approver; pass --approved-by NAME or run the job in the protected GitHub environment " + want
	case len(g.Approvers) > 0 && !contains(g.Approvers, o.ApprovedBy):
		v.Detail = fmt.Sprintf("%s is not an approver (%s)", o.ApprovedBy, strings.Join(g.Approvers, ", "))
	default:
		v.Pass = true
		v.Detail = "approved by " + o.ApprovedBy
	}
	return v
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// healthGate probes the URL Probes times: a probe succeeds on a 2xx answer
// within Timeout. It passes when the success rate and the 95th percentile
// latency (failed probes count as Timeout) meet the thresholds.
func healthGate(ctx context.Context, h *HealthGate, o EvalOptions) Verdict {
	lat := make([]time.Duration, 0, h.Probes)
	ok := 0
	var lastErr string
	for i := 0; i < h.Probes; i++ {
		if i > 0 && h.Interval.Duration > 0 {
			if err := o.Sleep(ctx, h.Interval.Duration); err != nil {
				return Verdict{Gate: "health", Detail: "interrupted: " + err.Error()}
			}
		}
		d, err := probe(ctx, o.Client, h.URL, h.Timeout.Duration)
		if err != nil {
			lastErr = err.Error()
			d = h.Timeout.Duration
		} else {
			ok++
		}
		lat = append(lat, d)
	}
	rate := 100 * float64(ok) / float64(h.Probes)
	p95 := percentile(lat, 95)
	v := Verdict{Gate: "health"}
	detail := fmt.Sprintf("%d/%d probes ok (%.1f%%, need %.1f%%), p95 %s", ok, h.Probes, rate, h.SuccessRate, p95.Round(time.Millisecond))
	if h.P95.Duration > 0 {
		detail += fmt.Sprintf(" (max %s)", h.P95.Duration)
	}
	switch {
	case rate+1e-9 < h.SuccessRate:
		v.Detail = detail
		if lastErr != "" {
			v.Detail += "; last failure: " + lastErr
		}
	case h.P95.Duration > 0 && p95 > h.P95.Duration:
		v.Detail = detail
	default:
		v.Pass, v.Detail = true, detail
	}
	return v
}

func probe(ctx context.Context, c *http.Client, url string, timeout time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return 0, fmt.Errorf("probing %s: %w", url, err)
	}
	resp.Body.Close()
	d := time.Since(start)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return d, fmt.Errorf("probing %s: HTTP %d", url, resp.StatusCode)
	}
	return d, nil
}

// percentile uses the nearest-rank method.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	if rank < 1 {
		rank = 1
	}
	return s[rank-1]
}

func roundDur(d time.Duration) time.Duration {
	switch {
	case d > time.Hour:
		return d.Round(time.Minute)
	case d > time.Minute:
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}
