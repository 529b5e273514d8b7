package ci

import (
	"bytes"
	"io"
	"strings"
	"sync"
)

// secrets is the set of values no stream may print.
type secrets struct {
	mu     sync.RWMutex
	values []string
}

func (s *secrets) add(v string) {
	v = strings.TrimSpace(v)
	if v == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, old := range s.values {
		if old == v {
			return
		}
	}
	s.values = append(s.values, v)
	// Longest first, so a secret that contains another is masked whole.
	for i := len(s.values) - 1; i > 0 && len(s.values[i]) > len(s.values[i-1]); i-- {
		s.values[i], s.values[i-1] = s.values[i-1], s.values[i]
	}
}

func (s *secrets) mask(p []byte) []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, v := range s.values {
		p = bytes.ReplaceAll(p, []byte(v), []byte("***"))
	}
	return p
}

// stream is a step's output stream: it masks secrets and, where the platform
// reads workflow commands from the log, defuses lines that would be taken
// for one. Only the platform itself writes commands, to the raw writer.
type stream struct {
	mu          sync.Mutex
	w           io.Writer
	secrets     *secrets
	defuse      bool
	atLineStart bool
}

func newStream(w io.Writer, s *secrets, defuse bool) *stream {
	return &stream{w: w, secrets: s, defuse: defuse, atLineStart: true}
}

func (s *stream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.secrets.mask(p)
	if s.defuse {
		out = s.defuseCommands(out)
	}
	if _, err := s.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// commandPrefixes are how GitHub's runner recognises a workflow command at
// the start of a line (the current syntax and the old one).
var commandPrefixes = [][]byte{[]byte("::"), []byte("##[")}

func (s *stream) defuseCommands(p []byte) []byte {
	var b bytes.Buffer
	for len(p) > 0 {
		n := len(p)
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			n = i + 1
		}
		line := p[:n]
		p = p[n:]
		if s.atLineStart {
			indent := len(line) - len(bytes.TrimLeft(line, " \t"))
			for _, prefix := range commandPrefixes {
				if bytes.HasPrefix(line[indent:], prefix) {
					// A zero-width space after the first byte keeps the
					// text readable and no longer a command.
					b.Write(line[:indent+1])
					b.WriteString("\u200b")
					line = line[indent+1:]
					break
				}
			}
		}
		b.Write(line)
		s.atLineStart = line[len(line)-1] == '\n'
	}
	return b.Bytes()
}
