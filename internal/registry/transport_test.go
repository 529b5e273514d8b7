package registry

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestPlainHTTPOnlyToLoopbackAndNamedRegistries(t *testing.T) {
	plain := newHostSet([]string{"insecure.example:5000", "lab.example"})
	for host, want := range map[string]bool{
		"127.0.0.1:5000":        true,
		"localhost:5000":        true,
		"[::1]:5000":            true,
		"insecure.example:5000": true,
		"lab.example:443":       true,
		"registry.example:5000": false,
		"10.0.0.5:5000":         false,
	} {
		r := &http.Request{URL: mustURL(t, "http://"+host+"/v2/")}
		allowed := plain.has(host) || isLoopback(r.URL.Hostname())
		if allowed != want {
			t.Errorf("plain HTTP to %s allowed=%v, want %v", host, allowed, want)
		}
	}
	// Skipping TLS verification is no licence for plain HTTP.
	rt, err := NewTransport(TransportOptions{SkipTLSVerify: []string{"registry.example:5000"}})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://registry.example:5000/v2/", nil)
	if _, err := rt.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "refusing plain HTTP") {
		t.Errorf("plain HTTP to a remote registry: %v", err)
	}
}

func TestNewTransportReadsCAFile(t *testing.T) {
	if _, err := NewTransport(TransportOptions{CAFile: filepath.Join(t.TempDir(), "none.pem")}); err == nil {
		t.Error("a missing SSL_CERT_FILE was ignored")
	}
	junk := filepath.Join(t.TempDir(), "junk.pem")
	os.WriteFile(junk, []byte("not a certificate"), 0o644)
	if _, err := NewTransport(TransportOptions{CAFile: junk}); err == nil || !strings.Contains(err.Error(), "no PEM certificates") {
		t.Errorf("a file without certificates: %v", err)
	}
}
