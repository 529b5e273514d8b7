package registrytest

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
)

// SlowLorisOptions say how a SlowLoris stalls.
type SlowLorisOptions struct {
	// AnswerPing answers GET /v2/ with 200, so a client logs in, and
	// stalls every other request.
	AnswerPing bool
	// Trickle sends a stalled GET's status and headers, promising a body,
	// and one byte of it; then nothing.
	Trickle bool
}

// EachSlowLoris runs test as a subtest of t against a SlowLoris for each
// stall a registry client must give up on in bounded time: a server that
// never answers, one that answers the login only, and one that sends half
// an answer.
func EachSlowLoris(t *testing.T, test func(t *testing.T, s *SlowLoris)) {
	t.Helper()
	for _, mode := range []struct {
		name string
		o    SlowLorisOptions
	}{
		{"never answers", SlowLorisOptions{}},
		{"answers the login only", SlowLorisOptions{AnswerPing: true}},
		{"sends half an answer", SlowLorisOptions{AnswerPing: true, Trickle: true}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			s, err := NewSlowLoris(mode.o)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			test(t, s)
		})
	}
}

// SlowLoris is a registry that accepts connections and then never
// answers, or answers halfway: what a client must not wait on forever.
type SlowLoris struct {
	// Host is its host:port on 127.0.0.1.
	Host string

	mu      sync.Mutex
	stalled int

	ln    net.Listener
	o     SlowLorisOptions
	done  chan struct{}
	conns sync.WaitGroup
}

// NewSlowLoris starts a slow loris on 127.0.0.1; Close stops it.
func NewSlowLoris(o SlowLorisOptions) (*SlowLoris, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &SlowLoris{Host: ln.Addr().String(), ln: ln, o: o, done: make(chan struct{})}
	go s.serve()
	return s, nil
}

// Stalled is how many requests it has left hanging.
func (s *SlowLoris) Stalled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stalled
}

func (s *SlowLoris) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.conns.Add(1)
		go func() {
			defer s.conns.Done()
			defer c.Close()
			go func() { <-s.done; c.Close() }()
			s.handle(c)
		}()
	}
}

func (s *SlowLoris) handle(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if s.o.AnswerPing && req.Method == http.MethodGet && req.URL.Path == "/v2/" {
			fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nDocker-Distribution-API-Version: registry/2.0\r\n\r\n{}")
			continue
		}
		s.mu.Lock()
		s.stalled++
		s.mu.Unlock()
		if s.o.Trickle && req.Method != http.MethodHead {
			fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.index.v1+json\r\nContent-Length: 1000\r\n\r\n{")
		}
		<-s.done
		return
	}
}

// Close stops it, dropping every connection it holds.
func (s *SlowLoris) Close() {
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	s.ln.Close()
	s.conns.Wait()
}
