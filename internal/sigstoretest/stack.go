// Package sigstoretest runs a local Sigstore for tests, all on 127.0.0.1:
// an OIDC issuer shaped like GitHub Actions' (the one part that is a test
// server), a real Fulcio (fulcio serve, ephemeral CA, no CT log) that
// trusts it as a GitHub workflow issuer and so writes GitHub's certificate
// extensions, a real timestamp authority (timestamp-server, in-memory
// signer), optionally a real Rekor v2 (rekor-tiles with POSIX storage),
// and the trusted_root.json that names them, which sigstore-go and
// `cosign verify --trusted-root` both read.
//
// The programs are those scripts/install-test-deps.sh installs; a test
// that needs a missing one skips with that advice, or fails under
// SLIPWAY_E2E=1 (make test), which promises them. timestamp-server serves metrics on
// the fixed port 2112, so only one stack runs on the machine at a time:
// Start waits for another test process's to end. Start one per package
// (in TestMain) rather than one per test.
package sigstoretest

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	rekornote "github.com/sigstore/rekor-tiles/v2/pkg/note"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// Options configure Start.
type Options struct {
	// Rekor also starts a transparency log, Rekor v2 (rekor-tiles) with
	// its tiles in a temporary directory, and names it in the trusted root.
	Rekor bool
	// LockTimeout bounds the wait for another process's stack (default 15m).
	LockTimeout time.Duration
}

// Stack is a running local Sigstore.
type Stack struct {
	Issuer *Issuer
	// FulcioURL is Fulcio's base URL.
	FulcioURL string
	// TSAURL is the timestamp endpoint, path included.
	TSAURL string
	// RekorURL is Rekor v2's base URL; empty without Options.Rekor.
	RekorURL string
	// TrustedRoot is the trusted_root.json of Fulcio's CA, the TSA's
	// chain and, with Rekor, the log's key; TrustedRootFile holds it.
	TrustedRoot     []byte
	TrustedRootFile string
	// FulcioRoots are Fulcio's CA certificates, root last.
	FulcioRoots []*x509.Certificate

	dir    string
	procs  []*proc
	unlock func()
}

// New starts a stack for t and stops it when t ends, printing the
// services' logs if t failed. It skips in -short mode.
func New(t testing.TB, o Options) *Stack {
	t.Helper()
	if testing.Short() {
		t.Skip("the local Sigstore is not started in -short mode")
	}
	Need(t, "fulcio", "timestamp-server")
	if o.Rekor {
		Need(t, "rekor-server-posix")
	}
	s, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("local Sigstore logs:\n%s", s.Logs())
		}
		s.Close()
	})
	return s
}

// Start starts the stack; Close stops it and removes its files.
func Start(o Options) (s *Stack, err error) {
	bins := map[string]string{}
	names := []string{"fulcio", "timestamp-server"}
	if o.Rekor {
		names = append(names, "rekor-server-posix")
	}
	for _, n := range names {
		if bins[n], err = findBin(n); err != nil {
			return nil, err
		}
	}
	if o.LockTimeout <= 0 {
		o.LockTimeout = 15 * time.Minute
	}
	dir, err := os.MkdirTemp("", "sigstoretest-")
	if err != nil {
		return nil, err
	}
	started := &Stack{dir: dir}
	s = started
	defer func() {
		// A failing return has already set s to nil: stop what started.
		if err != nil {
			started.Close()
		}
	}()
	if s.Issuer, err = NewIssuer(); err != nil {
		return nil, err
	}
	if err = s.startFulcio(bins["fulcio"]); err != nil {
		return nil, err
	}
	if s.unlock, err = lockTSA(o.LockTimeout); err != nil {
		return nil, err
	}
	tsaChain, err := s.startTSA(bins["timestamp-server"])
	if err != nil {
		return nil, err
	}
	var rekor *root.TransparencyLog
	if o.Rekor {
		if rekor, err = s.startRekor(bins["rekor-server-posix"]); err != nil {
			return nil, err
		}
	}
	if err = s.writeTrustedRoot(tsaChain, rekor); err != nil {
		return nil, err
	}
	return s, nil
}

