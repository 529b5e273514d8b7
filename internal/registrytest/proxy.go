package registrytest

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Request is one request the proxy saw, and what became of it.
type Request struct {
	Method string
	Path   string
	Query  url.Values
	// Status is the registry's answer (0 if it gave none).
	Status int
	// Sent is how many body bytes reached the registry.
	Sent int64
	// Fault names the fault applied, if any: "status", "drop" (the
	// registry never saw it) or "drop-after" (it did, the client never
	// heard).
	Fault string
}

// Upload reports whether the request sent blob content: a PATCH or PUT
// to an upload session, or a POST with a body.
func (r Request) Upload() bool {
	return strings.Contains(r.Path, "/blobs/uploads/") && (r.Method == http.MethodPut || r.Method == http.MethodPatch || r.Method == http.MethodPost) && r.Sent > 0
}

// Fault is what the proxy does to requests that match it. The faults
// injected form a script, tried in order; each hits Times matching
// requests after letting Skip of them through.
type Fault struct {
	Method string         // "" matches any
	Path   *regexp.Regexp // nil matches any
	Skip   int
	Times  int // 0 means 1
	// One of: answer Status (with RetryAfter, if set) without forwarding;
	// Drop the connection without forwarding; forward and then DropAfter,
	// so the registry acts and the client never hears.
	Status     int
	RetryAfter string
	Drop       bool
	DropAfter  bool
	// Do runs before the request goes any further, e.g. to kill the
	// registry behind the proxy.
	Do func()
}

func (f *Fault) matches(r *http.Request) bool {
	return (f.Method == "" || f.Method == r.Method) && (f.Path == nil || f.Path.MatchString(r.URL.Path))
}

// Proxy is a reverse proxy in front of a registry that records every
// request, counts the bytes that reach the registry, and injects faults.
type Proxy struct {
	// URL is the proxy's base URL; Host its host:port.
	URL  string
	Host string

	srv     *http.Server
	ln      net.Listener
	backend *url.URL
	rt      http.RoundTripper
	rp      *httputil.ReverseProxy

	mu     sync.Mutex
	faults []*scripted
	log    []Request
	delay  func(*http.Request) time.Duration
}

type scripted struct {
	Fault
	seen, hit int
}

// ProxyOptions configure NewProxy.
type ProxyOptions struct {
	// TLS, if set, is what the proxy serves with.
	TLS *tls.Config
	// Transport reaches the backend (default: http.DefaultTransport).
	Transport http.RoundTripper
}

// NewProxy starts a proxy on 127.0.0.1 in front of backend, a base URL
// such as http://127.0.0.1:5000. The Host header passes through, so a
// registry's upload Locations point back at the proxy.
func NewProxy(backend string, o ProxyOptions) (*Proxy, error) {
	u, err := url.Parse(backend)
	if err != nil {
		return nil, fmt.Errorf("parsing backend %q: %w", backend, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rt := o.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	p := &Proxy{backend: u, rt: rt, ln: ln, Host: ln.Addr().String()}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = r.In.Host
		},
		Transport: rt,
		// A dead registry looks to the client as it would without the
		// proxy: a connection that closes without an answer.
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) { hangUp(w) },
	}
	scheme := "http"
	if o.TLS != nil {
		scheme = "https"
		cfg := o.TLS.Clone()
		cfg.NextProtos = []string{"http/1.1"} // hijacking needs HTTP/1
		ln = tls.NewListener(ln, cfg)
	}
	p.URL = scheme + "://" + p.Host
	// Handshakes that fail on purpose (an untrusted CA) are the test's
	// business, not noise for the test log.
	p.srv = &http.Server{Handler: p, ErrorLog: log.New(io.Discard, "", 0)}
	go p.srv.Serve(ln)
	return p, nil
}

// Inject appends faults to the script.
func (p *Proxy) Inject(faults ...Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range faults {
		if f.Times == 0 {
			f.Times = 1
		}
		p.faults = append(p.faults, &scripted{Fault: f})
	}
}

// Delay holds each request for f(request) before it goes any further, to
// widen the windows in which concurrent clients race; nil for none.
func (p *Proxy) Delay(f func(*http.Request) time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = f
}

// Requests returns what the proxy has seen since the last Reset.
func (p *Proxy) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Request(nil), p.log...)
}

// Reset forgets the requests seen and the faults not yet used.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log, p.faults = nil, nil
}

// Close stops the proxy.
func (p *Proxy) Close() error { return p.srv.Close() }

// fault returns the fault for r, if one is due.
func (p *Proxy) fault(r *http.Request) *Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.faults {
		if f.hit >= f.Times || !f.matches(r) {
			continue
		}
		f.seen++
		if f.seen <= f.Skip {
			continue
		}
		f.hit++
		ff := f.Fault
		return &ff
	}
	return nil
}

func (p *Proxy) record(r Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = append(p.log, r)
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	delay := p.delay
	p.mu.Unlock()
	if delay != nil {
		if d := delay(r); d > 0 {
			time.Sleep(d)
		}
	}
	rec := Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query()}
	f := p.fault(r)
	if f != nil && f.Do != nil {
		f.Do()
	}
	switch {
	case f != nil && f.Drop:
		rec.Fault = "drop"
		p.record(rec)
		hangUp(w)
		return
	case f != nil && f.Status != 0:
		rec.Fault, rec.Status = "status", f.Status
		p.record(rec)
		io.Copy(io.Discard, r.Body)
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.Status)
		fmt.Fprintf(w, `{"errors":[{"code":%q,"message":"%d injected by registrytest"}]}`, errorCode(f.Status), f.Status)
		return
	}
	body := &countingBody{rc: r.Body}
	r.Body = body
	if f != nil && f.DropAfter {
		rec.Fault = "drop-after"
		out := r.Clone(r.Context())
		out.URL.Scheme, out.URL.Host, out.RequestURI = p.backend.Scheme, p.backend.Host, ""
		if resp, err := p.rt.RoundTrip(out); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			rec.Status = resp.StatusCode
		}
		rec.Sent = body.n
		p.record(rec)
		hangUp(w)
		return
	}
	sw := &statusWriter{ResponseWriter: w}
	p.rp.ServeHTTP(sw, r)
	rec.Status, rec.Sent = sw.status, body.n
	p.record(rec)
}

// errorCode is the distribution error code a registry sends with status.
func errorCode(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "UNAUTHORIZED"
	case http.StatusForbidden:
		return "DENIED"
	case http.StatusTooManyRequests:
		return "TOOMANYREQUESTS"
	case http.StatusNotFound:
		return "NAME_UNKNOWN"
	}
	if status >= 500 {
		return "UNAVAILABLE"
	}
	return "UNSUPPORTED"
}

// hangUp closes the client's connection without an answer.
func hangUp(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

type countingBody struct {
	rc io.ReadCloser
	n  int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n += int64(n)
	return n, err
}

func (b *countingBody) Close() error { return b.rc.Close() }

// statusWriter remembers the status the registry answered, and still lets
// the proxy hang up.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.ResponseWriter.(http.Hijacker).Hijack()
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
