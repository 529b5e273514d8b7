package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/slipwayci/slipway/internal/promote"
	"github.com/slipwayci/slipway/internal/registry"
	"github.com/slipwayci/slipway/internal/registrytest"
)

// TestPromoteConcurrently runs two promotions (or a promotion and a
// rollback) of one environment at once, round after round, against the
// real registry with random latency on every request for the
// environment's manifests, and checks after each round what
// docs/promote.md guarantees:
//
//   - the environment's tag names the digest of the head of its history;
//   - the history is one unbroken chain, each record one after the last;
//   - every promotion that reported a record has it in the history, and
//     the history holds exactly the records reported, no more;
//   - a digest promoted by both at once is recorded once.
func TestPromoteConcurrently(t *testing.T) {
	requireE2E(t, "docker-registry")
	r := registrytest.New(t, registrytest.Options{})
	var imgs []name.Digest
	label := map[string]string{}
	src, err := name.NewRepository(r.Host + "/ci/app")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		d := promoteRandom(t, r, "ci/app", fmt.Sprintf("%d.0.0", i+1))
		imgs = append(imgs, src.Digest(d))
		label[d] = string(rune('A' + i))
	}
	cfg, err := promote.ParseConfig([]byte("environments:\n  live:\n    repository: " + r.Host + "/live/app\n    tags: [live]\n"))
	if err != nil {
		t.Fatal(err)
	}
	live := cfg.Environments["live"]
	// The registry answers for the environment's manifests (its tag, its
	// head, its records) after up to 40ms: rivals' requests interleave.
	r.Proxy.Delay(func(q *http.Request) time.Duration {
		if strings.HasPrefix(q.URL.Path, "/v2/live/app/manifests/") {
			return rand.N(40 * time.Millisecond)
		}
		return 0
	})
	opts := func(src name.Digest) promote.Options {
		return promote.Options{Config: cfg, To: live, Source: src, Registry: defaultRegistry(t), Settle: 300 * time.Millisecond}
	}
	ctx := testContext(t)
	liveRepo, err := defaultRegistry(t).Dial(ctx, mustRepo(t, r.Host+"/live/app"), registry.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}

	rounds := 24
	if testing.Short() {
		rounds = 6
	}
	recorded, races := 0, 0
	var lost int
	for round := range rounds {
		a, b := imgs[round%3], imgs[(round+1)%3]
		kind := "two promotions"
		switch round % 4 {
		case 2:
			kind = "a promotion and a rollback"
		case 3:
			kind, b = "one digest twice", a
		}
		var wg sync.WaitGroup
		results := make([]*promote.Result, 2)
		errs := make([]error, 2)
		wg.Go(func() { results[0], errs[0] = promote.Promote(ctx, opts(a)) })
		wg.Go(func() {
			if round%4 == 2 {
				results[1], errs[1] = promote.Rollback(ctx, opts(name.Digest{}))
			} else {
				results[1], errs[1] = promote.Promote(ctx, opts(b))
			}
		})
		wg.Wait()
		var mine []*promote.Entry
		for i, err := range errs {
			switch {
			case err != nil && i == 1 && round%4 == 2 && strings.Contains(err.Error(), "nothing to roll back"):
			case err != nil:
				t.Fatalf("round %d (%s): %v", round, kind, err)
			case results[i].Entry != nil:
				mine = append(mine, results[i].Entry)
			}
			if results[i] != nil {
				races += results[i].Races
			}
		}
		if round%4 == 3 && (len(mine) > 1 || len(mine) == 0 && recordedHead(t, ctx, liveRepo, live) != a.DigestStr()) {
			t.Errorf("round %d: %s recorded %d times", round, kind, len(mine))
		}
		recorded += len(mine)

		h := promote.NewHistory(liveRepo, "live")
		entries, err := h.Entries(ctx)
		if err != nil {
			t.Fatalf("round %d: the history is broken: %v", round, err)
		}
		head := entries[len(entries)-1]
		tag, _, err := liveRepo.Resolve(ctx, "live")
		if err != nil {
			t.Fatal(err)
		}
		if tag != head.Digest {
			t.Fatalf("round %d (%s): live names %s, the head of the history %s", round, kind, label[tag.String()], label[head.Digest.String()])
		}
		in := map[string]bool{}
		for _, e := range entries {
			in[e.Ref.String()] = true
		}
		for _, e := range mine {
			if !in[e.Ref.String()] {
				lost++
				t.Errorf("round %d (%s): record #%d of %s was reported but is not in the history", round, kind, e.Sequence, label[e.Digest.String()])
			}
		}
		if len(entries) != recorded {
			t.Fatalf("round %d (%s): the history holds %d records, the promotions reported %d", round, kind, len(entries), recorded)
		}
	}
	t.Logf("%d rounds, %d records, %d races for the head lost and appended again, %d records lost", rounds, recorded, races, lost)
	if races == 0 {
		t.Error("no promotion ever lost a race for the head: the test did not test the protocol")
	}
}

func mustRepo(t *testing.T, s string) name.Repository {
	t.Helper()
	r, err := name.NewRepository(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// recordedHead is the digest the head of env's history names.
func recordedHead(t *testing.T, ctx context.Context, repo *registry.Repository, env *promote.Environment) string {
	t.Helper()
	head, err := promote.NewHistory(repo, env.Name).Head(ctx)
	if err != nil || head == nil {
		t.Fatalf("no head: %v", err)
	}
	return head.Digest.String()
}

// defaultRegistry is a client with slipway's default retries, anonymous.
func defaultRegistry(t *testing.T) *registry.Client {
	t.Helper()
	c, err := registry.New(registry.Options{Backoff: registry.DefaultBackoff()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