// Close stops the services and removes their files.
func (s *Stack) Close() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		s.procs[i].stop()
	}
	s.procs = nil
	if s.unlock != nil {
		s.unlock()
		s.unlock = nil
	}
	if s.Issuer != nil {
		s.Issuer.Close()
	}
	os.RemoveAll(s.dir)
}

// Logs returns the services' output, the last lines of each.
func (s *Stack) Logs() string {
	var out string
	for _, p := range s.procs {
		out += fmt.Sprintf("--- %s\n%s\n", p.name, tail(p.logs.String(), 40))
	}
	return out
}

// GitHubToken is a token for the job g with the audience Fulcio expects.
func (s *Stack) GitHubToken(g GitHub) (string, error) { return s.Issuer.GitHubToken(g, "sigstore") }

// startFulcio runs Fulcio with an ephemeral CA, no CT log, and the test
// issuer configured as GitHub's is on the public instance: a CI provider
// of type github-workflow with GitHub's extension templates. HTTP and
// gRPC get ports of their own (sharing one makes v1.8.5 run its "duplex"
// server, which panics registering its metrics twice), and the legacy
// gRPC socket a path in the stack's directory rather than the fixed
// abstract socket, so that stacks of different test processes coexist.
// The metrics listener takes only a port (it binds every interface); it
// gets a free one and nothing talks to it.
func (s *Stack) startFulcio(bin string) error {
	cfg := map[string]any{
		"OIDCIssuers": map[string]any{
			s.Issuer.URL: map[string]any{
				"IssuerURL":  s.Issuer.URL,
				"ClientID":   "sigstore",
				"Type":       "ci-provider",
				"CIProvider": "github-workflow",
			},
		},
		"CIIssuerMetadata": map[string]any{
			"github-workflow": map[string]any{
				"DefaultTemplateValues": map[string]string{"url": "https://github.com", "environment": ""},
				"ExtensionTemplates": map[string]string{
					"GithubWorkflowTrigger":               "event_name",
					"GithubWorkflowSHA":                   "sha",
					"GithubWorkflowName":                  "workflow",
					"GithubWorkflowRepository":            "repository",
					"GithubWorkflowRef":                   "ref",
					"BuildSignerURI":                      "{{ .url }}/{{ .job_workflow_ref }}",
					"BuildSignerDigest":                   "job_workflow_sha",
					"RunnerEnvironment":                   "runner_environment",
					"SourceRepositoryURI":                 "{{ .url }}/{{ .repository }}",
					"SourceRepositoryDigest":              "sha",
					"SourceRepositoryRef":                 "ref",
					"SourceRepositoryIdentifier":          "repository_id",
					"SourceRepositoryOwnerURI":            "{{ .url }}/{{ .repository_owner }}",
					"SourceRepositoryOwnerIdentifier":     "repository_owner_id",
					"BuildConfigURI":                      "{{ .url }}/{{ .workflow_ref }}",
					"BuildConfigDigest":                   "workflow_sha",
					"BuildTrigger":                        "event_name",
					"RunInvocationURI":                    "{{ .url }}/{{ .repository }}/actions/runs/{{ .run_id }}/attempts/{{ .run_attempt }}",
					"SourceRepositoryVisibilityAtSigning": "repository_visibility",
					"DeploymentEnvironment":               "environment",
				},
				"SubjectAlternativeNameTemplate": "{{ .url }}/{{ .job_workflow_ref }}",
			},
		},
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(s.dir, "fulcio.json")
	if err := os.WriteFile(cfgPath, data, 0o600); err != nil {
		return err
	}
	var ports [3]int
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return err
		}
	}
	port := ports[0]
	p, err := start("fulcio", bin, "serve",
		"--ca", "ephemeralca",
		"--ct-log-url", "",
		"--config-path", cfgPath,
		"--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--grpc-host", "127.0.0.1", "--grpc-port", strconv.Itoa(ports[1]),
		"--metrics-port", strconv.Itoa(ports[2]),
		"--legacy-unix-domain-socket", filepath.Join(s.dir, "fulcio-legacy.sock"),
		"--log_type", "prod",
	)
	if err != nil {
		return err
	}
	s.procs = append(s.procs, p)
	s.FulcioURL = "http://127.0.0.1:" + strconv.Itoa(port)
	if err := p.waitHTTP(s.FulcioURL+"/api/v2/trustBundle", 60*time.Second); err != nil {
		return err
	}
	var bundle struct {
		Chains []struct {
			Certificates []string `json:"certificates"`
		} `json:"chains"`
	}
	if err := getJSON(s.FulcioURL+"/api/v2/trustBundle", &bundle); err != nil {
		return err
	}
	if len(bundle.Chains) == 0 || len(bundle.Chains[0].Certificates) == 0 {
		return fmt.Errorf("fulcio's trust bundle is empty")
	}
	for _, c := range bundle.Chains[0].Certificates {
		certs, err := cryptoutils.UnmarshalCertificatesFromPEM([]byte(c))
		if err != nil {
			return fmt.Errorf("reading fulcio's trust bundle: %w", err)
		}
		s.FulcioRoots = append(s.FulcioRoots, certs...)
	}
	return nil
}

