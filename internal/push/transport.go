package push

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// TransportOptions configure NewTransport.
type TransportOptions struct {
	// CAFile, if set, is the PEM bundle of the roots to trust instead of
	// the system's, as SSL_CERT_FILE means to Go, OpenSSL and curl.
	CAFile string
	// Insecure lists registries (host or host:port) that may be reached
	// over plain HTTP or with an unverified certificate, as Docker's
	// insecure-registries. Loopback registries may always use plain HTTP.
	Insecure  []string
	UserAgent string
}

// NewTransport returns the transport every registry request goes
// through: TLS verified against the system's roots (or CAFile), plain
// HTTP refused except to loopback and Insecure registries.
func NewTransport(o TransportOptions) (http.RoundTripper, error) {
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
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	base.MaxIdleConnsPerHost = 16
	unverified := base.Clone()
	unverified.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // only for registries named with --insecure
	g := &guard{secure: base, insecure: unverified, allowed: map[string]bool{}}
	for _, r := range o.Insecure {
		g.allowed[strings.ToLower(strings.TrimSpace(r))] = true
	}
	ua := o.UserAgent
	if ua == "" {
		ua = "slipway"
	}
	return transport.NewUserAgent(g, ua), nil
}

// guard routes each request by its registry's trust: plain HTTP only to
// loopback and --insecure registries, unverified TLS only to the latter.
type guard struct {
	secure, insecure http.RoundTripper
	allowed          map[string]bool
}

func (g *guard) isInsecure(host string) bool {
	host = strings.ToLower(host)
	if g.allowed[host] {
		return true
	}
	h, _, err := net.SplitHostPort(host)
	return err == nil && g.allowed[h]
}

func (g *guard) RoundTrip(r *http.Request) (*http.Response, error) {
	insecure := g.isInsecure(r.URL.Host)
	if r.URL.Scheme == "http" && !insecure && !isLoopback(r.URL.Hostname()) {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, fmt.Errorf("refusing plain HTTP to %s: name it with --insecure if it has no TLS", r.URL.Host)
	}
	if insecure {
		return g.insecure.RoundTrip(r)
	}
	return g.secure.RoundTrip(r)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
