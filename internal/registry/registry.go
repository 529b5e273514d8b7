// Package registry is how every slipway step reaches a registry: one
// keychain (see Credentials for its order), one transport (TLS verified,
// plain HTTP only where named, SSL_CERT_FILE, a watchdog on stalled
// requests), one retry policy (backoff with jitter, Retry-After honoured, a
// deadline per operation) and one progress printer.
//
// Two kinds of access go through it. Reads of whole images, for the image
// step's base and the scan step's target, use go-containerregistry's
// remote (Client.Get): its lazy images and layers are what those steps
// need, and remote takes this package's transport, logged in and wrapped
// so that remote adds neither retries nor authentication of its own.
// Writes, and the small reads around them (manifests, referrers, small
// blobs), go through Repository, one request per operation, because remote
// does not give the guarantees slipway promises:
//
//   - Order. remote.MultiWrite uploads blobs and manifests in its own order
//     and writes tags with the manifests. Push needs every blob, then every
//     manifest, then the index, then the referrers, and the tags last, so
//     that a tag never names an incomplete image; Repository lets push
//     order its requests.
//   - Retries. remote retries single requests a few times at 0.1 and 0.3s
//     and ignores Retry-After. Repository retries whole operations with
//     DefaultBackoff, waits as long as the registry asks (up to a limit),
//     and starts a failed upload again from the existence check, so a blob
//     that landed unanswered is not sent twice.
//   - Mounts. A mount refused outright falls back to an upload, and pull
//     scopes for the mount sources are asked for at login.
//   - Referrers. The fallback tag is merged with what others wrote, and
//     read back after a pause (Attach), not overwritten.
//   - Bounds. Every operation has a deadline, every request a watchdog
//     (no progress for Idle fails it), and listings are capped
//     (MaxReferrers), so a registry that accepts and never answers, or one
//     that lists a million referrers, fails the step instead of hanging it.
package registry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/slipwayci/slipway/internal/fault"
)

// Options say how a Client reaches registries.
type Options struct {
	// Keychain finds credentials; Credentials.Keychain makes slipway's.
	// Nil means anonymous.
	Keychain authn.Keychain
	// CAFile, if set, is the PEM bundle of the roots to trust instead of
	// the system's (SSL_CERT_FILE).
	CAFile string
	// SkipTLSVerify lists registries (host or host:port) whose TLS
	// certificates are not verified. It never allows plain HTTP.
	SkipTLSVerify []string
	// PlainHTTP lists registries that may be reached over plain HTTP.
	// Loopback registries always may.
	PlainHTTP []string
	UserAgent string
	// Backoff bounds the retries of each operation; the zero value
	// retries nothing (DefaultBackoff retries five times).
	Backoff Backoff
	// Idle is how long a request may make no progress (DefaultIdle if
	// zero); Timeout is how long one operation may take, retries
	// included (five times Idle if zero). Blob transfers get longer, in
	// proportion to their size.
	Idle, Timeout time.Duration
	// OnRetry, if set, hears of every retry.
	OnRetry func(repo name.Repository, op string, err error, wait time.Duration)
	// Transport, if set, replaces the transport the fields above describe
	// (tests).
	Transport http.RoundTripper
}

// Client reaches registries as its Options say. It is safe for concurrent
// use, and connections are shared by everything dialled through it.
type Client struct {
	o         Options
	transport http.RoundTripper
	plainHTTP hostSet
}

// New returns a client; only a CAFile that cannot be read fails it.
func New(o Options) (*Client, error) {
	if o.Keychain == nil {
		o.Keychain = authn.NewMultiKeychain()
	}
	if o.Idle <= 0 {
		o.Idle = DefaultIdle
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * o.Idle
	}
	c := &Client{o: o, transport: o.Transport, plainHTTP: newHostSet(o.PlainHTTP)}
	if c.transport == nil {
		rt, err := newTransport(transportOptions{CAFile: o.CAFile, SkipTLSVerify: o.SkipTLSVerify, PlainHTTP: o.PlainHTTP, UserAgent: o.UserAgent, Idle: o.Idle})
		if err != nil {
			return nil, err
		}
		c.transport = rt
	}
	return c, nil
}

// ParseRepository reads a repository name, marking it plain HTTP when its
// registry is one of PlainHTTP.
func (c *Client) ParseRepository(s string) (name.Repository, error) {
	if err := noScheme(s); err != nil {
		return name.Repository{}, err
	}
	return name.NewRepository(s, nameOptions(s, c.plainHTTP)...)
}

// ParseReference reads an image reference (tag or digest) as
// ParseRepository reads a repository.
func (c *Client) ParseReference(s string) (name.Reference, error) {
	if err := noScheme(s); err != nil {
		return nil, err
	}
	return name.ParseReference(s, nameOptions(s, c.plainHTTP)...)
}

// noScheme refuses a URL where a name belongs: go-containerregistry would
// say the repository has bad characters, which hides the fix.
func noScheme(s string) error {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return nil
	}
	host, _, _ := strings.Cut(rest, "/")
	if scheme == "http" {
		return fmt.Errorf("drop the scheme: give %s, and --plain-http %s for a registry without TLS", rest, host)
	}
	return fmt.Errorf("drop the scheme: give %s", rest)
}

// DialOptions configure Dial.
type DialOptions struct {
	// Push asks for push access; without it, pull only.
	Push bool
	// MountFrom are repositories on the same registry whose blobs may be
	// mounted; pull access to them is asked for at login.
	MountFrom []name.Repository
	// OnRetry, if set, hears of each retried operation (default: the
	// client's OnRetry).
	OnRetry func(op string, err error, wait time.Duration)
	// OnBytes, if set, hears of upload progress: bytes sent, and negative
	// when a failed attempt is taken back.
	OnBytes func(n int64)
	// Settle is how long Attach waits before it reads a fallback index
	// back a last time (default 200ms).
	Settle time.Duration
}

