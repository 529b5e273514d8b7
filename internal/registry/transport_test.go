package registry

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	rt, err := newTransport(transportOptions{SkipTLSVerify: []string{"registry.example:5000"}})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://registry.example:5000/v2/", nil)
	if _, err := rt.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "refusing plain HTTP") {
		t.Errorf("plain HTTP to a remote registry: %v", err)
	}
}

func TestTransportReadsCAFile(t *testing.T) {
	if _, err := newTransport(transportOptions{CAFile: filepath.Join(t.TempDir(), "none.pem")}); err == nil {
		t.Error("a missing SSL_CERT_FILE was ignored")
	}
	junk := filepath.Join(t.TempDir(), "junk.pem")
	os.WriteFile(junk, []byte("not a certificate"), 0o644)
	if _, err := newTransport(transportOptions{CAFile: junk}); err == nil || !strings.Contains(err.Error(), "no PEM certificates") {
		t.Errorf("a file without certificates: %v", err)
	}
}

// TestWatchdogFailsStalledRequests: whichever way a request stops moving
// (no answer, an upload the server stops taking, an answer's body that
// stops coming), it fails once Idle passes with no progress, as a
// retryable StalledError; a slow request that keeps moving does not.
func TestWatchdogFailsStalledRequests(t *testing.T) {
	hold := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/silent", "/upload":
			<-hold
		case "/trickle":
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(http.StatusOK)
			w.Write([]byte("x"))
			w.(http.Flusher).Flush()
			<-hold
		case "/slow":
			for range 6 {
				w.Write([]byte("x"))
				w.(http.Flusher).Flush()
				time.Sleep(100 * time.Millisecond)
			}
		}
	}))
	defer srv.Close()
	defer close(hold) // before Close, which waits for the handlers
	rt, err := newTransport(transportOptions{Idle: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string, body io.Reader) error {
		req, _ := http.NewRequest(http.MethodPut, srv.URL+path, body)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		return err
	}
	// An upload larger than the socket buffers: the server never reads.
	big := bytes.NewReader(make([]byte, 64<<20))
	for path, body := range map[string]io.Reader{"/silent": nil, "/upload": big, "/trickle": nil} {
		start := time.Now()
		err := get(path, body)
		var se *StalledError
		if !errors.As(err, &se) {
			t.Errorf("%s: err = %v, want a stall", path, err)
			continue
		}
		if ok, _ := retryable(err); !ok {
			t.Errorf("%s: a stall is not retried", path)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s: took %s to fail", path, d)
		}
	}
	if err := get("/slow", nil); err != nil {
		t.Errorf("a slow answer that keeps coming (600ms in all, a byte every 100ms) failed: %v", err)
	}
}
