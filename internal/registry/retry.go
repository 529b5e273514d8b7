package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Backoff bounds the retries of one registry operation: exponential waits
// with jitter, or what the registry asks for in Retry-After.
type Backoff struct {
	// Retries is how many times a failed operation is tried again.
	Retries int
	// Initial is the first wait; each next one doubles, up to Max.
	Initial, Max time.Duration
	// MaxRetryAfter is the longest Retry-After honoured; a registry asking
	// for more fails the push rather than stall it.
	MaxRetryAfter time.Duration
}

// DefaultBackoff waits about 0.5, 1, 2, 4 and 8 seconds.
func DefaultBackoff() Backoff {
	return Backoff{Retries: DefaultRetries, Initial: 500 * time.Millisecond, Max: 10 * time.Second, MaxRetryAfter: 2 * time.Minute}
}

// DefaultRetries is how many times DefaultBackoff retries.
const DefaultRetries = 5

// statusError is a registry's error response, with its Retry-After. It
// unwraps to the library's *transport.Error, which parses the registry's
// error codes.
type statusError struct {
	err        *transport.Error
	retryAfter time.Duration
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

// checkResponse returns nil if resp has one of the codes, and a
// *statusError otherwise. It does not close the body.
func checkResponse(resp *http.Response, codes ...int) error {
	err := transport.CheckError(resp, codes...)
	if err == nil {
		return nil
	}
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return err
	}
	return &statusError{err: terr, retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
}

// parseRetryAfter reads delay-seconds or an HTTP date; 0 if absent.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// retryable reports whether err is worth another try, and how long the
// registry asked to wait.
func retryable(err error) (bool, time.Duration) {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false, 0
	}
	var se *statusError
	if errors.As(err, &se) {
		if retryableStatus(se.err.StatusCode) {
			return true, se.retryAfter
		}
		return false, 0
	}
	// A host name that does not resolve names no registry; a resolver
	// that failed (IsTemporary, a timeout) may answer next time.
	var dns *net.DNSError
	if errors.As(err, &dns) && dns.IsNotFound {
		return false, 0
	}
	// Dropped and refused connections: a registry restarting, a proxy
	// cutting a long upload.
	var opErr *net.OpError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed),
		errors.As(err, &opErr):
		return true, 0
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true, 0
	}
	// net/http reports a connection closed mid-response in words only; and
	// a token that expired during an upload makes the auth transport send
	// the request again with its body spent, which a new attempt mends.
	msg := err.Error()
	return strings.Contains(msg, "connection reset") || strings.Contains(msg, "server closed") ||
		strings.Contains(msg, stalledWords) ||
		strings.Contains(msg, "broken pipe") || strings.Contains(msg, "transport connection broken") ||
		strings.Contains(msg, "with Body length"), 0
}

// retryableStatus reports whether an answer with status code c may be
// different next time: timeouts, rate limits and server errors, except
// those that say the server never will.
func retryableStatus(c int) bool {
	switch {
	case c == http.StatusRequestTimeout, c == http.StatusTooManyRequests:
		return true
	case c >= 500 && c != http.StatusNotImplemented && c != http.StatusHTTPVersionNotSupported:
		return true
	}
	return false
}

// wait is the pause before retry n (0-based): Initial·2ⁿ capped at Max,
// with half of it drawn at random so that parallel uploads hitting one
// limit do not come back in step.
func (b Backoff) wait(n int) time.Duration {
	d := b.Initial
	for i := 0; i < n && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	if d <= 0 {
		return 0
	}
	half := d / 2
	return half + rand.N(half+1)
}

// do runs op until it succeeds, fails for good, or the retries run out.
// onRetry, if set, hears of each retry before the wait.
func (b Backoff) do(ctx context.Context, onRetry func(err error, wait time.Duration), op func() error) error {
	for n := 0; ; n++ {
		err := op()
		if err == nil {
			return nil
		}
		ok, after := retryable(err)
		if !ok || n >= b.Retries || ctx.Err() != nil {
			return err
		}
		if b.MaxRetryAfter > 0 && after > b.MaxRetryAfter {
			return fmt.Errorf("%w (the registry asks to retry after %s; giving up)", err, after.Round(time.Second))
		}
		wait := b.wait(n)
		if after > 0 {
			// The registry knows best; a little jitter keeps parallel
			// uploads from returning at the same instant.
			wait = after + rand.N(after/10+1)
		}
		if onRetry != nil {
			onRetry(err, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// retrying retries the idempotent requests that go-containerregistry's
// remote sends for image and scan, as Backoff.do retries an operation:
// the same errors, Retry-After honoured, within the context. A request
// with a body it cannot replay goes once. When the retries run out on an
// error status, the last answer is returned unread, for the caller to read
// the registry's message from.
type retrying struct {
	inner   http.RoundTripper
	backoff Backoff
	// timeout bounds the tries of one request; each try is bounded by the
	// transport's watchdog.
	timeout time.Duration
	onRetry func(op string, err error, wait time.Duration)
}

func (t *retrying) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Body != http.NoBody && r.GetBody == nil {
		return t.inner.RoundTrip(r)
	}
	op := r.Method + " " + r.URL.Path
	var last *http.Response
	tries := 0
	// The deadline ends the waits between tries, not the request's own
	// context: an answer's body is read after RoundTrip returns.
	ctx, cancel := context.WithTimeout(r.Context(), t.timeout)
	defer cancel()
	err := t.backoff.do(ctx, func(err error, wait time.Duration) {
		if t.onRetry != nil {
			t.onRetry(op, err, wait)
		}
	}, func() error {
		if last != nil {
			drain(last)
			last = nil
		}
		req := r
		if tries++; tries > 1 && r.GetBody != nil {
			body, err := r.GetBody()
			if err != nil {
				return err
			}
			req = r.Clone(r.Context())
			req.Body = body
		}
		resp, err := t.inner.RoundTrip(req)
		if err != nil {
			return err
		}
		last = resp
		if retryableStatus(resp.StatusCode) {
			return &statusError{
				err:        &transport.Error{StatusCode: resp.StatusCode, Request: resp.Request},
				retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
			}
		}
		return nil
	})
	if last != nil {
		return last, nil
	}
	return nil, err
}