// Dial logs in to repo.
func (c *Client) Dial(ctx context.Context, repo name.Repository, o DialOptions) (*Repository, error) {
	auth, err := authn.Resolve(ctx, c.o.Keychain, repo)
	if err != nil {
		return nil, fmt.Errorf("finding credentials for %s: %w", repo, err)
	}
	scope := transport.PullScope
	if o.Push {
		scope = transport.PushScope
	}
	scopes := []string{repo.Scope(scope)}
	for _, m := range o.MountFrom {
		if m.RegistryStr() == repo.RegistryStr() && m.RepositoryStr() != repo.RepositoryStr() {
			scopes = append(scopes, m.Scope(transport.PullScope))
		}
	}
	onRetry := o.OnRetry
	if onRetry == nil && c.o.OnRetry != nil {
		onRetry = func(op string, err error, wait time.Duration) { c.o.OnRetry(repo, op, err, wait) }
	}
	if o.Settle <= 0 {
		o.Settle = 200 * time.Millisecond
	}
	r := &Repository{
		repo: repo, backoff: c.o.Backoff, timeout: c.o.Timeout, onRetry: onRetry, onBytes: o.OnBytes,
		anonymous: auth == authn.Anonymous, settle: o.Settle,
	}
	counted := countingTransport{inner: c.transport, n: &r.requests}
	var rt http.RoundTripper
	// With no credentials there is no login to speak of: the registry is
	// only being reached.
	op := loginOp(repo, r.anonymous)
	err = r.retry(ctx, op, r.timeout, func(ctx context.Context) error {
		var err error
		rt, err = transport.NewWithContext(ctx, repo.Registry, auth, counted, scopes)
		return err
	})
	if err != nil {
		return nil, r.explain(unresolvable(fmt.Errorf("%s: %w", op, err), repo))
	}
	r.http = &http.Client{Transport: rt}
	return r, nil
}

// Get reads the manifest ref names, as go-containerregistry's remote.Get
// does, for images and indexes to be read lazily through remote: the
// keychain, transport and retries are the client's.
func (c *Client) Get(ctx context.Context, ref name.Reference) (*remote.Descriptor, error) {
	repo := ref.Context()
	auth, err := authn.Resolve(ctx, c.o.Keychain, repo)
	if err != nil {
		return nil, fmt.Errorf("finding credentials for %s: %w", repo, err)
	}
	anonymous := auth == authn.Anonymous
	rt := &retrying{inner: c.transport, backoff: c.o.Backoff, timeout: c.o.Timeout}
	if c.o.OnRetry != nil {
		rt.onRetry = func(op string, err error, wait time.Duration) { c.o.OnRetry(repo, op, err, wait) }
	}
	// Logged in here, remote takes the transport as it is (a
	// transport.Wrapper), adding no retries or login of its own.
	tr, err := transport.NewWithContext(ctx, repo.Registry, auth, rt, []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, explainAuth(unresolvable(fmt.Errorf("%s: %w", loginOp(repo, anonymous), err), repo), repo, anonymous)
	}
	desc, err := remote.Get(ref, remote.WithContext(ctx), remote.WithTransport(tr))
	if err != nil {
		return nil, explainAuth(err, repo, anonymous)
	}
	return desc, nil
}

// loginOp names the first exchange with a registry in messages.
func loginOp(repo name.Repository, anonymous bool) string {
	if anonymous {
		return "reaching " + repo.RegistryStr()
	}
	return "logging in to " + repo.RegistryStr()
}

// unresolvable marks a registry whose host name does not resolve as a
// configuration error: it names no registry, and waiting will not make
// it one.
func unresolvable(err error, repo name.Repository) error {
	var dns *net.DNSError
	if errors.As(err, &dns) && dns.IsNotFound {
		return fault.As(fault.Invalid, fmt.Errorf("%w; check the registry name %s", err, repo.RegistryStr()))
	}
	return err
}

// AuthError is a registry's refusal of the credentials given, or of none.
type AuthError struct {
	Registry string
	// Anonymous is set when no credentials were found for the registry.
	Anonymous bool
	// Status is the registry's answer, 401 or 403.
	Status int
	Err    error
}

func (e *AuthError) Error() string {
	if e.Anonymous {
		return fmt.Sprintf("no credentials for %s (log in with docker login, or give a username and password): %v", e.Registry, e.Err)
	}
	return fmt.Sprintf("%s refused the credentials: %v", e.Registry, e.Err)
}

func (e *AuthError) Unwrap() error { return e.Err }

// explainAuth makes a 401 an *AuthError.
func explainAuth(err error, repo name.Repository, anonymous bool) error {
	var te *transport.Error
	if err == nil || !errors.As(err, &te) || te.StatusCode != http.StatusUnauthorized {
		return err
	}
	var ae *AuthError
	if errors.As(err, &ae) {
		return err
	}
	return &AuthError{Registry: repo.RegistryStr(), Anonymous: anonymous, Status: te.StatusCode, Err: err}
}

// ParseRepository reads a repository name, marking it plain HTTP when its
// registry is one of plainHTTP.
func ParseRepository(s string, plainHTTP []string) (name.Repository, error) {
	if err := noScheme(s); err != nil {
		return name.Repository{}, err
	}
	return name.NewRepository(s, nameOptions(s, newHostSet(plainHTTP))...)
}

func nameOptions(s string, plainHTTP hostSet) []name.Option {
	reg, _, _ := strings.Cut(s, "/")
	if plainHTTP.has(reg) {
		return []name.Option{name.Insecure}
	}
	return nil
}
