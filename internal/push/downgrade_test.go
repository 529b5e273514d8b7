package push

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// nonLoopback is an address of this machine that is not loopback, for a
// registry that plain HTTP may not reach; the test skips where there is
// none.
func nonLoopback(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Skipf("listing addresses: %v", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP.String()
		}
	}
	t.Skip("this machine has no address but loopback")
	return ""
}

// TestMainInsecureNeverDowngradesToPlainHTTP is the downgrade attack: a
// registry named so that its certificate is not checked is impersonated by
// a man in the middle who speaks plain HTTP and asks for Basic
// credentials. Skipping TLS verification must never mean falling back to
// plain HTTP, where the password would travel in clear text.
func TestMainInsecureNeverDowngradesToPlainHTTP(t *testing.T) {
	ln, err := net.Listen("tcp", nonLoopback(t)+":0")
	if err != nil {
		t.Skipf("listening on a non-loopback address: %v", err)
	}
	var mu sync.Mutex
	var plain int
	var creds []string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		plain++
		if a := r.Header.Get("Authorization"); a != "" {
			creds = append(creds, a)
		}
		mu.Unlock()
		w.Header().Set("WWW-Authenticate", `Basic realm="mitm"`)
		w.WriteHeader(http.StatusUnauthorized)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	host := ln.Addr().String()
	dir, _ := testDist(t)
	for _, tc := range []struct {
		flag  string
		plain bool // the impostor is reached: only when plain HTTP is asked for
	}{
		{"--insecure", false},
		{"--insecure-skip-tls-verify", false},
		{"--plain-http", true},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			_, stderr, code := runMain(t, dir, nil, "s3cret\n", "--to", host+"/app", tc.flag, host, "--username", "u", "--password-stdin", "--retries", "0")
			mu.Lock()
			defer mu.Unlock()
			if code == 0 {
				t.Errorf("push to an impostor succeeded:\n%s", stderr)
			}
			if !tc.plain && (len(creds) > 0 || plain > 0) {
				t.Errorf("%d requests went over plain HTTP, %d with credentials: %q", plain, len(creds), creds)
			}
			if tc.plain && plain == 0 {
				t.Errorf("--plain-http did not reach the plain-HTTP registry:\n%s", stderr)
			}
			if n := strings.Count(stderr, "slipway push:"); n != 1 {
				t.Errorf("%d error lines, want one:\n%s", n, stderr)
			}
			plain, creds = 0, nil
		})
	}
}
