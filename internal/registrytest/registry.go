// Package registrytest runs a real registry for tests: Debian's
// docker-registry (distribution 2.8) on 127.0.0.1 with its storage in a
// temporary directory, optionally with htpasswd users and TLS from a CA made
// for the test, behind a proxy that records what reaches it and injects
// faults. It can kill the registry and restart it on the same port and
// storage. It is an ordinary package so that tests in any package, and the
// benchmarks, can share it.
package registrytest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Options configure Start.
type Options struct {
	// Users, if set, turns on htpasswd authentication for these users
	// (name → password).
	Users map[string]string
	// TLS serves HTTPS, registry and proxy alike, with a certificate from
	// a CA made for the test.
	TLS bool
	// Bin is the registry program (default: docker-registry on PATH).
	Bin string
}

// Registry is a running docker-registry and the proxy in front of it.
type Registry struct {
	// Host is the proxy's host:port, where tests push.
	Host string
	// Direct is docker-registry's own host:port, bypassing the proxy.
	Direct string
	Proxy  *Proxy
	// CA is the test CA when TLS is on.
	CA *CA
	// Storage is the registry's root directory.
	Storage string

	bin, config string
	scheme      string
	mu          sync.Mutex
	cmd         *exec.Cmd
	done        chan struct{}
	logs        *syncBuffer
}

// New starts a registry for t and stops it when t ends, logging the
// registry's output if t failed.
func New(t testing.TB, o Options) *Registry {
	t.Helper()
	r, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.Close()
		if t.Failed() {
			t.Logf("docker-registry log, last lines:\n%s", tail(r.Log(), 40))
		}
	})
	return r
}

// Start starts a registry; Close stops it and removes its files.
func Start(o Options) (*Registry, error) {
	bin := o.Bin
	if bin == "" {
		bin = "docker-registry"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("registrytest needs docker-registry (apt-get install docker-registry): %w", err)
	}
	dir, err := os.MkdirTemp("", "registrytest-")
	if err != nil {
		return nil, err
	}
	r := &Registry{bin: path, Storage: filepath.Join(dir, "storage"), config: filepath.Join(dir, "config.yml"), scheme: "http", logs: &syncBuffer{}}
	if err := r.configure(dir, o); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := r.start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	po := ProxyOptions{}
	if r.CA != nil {
		po.TLS = r.CA.ServerConfig()
		po.Transport = &http.Transport{TLSClientConfig: r.CA.ClientConfig(), MaxIdleConnsPerHost: 16}
	}
	if r.Proxy, err = NewProxy(r.scheme+"://"+r.Direct, po); err != nil {
		r.Kill()
		os.RemoveAll(dir)
		return nil, err
	}
	r.Host = r.Proxy.Host
	return r, nil
}

func (r *Registry) configure(dir string, o Options) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	r.Direct = l.Addr().String()
	l.Close()

	var cfg strings.Builder
	fmt.Fprintf(&cfg, `version: 0.1
log:
  level: info
  formatter: json
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  secret: registrytest
`, r.Storage, r.Direct)
	if o.TLS {
		if r.CA, err = NewCA(dir); err != nil {
			return err
		}
		r.scheme = "https"
		fmt.Fprintf(&cfg, "  tls:\n    certificate: %s\n    key: %s\n", r.CA.LeafFile, r.CA.KeyFile)
	}
	if len(o.Users) > 0 {
		var ht strings.Builder
		for user, pass := range o.Users {
			h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
			if err != nil {
				return err
			}
			fmt.Fprintf(&ht, "%s:%s\n", user, h)
		}
		htpasswd := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(ht.String()), 0o600); err != nil {
			return err
		}
		fmt.Fprintf(&cfg, "auth:\n  htpasswd:\n    realm: registrytest\n    path: %s\n", htpasswd)
	}
	return os.WriteFile(r.config, []byte(cfg.String()), 0o600)
}

// start runs docker-registry and waits until it answers.
func (r *Registry) start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cmd := exec.Command(r.bin, "serve", r.config)
	cmd.Stdout, cmd.Stderr = r.logs, r.logs
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting docker-registry: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	r.cmd, r.done = cmd, done

	client := &http.Client{Timeout: 2 * time.Second}
	if r.CA != nil {
		client.Transport = &http.Transport{TLSClientConfig: r.CA.ClientConfig()}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := client.Get(r.scheme + "://" + r.Direct + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
			err = fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		select {
		case <-done:
			return fmt.Errorf("docker-registry exited at start:\n%s", r.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("docker-registry did not answer on %s: %v\n%s", r.Direct, err, r.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill kills the registry at once (SIGKILL: no chance to finish what it
// was doing), leaving its storage as it was.
func (r *Registry) Kill() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return errors.New("registry is not running")
	}
	r.cmd.Process.Kill()
	<-r.done
	r.cmd = nil
	return nil
}

// Restart starts the registry again on the same port and storage.
func (r *Registry) Restart() error {
	r.mu.Lock()
	running := r.cmd != nil
	r.mu.Unlock()
	if running {
		if err := r.Kill(); err != nil {
			return err
		}
	}
	return r.start()
}

// Close stops the proxy and the registry and removes the registry's files.
func (r *Registry) Close() {
	if r.Proxy != nil {
		r.Proxy.Close()
	}
	r.Kill()
	os.RemoveAll(filepath.Dir(r.config))
}

// Log returns what the registry printed.
func (r *Registry) Log() string { return r.logs.String() }

// Served is one request as the registry itself logged it.
type Served struct {
	Method string `json:"http.request.method"`
	URI    string `json:"http.request.uri"`
	Status int    `json:"http.response.status"`
}

// Served returns the requests the registry logged as completed, in order:
// what reached it, whatever the proxy saw.
func (r *Registry) Served() []Served {
	var out []Served
	sc := bufio.NewScanner(strings.NewReader(r.logs.String()))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var e struct {
			Served
			Msg string `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Msg == "response completed" {
			out = append(out, e.Served)
		}
	}
	return out
}

// Transport trusts the registry's CA, for clients in tests.
func (r *Registry) Transport() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if r.CA != nil {
		t.TLSClientConfig = r.CA.ClientConfig()
	}
	return t
}

// Ping answers whether the registry is up, through the proxy.
func (r *Registry) Ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.Proxy.URL+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: r.Transport()}).Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[%d lines before]", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// syncBuffer is a bytes.Buffer safe for the registry's two streams.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
