package registry

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestRetryable(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		want  bool
		after time.Duration
	}{
		{"503 with Retry-After", status(503, "7"), true, 7 * time.Second},
		{"429", status(429, ""), true, 0},
		{"408", status(408, ""), true, 0},
		{"501 is for good", status(501, ""), false, 0},
		{"404", status(404, ""), false, 0},
		{"401", status(401, ""), false, 0},
		{"dropped mid-response", &url.Error{Op: "Put", URL: "x", Err: io.ErrUnexpectedEOF}, true, 0},
		{"dropped before the response", &url.Error{Op: "Put", URL: "x", Err: io.EOF}, true, 0},
		{"refused", &url.Error{Op: "Head", URL: "x", Err: &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}}, true, 0},
		{"no such host", &url.Error{Op: "Get", URL: "x", Err: &net.OpError{Op: "dial", Err: &net.DNSError{Name: "nope.invalid", Err: "no such host", IsNotFound: true}}}, false, 0},
		{"resolver timed out", &url.Error{Op: "Get", URL: "x", Err: &net.OpError{Op: "dial", Err: &net.DNSError{Name: "r.example", Err: "i/o timeout", IsTimeout: true}}}, true, 0},
		{"bad request", errors.New("parsing something"), false, 0},
		{"reset", errors.New("read tcp: connection reset by peer"), true, 0},
		{"cancelled", context.Canceled, false, 0},
		{"x509", errors.New("tls: failed to verify certificate: x509: certificate signed by unknown authority"), false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, after := retryable(tc.err)
			if ok != tc.want || after != tc.after {
				t.Errorf("retryable = %v, %s; want %v, %s", ok, after, tc.want, tc.after)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              0,
		"3":                             3 * time.Second,
		"-1":                            0,
		"soon":                          0,
		"Fri, 02 Jan 2026 03:04:35 GMT": 30 * time.Second,
		"Fri, 02 Jan 2026 03:00:00 GMT": 0,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestBackoffWaitIsBoundedAndJittered(t *testing.T) {
	b := Backoff{Initial: 100 * time.Millisecond, Max: time.Second}
	seen := map[time.Duration]bool{}
	for n := range 12 {
		for range 20 {
			w := b.wait(n)
			ceil := min(100*time.Millisecond<<n, time.Second)
			if w < ceil/2 || w > ceil {
				t.Fatalf("wait(%d) = %s, want within [%s, %s]", n, w, ceil/2, ceil)
			}
			seen[w] = true
		}
	}
	if len(seen) < 10 {
		t.Errorf("only %d distinct waits: no jitter", len(seen))
	}
}

func TestBackoffGivesUpOnLongRetryAfter(t *testing.T) {
	b := Backoff{Retries: 3, MaxRetryAfter: time.Second}
	calls := 0
	err := b.do(context.Background(), nil, func() error { calls++; return status(429, "3600") })
	if calls != 1 || err == nil || !strings.Contains(err.Error(), "retry after 1h0m0s") {
		t.Errorf("calls=%d err=%v; want one call and a clear refusal", calls, err)
	}
}

// status is the error a registry answer with code gives.
func status(code int, retryAfter string) error {
	resp := &http.Response{
		StatusCode: code,
		Header:     http.Header{},
		Body:       io.NopCloser(strings.NewReader("")),
		Request:    &http.Request{Method: http.MethodPut, URL: &url.URL{Scheme: "https", Host: "r.example", Path: "/v2/"}},
	}
	if retryAfter != "" {
		resp.Header.Set("Retry-After", retryAfter)
	}
	return checkResponse(resp)
}

func TestRetryingHonoursRetryAfterAndHandsOverTheLastAnswer(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"errors":[{"code":"UNAVAILABLE","message":"down"}]}`)
	}))
	defer srv.Close()
	rt := &retrying{inner: http.DefaultTransport, backoff: Backoff{Retries: 2, Initial: time.Millisecond, Max: time.Millisecond, MaxRetryAfter: time.Minute}, timeout: time.Minute}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v2/", nil)
	start := time.Now()
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if d := time.Since(start); d < time.Second {
		t.Errorf("took %s; Retry-After: 1 was not waited out", d)
	}
	if n.Load() != 3 || resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "down") {
		t.Errorf("%d tries, last answer %d %q; want 3 tries and the last 503 with its body", n.Load(), resp.StatusCode, body)
	}
}
