package registry

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/slipwayci/slipway/internal/fault"
)

// A registry whose name does not resolve is a configuration error, said
// at once: not retried, and not called a login when no credentials were
// given.
func TestDialUnresolvableHostIsUsageAndNotRetried(t *testing.T) {
	const host = "registry.slipway-test.invalid"
	if _, err := net.LookupHost(host); err == nil {
		t.Skip(host + " resolves here")
	} else if dns := (*net.DNSError)(nil); !errors.As(err, &dns) || !dns.IsNotFound {
		t.Skipf("this machine's resolver does not answer no-such-host: %v", err)
	}
	var retries atomic.Int32
	c, err := New(Options{Backoff: Backoff{Retries: 5, Initial: 100 * time.Millisecond, Max: time.Second},
		OnRetry: func(name.Repository, string, error, time.Duration) { retries.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	repo, err := c.ParseRepository(host + "/team/app")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.Dial(context.Background(), repo, DialOptions{})
	if err == nil {
		t.Fatal("dialled a registry that does not resolve")
	}
	msg := err.Error()
	if fault.Of(err) != fault.Invalid || !strings.Contains(msg, "reaching "+host) || strings.Contains(msg, "logging in") || !strings.Contains(msg, "check the registry name "+host) {
		t.Errorf("error %q (kind %v), want a usage error about reaching %s", msg, fault.Of(err), host)
	}
	if n := retries.Load(); n != 0 || time.Since(start) > 5*time.Second {
		t.Errorf("retried %d times over %s", n, time.Since(start))
	}
}

// An unreachable registry with no credentials is "reaching", not
// "logging in to": nothing was logged in.
func TestDialUnreachableAnonymousIsNotALogin(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	c, err := New(Options{Backoff: Backoff{Retries: 1, Initial: time.Millisecond, Max: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	repo, err := c.ParseRepository(addr + "/team/app")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Dial(context.Background(), repo, DialOptions{})
	if err == nil || !strings.Contains(err.Error(), "reaching "+addr) || strings.Contains(err.Error(), "logging in") {
		t.Errorf("error %v, want it to say reaching %s", err, addr)
	}
}

func TestParseRepositoryRefusesAScheme(t *testing.T) {
	c, _ := New(Options{})
	for in, want := range map[string]string{
		"http://localhost:5000/team/app":  "drop the scheme: give localhost:5000/team/app, and --plain-http localhost:5000 for a registry without TLS",
		"https://ghcr.io/owner/app":       "drop the scheme: give ghcr.io/owner/app",
		"oci://registry.example/team/app": "drop the scheme",
	} {
		if _, err := c.ParseRepository(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseRepository(%q) = %v, want %q", in, err, want)
		}
		if _, err := ParseRepository(in, nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("registry.ParseRepository(%q) = %v, want %q", in, err, want)
		}
		if _, err := c.ParseReference(in + ":1.0"); err == nil || !strings.Contains(err.Error(), "drop the scheme") {
			t.Errorf("ParseReference(%q) = %v", in, err)
		}
	}
}
