package promote

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/registrytest"
)

// TestMainGivesUpOnASlowLoris: a registry that accepts the connection and
// then says nothing, or answers the login and stalls the rest, must fail a
// promotion (and slipway history) with one line in bounded time.
func TestMainGivesUpOnASlowLoris(t *testing.T) {
	f := newFixture(t)
	registrytest.EachSlowLoris(t, func(t *testing.T, s *registrytest.SlowLoris) {
		dir := t.TempDir()
		cfg := "environments:\n  staging:\n    repository: " + s.Host + "/staging/app\n    tags: [staging]\n"
		if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, cmd := range []struct {
			history bool
			args    []string
		}{
			{false, []string{"--to", "staging", "--digest", s.Host + "/ci/app@sha256:" + strings.Repeat("a", 64)}},
			{true, []string{"staging"}},
		} {
			start := time.Now()
			_, stderr, code := runCommand(t, f, dir, nil, "", cmd.history, append(cmd.args, "--registry-timeout", "300ms", "--retries", "1")...)
			took := time.Since(start)
			prog := map[bool]string{false: "slipway promote:", true: "slipway history:"}[cmd.history]
			if code != cli.ExitFailure || strings.Count(stderr, prog) != 1 || !strings.Contains(stderr, "made no progress for 300ms") {
				t.Errorf("%v: exit %d, stderr:\n%s\nwant 1 and one line saying the registry stalled", cmd.args, code, stderr)
			}
			if took > 10*time.Second {
				t.Errorf("%v took %s to give up", cmd.args, took)
			}
		}
	})
}