// startTSA runs the timestamp authority with its in-memory signer and
// returns its chain, leaf first.
func (s *Stack) startTSA(bin string) ([]*x509.Certificate, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p, err := start("timestamp-server", bin, "serve",
		"--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--timestamp-signer", "memory",
		"--disable-ntp-monitoring",
		"--log-type", "prod",
	)
	if err != nil {
		return nil, err
	}
	s.procs = append(s.procs, p)
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	s.TSAURL = base + "/api/v1/timestamp"
	if err := p.waitHTTP(base+"/ping", 60*time.Second); err != nil {
		return nil, err
	}
	pemChain, err := get(base + "/api/v1/timestamp/certchain")
	if err != nil {
		return nil, err
	}
	chain, err := cryptoutils.UnmarshalCertificatesFromPEM(pemChain)
	if err != nil || len(chain) == 0 {
		return nil, fmt.Errorf("reading the TSA's certificate chain: %v", err)
	}
	return chain, nil
}

// startRekor runs Rekor v2 with POSIX storage. Its checkpoint origin is
// the host of its URL, as sigstore-go expects of a v2 log.
func (s *Stack) startRekor(bin string) (*root.TransparencyLog, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	keyPath := filepath.Join(s.dir, "rekor-key.pem")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	var ports [3]int
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return nil, err
		}
	}
	const origin = "127.0.0.1"
	p, err := start("rekor", bin, "serve",
		"--http-address", origin, "--http-port", strconv.Itoa(ports[0]),
		"--grpc-address", origin, "--grpc-port", strconv.Itoa(ports[1]),
		"--http-metrics-port", strconv.Itoa(ports[2]),
		"--hostname", origin,
		"--storage-dir", filepath.Join(s.dir, "rekor"),
		"--signer-filepath", keyPath,
		"--checkpoint-interval", "1s",
		"--batch-max-age", "50ms",
	)
	if err != nil {
		return nil, err
	}
	s.procs = append(s.procs, p)
	s.RekorURL = "http://" + origin + ":" + strconv.Itoa(ports[0])
	if err := p.waitHTTP(s.RekorURL+"/healthz", 60*time.Second); err != nil {
		return nil, err
	}
	_, logID, err := rekornote.KeyHash(origin, pub)
	if err != nil {
		return nil, err
	}
	return &root.TransparencyLog{
		BaseURL:             s.RekorURL,
		ID:                  logID,
		ValidityPeriodStart: time.Now().Add(-time.Hour),
		HashFunc:            crypto.SHA256,
		PublicKey:           pub,
		SignatureHashFunc:   crypto.SHA256,
	}, nil
}

