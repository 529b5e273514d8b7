package promote

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// attached is evidence as listed from a registry's referrers.
type attached struct {
	proms []Promotion
	scans []Scan
	sboms []string
}

func (a attached) Promotions(_ context.Context, env string) ([]Promotion, error) {
	var out []Promotion
	for _, p := range a.proms {
		if p.To == env {
			out = append(out, p)
		}
	}
	return out, nil
}
func (a attached) Scans(context.Context) ([]Scan, error)            { return a.scans, nil }
func (a attached) SBOMs(context.Context) ([]string, error)          { return a.sboms, nil }
func (a attached) Provenance(context.Context) ([]Provenance, error) { return nil, nil }

var now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func TestGates(t *testing.T) {
	staged := Promotion{To: "staging", Time: now.Add(-2 * time.Hour), Record: "sha256:rec1"}
	freshStaged := Promotion{To: "staging", Time: now.Add(-10 * time.Minute), Record: "sha256:rec2"}
	passing := Scan{Time: now.Add(-time.Hour), Verdict: "pass", MaxSeverity: "low", Record: "sha256:scan1"}
	tests := []struct {
		name  string
		gates Gates
		ev    attached
		opts  EvalOptions
		want  []Verdict
	}{
		{
			name:  "all pass",
			gates: Gates{From: "staging", Soak: Duration{time.Hour}, Scan: &ScanGate{MaxSeverity: "medium", MaxAge: Duration{24 * time.Hour}}, SBOM: true, Approval: &ApprovalGate{Approvers: []string{"alice"}}},
			ev:    attached{proms: []Promotion{staged}, scans: []Scan{passing}, sboms: []string{"sha256:sbom"}},
			opts:  EvalOptions{ApprovedBy: "alice"},
			want: []Verdict{
				{Gate: "from", Pass: true, Detail: "promoted to staging at 2026-11-22T10:00:00Z", Evidence: "sha256:rec1"},
				{Gate: "soak", Pass: true, Detail: "in staging for 2h0m0s (≥ 1h0m0s)", Evidence: "sha256:rec1"},
				{Gate: "scan", Pass: true, Detail: "passed 1h0m0s ago, worst low (allowed medium)", Evidence: "sha256:scan1"},
				{Gate: "sbom", Pass: true, Detail: "1 SBOM(s) attached", Evidence: "sha256:sbom"},
				{Gate: "approval", Pass: true, Detail: "approved by alice"},
			},
		},
		{
			name:  "missing evidence",
			gates: Gates{From: "staging", Soak: Duration{time.Hour}, Scan: &ScanGate{MaxSeverity: "high"}, SBOM: true, Approval: &ApprovalGate{}},
			want: []Verdict{
				{Gate: "from", Detail: "the digest was never promoted to staging"},
				{Gate: "soak", Detail: "no promotion to staging to soak from"},
				{Gate: "scan", Detail: "no scan attestation on the digest; run slipway scan and push it"},
				{Gate: "sbom", Detail: "no SBOM attached to the digest; run slipway image and push it"},
				{Gate: "approval", Detail: "no approver; pass --approved-by NAME or run the job in the protected GitHub environment production"},
			},
		},
		{
			name:  "short soak, rolled-back promotion ignored",
			gates: Gates{From: "staging", Soak: Duration{time.Hour}},
			ev:    attached{proms: []Promotion{freshStaged, {To: "staging", Time: now.Add(-5 * time.Hour), Rollback: true}}},
			want: []Verdict{
				{Gate: "from", Pass: true, Detail: "promoted to staging at 2026-11-22T11:50:00Z", Evidence: "sha256:rec2"},
				{Gate: "soak", Detail: "in staging for only 10m0s; needs 1h0m0s (another 50m0s)", Evidence: "sha256:rec2"},
			},
		},
		{
			name:  "rolled back from staging",
			gates: Gates{From: "staging", Soak: Duration{time.Hour}},
			ev:    attached{proms: []Promotion{{To: "staging", Time: now.Add(-3 * time.Hour), Undone: true, Record: "sha256:rec3"}}},
			want: []Verdict{
				{Gate: "from", Detail: "the digest's promotion to staging was rolled back", Evidence: "sha256:rec3"},
				{Gate: "soak", Detail: "no promotion to staging to soak from"},
			},
		},
		{
			name:  "failing scan",
			gates: Gates{Scan: &ScanGate{MaxSeverity: "high"}},
			ev:    attached{scans: []Scan{passing, {Time: now.Add(-time.Minute), Verdict: "fail", MaxSeverity: "critical", Record: "sha256:scan2"}}},
			want:  []Verdict{{Gate: "scan", Detail: `the newest scan's verdict is "fail"`, Evidence: "sha256:scan2"}},
		},
		{
			name:  "too severe after waivers",
			gates: Gates{Scan: &ScanGate{MaxSeverity: "medium"}},
			ev:    attached{scans: []Scan{{Time: now, Verdict: "pass", MaxSeverity: "high", Record: "sha256:s"}}},
			want:  []Verdict{{Gate: "scan", Detail: "findings up to high after waivers; allowed up to medium", Evidence: "sha256:s"}},
		},
		{
			name:  "stale scan",
			gates: Gates{Scan: &ScanGate{MaxSeverity: "critical", MaxAge: Duration{30 * time.Minute}}},
			ev:    attached{scans: []Scan{passing}},
			want:  []Verdict{{Gate: "scan", Detail: "the newest scan is 1h0m0s old; maxAge is 30m0s: scan again", Evidence: "sha256:scan1"}},
		},
		{
			name:  "another GitHub environment does not approve",
			gates: Gates{Approval: &ApprovalGate{}},
			opts:  EvalOptions{GitHubEnvironment: "staging"},
			want:  []Verdict{{Gate: "approval", Detail: "the job runs in GitHub environment staging, but approvals here come from production; set approval.githubEnvironment or --approved-by"}},
		},
		{
			name:  "approver not listed",
			gates: Gates{Approval: &ApprovalGate{Approvers: []string{"alice", "bob"}}},
			opts:  EvalOptions{ApprovedBy: "mallory"},
			want:  []Verdict{{Gate: "approval", Detail: "mallory is not an approver (alice, bob)"}},
		},
		{
			name:  "GitHub environment approves",
			gates: Gates{Approval: &ApprovalGate{Approvers: []string{"alice"}}},
			opts:  EvalOptions{GitHubEnvironment: "production"},
			want:  []Verdict{{Gate: "approval", Pass: true, Detail: "approved through the protection rules of GitHub environment production"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Now = func() time.Time { return now }
			got, err := Evaluate(context.Background(), &Environment{Name: "production", Gates: tt.gates}, tt.ev, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("verdicts (-want +got):\n%s", diff)
			}
			allPass := true
			for _, v := range tt.want {
				allPass = allPass && v.Pass
			}
			if Passed(got) != allPass {
				t.Errorf("Passed = %v, want %v", Passed(got), allPass)
			}
		})
	}
}

func TestHealthGate(t *testing.T) {
	var n atomic.Int32
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer healthy.Close()
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%4 == 0 {
			http.Error(w, "boom", http.StatusInternalServerError)
		}
	}))
	defer flaky.Close()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(60 * time.Millisecond)
	}))
	defer slow.Close()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	down.Close()

	tests := []struct {
		name   string
		gate   HealthGate
		pass   bool
		detail string
	}{
		{"healthy", HealthGate{URL: healthy.URL, Probes: 20, SuccessRate: 99, P95: Duration{500 * time.Millisecond}}, true, "20/20 probes ok (100.0%, need 99.0%)"},
		{"flaky under 99%", HealthGate{URL: flaky.URL, Probes: 20, SuccessRate: 99}, false, "15/20 probes ok (75.0%, need 99.0%)"},
		{"flaky within 75%", HealthGate{URL: flaky.URL, Probes: 20, SuccessRate: 75}, true, "15/20 probes ok (75.0%, need 75.0%)"},
		{"slow p95", HealthGate{URL: slow.URL, Probes: 5, SuccessRate: 100, P95: Duration{20 * time.Millisecond}}, false, "5/5 probes ok (100.0%, need 100.0%), p95 6"},
		{"down", HealthGate{URL: down.URL, Probes: 3, SuccessRate: 50}, false, "0/3 probes ok (0.0%, need 50.0%)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n.Store(0)
			if tt.gate.Timeout.Duration == 0 {
				tt.gate.Timeout.Duration = 2 * time.Second
			}
			got, err := Evaluate(context.Background(), &Environment{Gates: Gates{Health: &tt.gate}}, attached{}, EvalOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got[0].Pass != tt.pass || !strings.HasPrefix(got[0].Detail, tt.detail) {
				t.Errorf("verdict = %+v, want pass=%v detail starting %q", got[0], tt.pass, tt.detail)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	if got := percentile(ds, 95); got != 95*time.Millisecond {
		t.Errorf("p95 of 1..100ms = %v", got)
	}
	if got := percentile(ds[:1], 95); got != time.Millisecond {
		t.Errorf("p95 of one = %v", got)
	}
}
