package sigstoretest

import (
	"bytes"
	"errors"
	"fmt"
	"go/build"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is one of the stack's programs, with its output kept for when a
// test fails.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	logs *syncBuffer
}

// findBin looks for a program on PATH, then in GOPATH/bin, where
// scripts/install-test-deps.sh puts the Sigstore services.
func findBin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range filepath.SplitList(build.Default.GOPATH) {
		p := filepath.Join(dir, "bin", name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("sigstoretest needs %s; run make test-deps (scripts/install-test-deps.sh installs it)", name)
}

// Need finds the programs a test needs (cosign, fulcio, timestamp-server,
// rekor-server-posix, docker-registry) or ends the test: it skips without
// them, unless SLIPWAY_E2E=1 (make test) says they must be there.
func Need(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := findBin(n); err != nil {
			if os.Getenv("SLIPWAY_E2E") == "1" {
				t.Fatalf("SLIPWAY_E2E=1 but %v", err)
			}
			t.Skipf("%v", err)
		}
	}
}

// start runs bin with args. The child is killed if the test process dies,
// so an aborted test leaves no Fulcio or TSA behind.
func start(name, bin string, args ...string) (*proc, error) {
	p := &proc{name: name, done: make(chan struct{}), logs: &syncBuffer{}}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	return p, nil
}

// waitHTTP polls url until it answers 200, the program exits, or the
// deadline passes.
func (p *proc) waitHTTP(url string, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	var last error
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		last = err
		select {
		case <-p.done:
			return fmt.Errorf("%s exited at start:\n%s", p.name, tail(p.logs.String(), 30))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer in %s: %v\n%s", p.name, timeout, last, tail(p.logs.String(), 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *proc) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// freePort returns a port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lockTSA takes a machine-wide lock for the timestamp authority, waiting
// up to timeout: timestamp-server always serves its metrics on :2112 and
// exits when that port is taken, so only one can run at a time, whichever
// test process starts it.
func lockTSA(timeout time.Duration) (unlock func(), err error) {
	// A second stack in the same process would wait for itself.
	held.Lock()
	defer held.Unlock()
	if held.n > 0 {
		return nil, errors.New("this test process already runs a local Sigstore, and timestamp-server allows one per machine; share it with sigstoretest.Shared or sigstoretest.Lease")
	}
	release, err := flockTSA(timeout)
	if err != nil {
		return nil, err
	}
	held.n++
	return func() {
		held.Lock()
		defer held.Unlock()
		held.n--
		release()
	}, nil
}

var held struct {
	sync.Mutex
	n int
}

func flockTSA(timeout time.Duration) (unlock func(), err error) {
	path := filepath.Join(os.TempDir(), "slipway-sigstoretest-tsa.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("another test process has run the timestamp authority for over %s (lock %s)", timeout, path)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
