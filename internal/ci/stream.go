package ci

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
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
// for one. Only the platform itself writes commands, through command.
type stream struct {
	mu      sync.Mutex
	w       io.Writer
	secrets *secrets
	defuse  bool

	// Where the next byte falls, carried from one Write to the next so that
	// a command split across writes is caught too.
	blank  bool   // only white space since the last line break
	colon  bool   // the line so far is white space and one ':'
	rune   []byte // an unfinished multi-byte character while blank
	hashes int    // how many '#' were just written, up to 2
}

func newStream(w io.Writer, s *secrets, defuse bool) *stream {
	return &stream{w: w, secrets: s, defuse: defuse, blank: true}
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

// command writes a workflow command raw, on a line of its own: after a
// partial line the runner would not see it, and the stream would take the
// start of the next line for the middle of one.
func (s *stream) command(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.blank || len(s.rune) > 0 {
		line = "\n" + line
	}
	// Write errors on the log stream are not worth failing a step for.
	io.WriteString(s.w, line+"\n")
	s.blank, s.colon, s.rune, s.hashes = true, false, s.rune[:0], 0
}

// breaker, put inside a command marker, keeps the text readable and no
// longer a command. It is a visible space: the runner compares with .NET's
// culture-aware matching, which on Linux (ICU) skips zero-width characters,
// so an invisible one might not break anything.
const breaker = " "

// defuseCommands breaks up what GitHub's runner reads as a workflow command.
// The runner ends a line at \n or \r, takes "::" after leading white space
// (any Unicode space) as a command, and "##[", the old syntax, anywhere in
// a line.
func (s *stream) defuseCommands(p []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(p))
	for _, c := range p {
		if (c == ':' && s.colon) || (c == '[' && s.hashes == 2) {
			b.WriteString(breaker)
		}
		b.WriteByte(c)
		s.step(c)
	}
	return b.Bytes()
}

// step moves the line state past byte c.
func (s *stream) step(c byte) {
	if c == '#' {
		s.hashes = min(s.hashes+1, 2)
	} else {
		s.hashes = 0
	}
	s.colon = false
	switch {
	case c == '\n' || c == '\r':
		s.blank, s.rune = true, s.rune[:0]
	case !s.blank:
	case c < utf8.RuneSelf && len(s.rune) == 0:
		switch c {
		case ' ', '\t', '\v', '\f':
		case ':':
			s.blank, s.colon = false, true
		default:
			s.blank = false
		}
	default:
		s.rune = append(s.rune, c)
		if utf8.FullRune(s.rune) {
			r, _ := utf8.DecodeRune(s.rune)
			s.blank, s.rune = unicode.IsSpace(r), s.rune[:0]
		}
	}
}
