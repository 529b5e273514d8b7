package registry_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slipwayci/slipway/internal/registry"
	"github.com/slipwayci/slipway/internal/registrytest"
)

// TestClientGivesUpOnASlowLoris is the attack on the one registry client
// every step uses: a registry that accepts connections and then stalls
// (never answers, answers only the login, sends half an answer) must fail
// each operation as a stall within its bounded time, retries included,
// rather than hold the job until CI kills it.
func TestClientGivesUpOnASlowLoris(t *testing.T) {
	const idle = 300 * time.Millisecond
	registrytest.EachSlowLoris(t, func(t *testing.T, s *registrytest.SlowLoris) {
		c, err := registry.New(registry.Options{
			Idle:    idle,
			Backoff: registry.Backoff{Retries: 1, Initial: 10 * time.Millisecond, Max: 10 * time.Millisecond},
		})
		if err != nil {
			t.Fatal(err)
		}
		repo, err := c.ParseRepository(s.Host + "/app")
		if err != nil {
			t.Fatal(err)
		}
		subject := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("a", 64)}
		start := time.Now()
		err = func() error {
			r, err := c.Dial(t.Context(), repo, registry.DialOptions{})
			if err != nil {
				return err
			}
			if _, _, _, err := r.Manifest(t.Context(), "latest"); err == nil {
				t.Error("reading a manifest from a stalled registry succeeded")
			}
			_, err = r.Referrers(t.Context(), subject)
			return err
		}()
		took := time.Since(start)
		var stalled *registry.StalledError
		if !errors.As(err, &stalled) && !strings.Contains(fmtErr(err), "made no progress for 300ms") {
			t.Errorf("err = %v, want the client to say the registry stalled", err)
		}
		if s.Stalled() == 0 {
			t.Error("the slow loris saw no request")
		}
		// Each operation: two tries of idle, within five times idle.
		if took > 10*time.Second {
			t.Errorf("the client took %s to give up", took)
		}
	})
}

func fmtErr(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
