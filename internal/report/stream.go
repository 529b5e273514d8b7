package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Message is one entry of the canonical stream; exactly one field is set.
// A stream is a Scan, the Scanners, the Findings (merged, most urgent
// first) and, once policy has run, a Verdict.
type Message struct {
	Scan    *Scan    `json:"scan,omitempty"`
	Scanner *Scanner `json:"scanner,omitempty"`
	Finding *Finding `json:"finding,omitempty"`
	Verdict *Verdict `json:"verdict,omitempty"`
}

// Handler receives a stream. Formats are handlers; Flush ends the stream.
type Handler interface {
	Scan(*Scan) error
	Scanner(*Scanner) error
	Finding(*Finding) error
	Verdict(*Verdict) error
	Flush() error
}

// Send streams the report to h and flushes it.
func Send(r *Report, h Handler) error {
	if err := h.Scan(&r.Scan); err != nil {
		return err
	}
	for _, s := range r.Scanners {
		if err := h.Scanner(s); err != nil {
			return err
		}
	}
	for _, f := range r.Findings {
		if err := h.Finding(f); err != nil {
			return err
		}
	}
	if r.Verdict != nil {
		if err := h.Verdict(r.Verdict); err != nil {
			return err
		}
	}
	return h.Flush()
}

// Read decodes a stream that the JSON format wrote.
func Read(r io.Reader) (*Report, error) {
	var rep Report
	c := &Collector{report: &rep}
	if err := Replay(r, c); err != nil {
		return nil, err
	}
	return &rep, nil
}

// Replay feeds a stream that the JSON format wrote to h, then flushes h.
// Unknown fields are refused: a stream from a newer slipway should fail
// loudly rather than lose what it says.
func Replay(r io.Reader, h Handler) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	sawScan := false
	for n := 1; ; n++ {
		var m Message
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading findings stream, message %d: %w", n, err)
		}
		// One entry per message: the switch below would drop a second.
		entries := 0
		for _, set := range []bool{m.Scan != nil, m.Scanner != nil, m.Finding != nil, m.Verdict != nil} {
			if set {
				entries++
			}
		}
		if entries > 1 {
			return fmt.Errorf("reading findings stream, message %d: %d entries; want one of scan, scanner, finding or verdict", n, entries)
		}
		switch {
		case m.Scan != nil:
			sawScan = true
			err = h.Scan(m.Scan)
		case m.Scanner != nil:
			err = h.Scanner(m.Scanner)
		case m.Finding != nil:
			err = h.Finding(m.Finding)
		case m.Verdict != nil:
			err = h.Verdict(m.Verdict)
		default:
			err = fmt.Errorf("reading findings stream, message %d: empty message", n)
		}
		if err != nil {
			return err
		}
	}
	if !sawScan {
		return errors.New("reading findings stream: no scan message; is it slipway scan's JSON?")
	}
	return h.Flush()
}

// Collector gathers a stream into a Report; formats that need the whole
// report before writing anything embed it.
type Collector struct {
	report *Report
	flush  func(*Report) error
}

// Collect returns a handler that gathers the stream and calls flush with
// the whole report at the end.
func Collect(flush func(*Report) error) *Collector {
	return &Collector{report: &Report{}, flush: flush}
}

func (c *Collector) Scan(s *Scan) error { c.report.Scan = *s; return nil }
func (c *Collector) Scanner(s *Scanner) error {
	c.report.Scanners = append(c.report.Scanners, s)
	return nil
}
func (c *Collector) Finding(f *Finding) error {
	c.report.Findings = append(c.report.Findings, f)
	return nil
}
func (c *Collector) Verdict(v *Verdict) error { c.report.Verdict = v; return nil }
func (c *Collector) Flush() error {
	if c.flush == nil {
		return nil
	}
	return c.flush(c.report)
}

// jsonHandler writes the canonical stream, one message per line.
type jsonHandler struct {
	enc *json.Encoder
}

var _ Handler = (*jsonHandler)(nil)

// NewJSONHandler returns the JSON format: the canonical stream itself.
func NewJSONHandler(w io.Writer) Handler {
	enc := json.NewEncoder(w)
	// Titles carry <, > and & often; escaping them helps no one reading
	// the file and the decoder does not need it.
	enc.SetEscapeHTML(false)
	return &jsonHandler{enc: enc}
}

func (h *jsonHandler) Scan(s *Scan) error       { return h.enc.Encode(Message{Scan: s}) }
func (h *jsonHandler) Scanner(s *Scanner) error { return h.enc.Encode(Message{Scanner: s}) }
func (h *jsonHandler) Finding(f *Finding) error { return h.enc.Encode(Message{Finding: f}) }
func (h *jsonHandler) Verdict(v *Verdict) error { return h.enc.Encode(Message{Verdict: v}) }
func (h *jsonHandler) Flush() error             { return nil }

// Filter passes on the findings keep accepts and everything else whole.
func Filter(h Handler, keep func(*Finding) bool) Handler { return &filter{Handler: h, keep: keep} }

type filter struct {
	Handler
	keep func(*Finding) bool
}

func (f *filter) Finding(x *Finding) error {
	if !f.keep(x) {
		return nil
	}
	return f.Handler.Finding(x)
}

// Tee sends the stream to every handler.
func Tee(hs ...Handler) Handler { return tee(hs) }

type tee []Handler

func (t tee) each(fn func(Handler) error) error {
	var errs []error
	for _, h := range t {
		errs = append(errs, fn(h))
	}
	return errors.Join(errs...)
}

func (t tee) Scan(s *Scan) error       { return t.each(func(h Handler) error { return h.Scan(s) }) }
func (t tee) Scanner(s *Scanner) error { return t.each(func(h Handler) error { return h.Scanner(s) }) }
func (t tee) Finding(f *Finding) error { return t.each(func(h Handler) error { return h.Finding(f) }) }
func (t tee) Verdict(v *Verdict) error { return t.each(func(h Handler) error { return h.Verdict(v) }) }
func (t tee) Flush() error             { return t.each(Handler.Flush) }