func (s *Stack) writeTrustedRoot(tsaChain []*x509.Certificate, rekor *root.TransparencyLog) error {
	start := time.Now().Add(-time.Hour)
	n := len(s.FulcioRoots)
	ca := &root.FulcioCertificateAuthority{
		Root:                s.FulcioRoots[n-1],
		Intermediates:       s.FulcioRoots[:n-1],
		ValidityPeriodStart: start,
		URI:                 s.FulcioURL,
	}
	m := len(tsaChain)
	tsa := &root.SigstoreTimestampingAuthority{
		Root:                tsaChain[m-1],
		Leaf:                tsaChain[0],
		ValidityPeriodStart: start,
		URI:                 s.TSAURL,
	}
	if m > 2 {
		tsa.Intermediates = tsaChain[1 : m-1]
	}
	logs := map[string]*root.TransparencyLog{}
	if rekor != nil {
		logs[fmt.Sprintf("%x", rekor.ID)] = rekor
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01,
		[]root.CertificateAuthority{ca}, map[string]*root.TransparencyLog{},
		[]root.TimestampingAuthority{tsa}, logs)
	if err != nil {
		return fmt.Errorf("making the trusted root: %w", err)
	}
	data, err := tr.MarshalJSON()
	if err != nil {
		return fmt.Errorf("writing the trusted root: %w", err)
	}
	// Read it back as any verifier will, so a root that does not parse
	// fails here rather than in every test.
	if _, err := root.NewTrustedRootFromJSON(data); err != nil {
		return fmt.Errorf("reading back the trusted root: %w", err)
	}
	s.TrustedRoot = data
	s.TrustedRootFile = filepath.Join(s.dir, "trusted_root.json")
	return os.WriteFile(s.TrustedRootFile, data, 0o644)
}

func get(url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, data)
	}
	return data, nil
}

func getJSON(url string, v any) error {
	data, err := get(url)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("reading %s: %w", url, err)
	}
	return nil
}

var shared struct {
	sync.Mutex
	s   *Stack
	err error
}

// Shared returns the test process's stack, started with Rekor on first
// use, so that a package's tests share one (see Main). It skips in
// -short mode.
func Shared(t testing.TB) *Stack {
	t.Helper()
	needStack(t)
	shared.Lock()
	defer shared.Unlock()
	if shared.s == nil && shared.err == nil {
		shared.s, shared.err = Start(Options{Rekor: true})
	}
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	logsOnFailure(t, shared.s)
	return shared.s
}

// needStack skips t in -short mode, and without the programs as Need does.
func needStack(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("the local Sigstore is not started in -short mode")
	}
	Need(t, "fulcio", "timestamp-server", "rekor-server-posix")
}

// logsOnFailure shows the stack's logs when t fails, where they explain it.
func logsOnFailure(t testing.TB, s *Stack) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("local Sigstore logs:\n%s", s.Logs())
		}
	})
}

// Main runs a package's tests and then stops the shared stack, if they
// started it: func TestMain(m *testing.M) { os.Exit(sigstoretest.Main(m)) }.
func Main(m *testing.M) int {
	code := m.Run()
	shared.Lock()
	defer shared.Unlock()
	if shared.s != nil {
		shared.s.Close()
		shared.s = nil
	}
	return code
}

var leased struct {
	sync.Mutex
	s     *Stack
	users int
}

// Lease returns a stack started with Rekor, shared by the tests that hold
// it at the same time, and stops it when the last of them ends. A package
// whose tests run in parallel for a long time (the end-to-end tests) uses
// it rather than Shared: the machine's one stack (see Start) is then free
// for other test processes while the package runs tests that do not sign.
// It skips in -short mode.
func Lease(t testing.TB) *Stack {
	t.Helper()
	needStack(t)
	leased.Lock()
	defer leased.Unlock()
	if leased.s == nil {
		s, err := Start(Options{Rekor: true})
		if err != nil {
			t.Fatal(err)
		}
		leased.s = s
	}
	s := leased.s
	leased.users++
	t.Cleanup(func() {
		leased.Lock()
		defer leased.Unlock()
		if leased.users--; leased.users == 0 {
			s.Close()
			leased.s = nil
		}
	})
	logsOnFailure(t, s) // runs before the cleanup above
	return s
}
