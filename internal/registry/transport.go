package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// transportOptions configure newTransport.
type transportOptions struct {
	// CAFile, if set, is the PEM bundle of the roots to trust instead of
	// the system's, as SSL_CERT_FILE means to Go, OpenSSL and curl.
	CAFile string
	// SkipTLSVerify lists registries (host or host:port) whose
	// certificates are not verified. It never allows plain HTTP: a
	// registry reached with TLS is never reached without it.
	SkipTLSVerify []string
	// PlainHTTP lists registries that may be reached over plain HTTP.
	// Loopback registries always may.
	PlainHTTP []string
	UserAgent string
	// Idle is how long a request may go without progress: no answer to
	// it, no byte of its body taken or of the answer's body read. Zero
	// means DefaultIdle.
	Idle time.Duration
}

// DefaultIdle is how long a registry may leave a request without progress.
// Generous: a registry may take a while to answer the last byte of a large
// upload while it moves the blob into place.
const DefaultIdle = time.Minute

// newTransport returns the transport every registry request goes
// through: TLS verified against the system's roots (or CAFile), plain
// HTTP refused except to loopback and PlainHTTP registries, and every
// request failed once it has made no progress for Idle.
func newTransport(o transportOptions) (http.RoundTripper, error) {
	// Without a CA file the roots load lazily, at the first certificate
	// to verify: parsing them costs tens of milliseconds that a push to a
	// plain-HTTP registry would spend for nothing.
	var roots *x509.CertPool
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading SSL_CERT_FILE: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("reading SSL_CERT_FILE %s: no PEM certificates in it", o.CAFile)
		}
	}
	idle := o.Idle
	if idle <= 0 {
		idle = DefaultIdle
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	base.MaxIdleConnsPerHost = 16
	// The watchdog below fails a request whose answer is late, and says
	// so; this is a backstop.
	base.ResponseHeaderTimeout = 2 * idle
	base.TLSHandshakeTimeout = min(idle, 10*time.Second)
	base.DialContext = (&net.Dialer{Timeout: min(idle, 30*time.Second), KeepAlive: 30 * time.Second}).DialContext
	unverified := base.Clone()
	unverified.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // only for registries named with --insecure-skip-tls-verify
	g := &guard{secure: base, unverified: unverified, skipVerify: newHostSet(o.SkipTLSVerify), plainHTTP: newHostSet(o.PlainHTTP), idle: idle}
	ua := o.UserAgent
	if ua == "" {
		ua = "slipway"
	}
	return transport.NewUserAgent(g, ua), nil
}

// hostSet is a set of registry names, lowercased.
type hostSet map[string]bool

func newHostSet(list []string) hostSet {
	s := hostSet{}
	for _, r := range list {
		if r = strings.ToLower(strings.TrimSpace(r)); r != "" {
			s[r] = true
		}
	}
	return s
}

// has reports whether host (host or host:port) is named, by itself or by
// its host without the port.
func (s hostSet) has(host string) bool {
	host = strings.ToLower(host)
	if s[host] {
		return true
	}
	h, _, err := net.SplitHostPort(host)
	return err == nil && s[h]
}

// guard routes each request by its registry's trust: plain HTTP only to
// loopback and PlainHTTP registries, unverified TLS only to SkipTLSVerify
// ones. Keeping the two apart is what stops a downgrade: a registry whose
// certificate is not checked is still never spoken to in clear text, where
// anyone on the path reads its credentials.
type guard struct {
	secure, unverified    http.RoundTripper
	skipVerify, plainHTTP hostSet
	idle                  time.Duration
}

func (g *guard) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "http" && !g.plainHTTP.has(r.URL.Host) && !isLoopback(r.URL.Hostname()) {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, fmt.Errorf("refusing plain HTTP to %s: name it with --plain-http if it has no TLS", r.URL.Host)
	}
	rt := g.secure
	if g.skipVerify.has(r.URL.Host) {
		rt = g.unverified
	}
	return watch(rt, r, g.idle)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// StalledError is a request that made no progress for too long: a
// registry that accepted the connection and then said nothing, or stopped
// sending or taking a body halfway.
type StalledError struct {
	Host string
	Idle time.Duration
}

func (e *StalledError) Error() string {
	return fmt.Sprintf("%s %s %s", e.Host, stalledWords, e.Idle)
}

// stalledWords mark a stall in a message, for retries to recognise it
// where go-containerregistry keeps only the text (its ping's errors).
const stalledWords = "made no progress for"

// Timeout makes a stall a timeout to anything that asks a net.Error,
// retries included.
func (e *StalledError) Timeout() bool   { return true }
func (e *StalledError) Temporary() bool { return true }

// watch sends r through rt and cancels it once nothing has moved for idle:
// the timer starts with the request and is pushed back by every byte of
// the request's body the transport takes, by the answer's headers, and by
// every read of the answer's body. Deadlines on the connection would not
// do: HTTP/2 shares one connection among requests, and a busy neighbour
// would keep a stalled request alive.
func watch(rt http.RoundTripper, r *http.Request, idle time.Duration) (*http.Response, error) {
	ctx, cancel := context.WithCancel(r.Context())
	w := &watchdog{host: r.URL.Host, idle: idle, cancel: cancel}
	w.timer = time.AfterFunc(idle, w.fire)
	r = r.WithContext(ctx)
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &watchedBody{ReadCloser: r.Body, w: w}
	}
	resp, err := rt.RoundTrip(r)
	if err != nil {
		w.stop()
		return nil, w.explain(err)
	}
	if !w.touch() {
		resp.Body.Close()
		w.stop()
		return nil, w.stalled()
	}
	resp.Body = &watchedBody{ReadCloser: resp.Body, w: w, done: true}
	return resp, nil
}

type watchdog struct {
	host   string
	idle   time.Duration
	cancel context.CancelFunc
	timer  *time.Timer
	fired  atomic.Bool
	once   sync.Once
}

func (w *watchdog) fire() {
	w.fired.Store(true)
	w.cancel()
}

// touch pushes the deadline back; false if it has passed already.
func (w *watchdog) touch() bool {
	if w.fired.Load() {
		return false
	}
	w.timer.Reset(w.idle)
	return !w.fired.Load()
}

func (w *watchdog) stop() {
	w.once.Do(func() {
		w.timer.Stop()
		w.cancel()
	})
}

func (w *watchdog) stalled() error { return &StalledError{Host: w.host, Idle: w.idle} }

// explain turns the cancellation the watchdog caused into a stall.
func (w *watchdog) explain(err error) error {
	if err != nil && w.fired.Load() {
		return w.stalled()
	}
	return err
}

// watchedBody is a request or response body whose reads count as
// progress. Closing a response's body ends the watch.
type watchedBody struct {
	io.ReadCloser
	w    *watchdog
	done bool // a response body: Close ends the request
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.w.touch()
	}
	if err != nil && !errors.Is(err, io.EOF) {
		err = b.w.explain(err)
	}
	return n, err
}

func (b *watchedBody) Close() error {
	err := b.ReadCloser.Close()
	if b.done {
		b.w.stop()
	}
	return err
}
