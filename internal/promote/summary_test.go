package promote

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slipwayci/slipway/internal/push"
)

func TestSummary(t *testing.T) {
	repo, _ := name.NewRepository("r.example/prod/app")
	d, _ := v1.NewHash("sha256:" + strings.Repeat("a", 64))
	ref, _ := v1.NewHash("sha256:" + strings.Repeat("b", 64))
	base := func() *Result {
		return &Result{
			Environment: "production", Repository: repo, Digest: d, Source: "r.example/stg/app@" + d.String(), Tags: []string{"production"},
			Verdicts: []Verdict{{Gate: "from", Pass: true, Detail: "promoted to staging at …", Evidence: ref.String()}},
		}
	}
	refused := base()
	refused.Verdicts = append(refused.Verdicts, Verdict{Gate: "soak", Detail: "in staging for only 10m0s; needs 1h0m0s"})
	promoted := base()
	promoted.Entry = &Entry{Ref: ref, Sequence: 7}
	promoted.Copy = &push.Result{Stats: push.Stats{Mounted: 5, MountedBytes: 5 << 20, Artifacts: 3}}
	failed := base()
	failed.Copy = &push.Result{}
	for _, tc := range []struct {
		name   string
		res    *Result
		err    error
		want   []string
		absent []string
	}{
		{"refused", refused, &Refused{}, []string{"| soak | ❌ refuse | in staging for only 10m0s", "> Refused: nothing was copied, recorded or tagged."}, []string{"Recorded"}},
		{"promoted", promoted, nil, []string{"| from | ✅ pass |", "> Recorded as #7 (`" + ref.String() + "`); tags `production` now name `" + d.String() + "`.", "0 blobs uploaded (0 B), 5 mounted (5.0 MiB), 0 existing; 3 referrers added"}, nil},
		{"failed after the copy", failed, errors.New("recording the promotion to production: 503"), []string{"> Failed: recording the promotion to production: 503", "running the promotion again records it"}, []string{"Already in"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			md := Summary(tc.res, nil, tc.err).Markdown()
			for _, w := range tc.want {
				if !strings.Contains(md, w) {
					t.Errorf("summary lacks %q:\n%s", w, md)
				}
			}
			for _, w := range tc.absent {
				if strings.Contains(md, w) {
					t.Errorf("summary has %q:\n%s", w, md)
				}
			}
		})
	}
}
