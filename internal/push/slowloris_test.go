package push

import (
	"strings"
	"testing"
	"time"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/registrytest"
)

// TestMainGivesUpOnASlowLoris: a registry that accepts the connection and
// then says nothing (or answers the login and stalls the rest, or sends
// half an answer) must fail the push with one line in bounded time, not
// hang it until the job dies.
func TestMainGivesUpOnASlowLoris(t *testing.T) {
	dir, _ := testDist(t)
	registrytest.EachSlowLoris(t, func(t *testing.T, s *registrytest.SlowLoris) {
		start := time.Now()
		_, stderr, code := runMain(t, dir, nil, "", "--to", s.Host+"/app", "--registry-timeout", "300ms", "--retries", "1")
		took := time.Since(start)
		if code != cli.ExitFailure || strings.Count(stderr, "slipway push:") != 1 || !strings.Contains(stderr, "made no progress for 300ms") {
			t.Errorf("exit %d, stderr:\n%s\nwant 1 and one line saying the registry stalled", code, stderr)
		}
		if s.Stalled() == 0 {
			t.Error("the slow loris saw no request")
		}
		// Two tries of 300ms and a wait, within the operation's 1.5s.
		if took > 10*time.Second {
			t.Errorf("the push took %s to give up", took)
		}
	})
}
