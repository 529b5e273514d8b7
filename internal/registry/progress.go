package registry

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slipwayci/slipway/internal/cli"
	"github.com/slipwayci/slipway/internal/text"
)

// Progress hears what a transfer to a registry does. Its methods are
// called from many goroutines at once.
type Progress interface {
	// Start announces a destination and the bytes it may have to upload.
	Start(repo name.Repository, total int64)
	// Bytes reports n bytes sent; negative when a failed attempt is taken
	// back.
	Bytes(repo name.Repository, n int64)
	// Blob reports a blob present: uploaded, existing or mounted.
	Blob(repo name.Repository, d v1.Descriptor, how BlobOutcome)
	Retry(repo name.Repository, op string, err error, wait time.Duration)
	// Done reports a destination finished, with one line saying how.
	Done(repo name.Repository, line string)
}

// Progress modes, for NewProgress.
const (
	// ProgressTTY keeps a line of byte progress up to date, for a
	// terminal.
	ProgressTTY = "tty"
	// ProgressPlain prints a line per blob, for a log read as it goes.
	ProgressPlain = "plain"
	// ProgressQuiet prints only retries and a line per destination, for
	// CI logs, read after the fact.
	ProgressQuiet = "quiet"
)

// ProgressModes are the modes NewProgress knows.
func ProgressModes() []string { return []string{ProgressTTY, ProgressPlain, ProgressQuiet} }

// printer shows transfers as they go, as its mode says.
type printer struct {
	w    io.Writer
	mode string
	verb string // "pushing", "copying"
	now  func() time.Time

	mu     sync.Mutex
	dests  map[string]*destProgress
	order  []string
	drawn  bool
	drawAt time.Time
}

type destProgress struct {
	total, sent int64
	done        bool
}

var _ Progress = (*printer)(nil)

func newPrinter(w io.Writer, mode string) *printer {
	return &printer{w: w, mode: mode, verb: "pushing", now: time.Now, dests: map[string]*destProgress{}}
}

func (p *printer) Start(repo name.Repository, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := repo.String()
	if _, ok := p.dests[k]; !ok {
		p.order = append(p.order, k)
	}
	p.dests[k] = &destProgress{total: total}
}

func (p *printer) Bytes(repo name.Repository, n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if d := p.dests[repo.String()]; d != nil {
		d.sent += n
	}
	if p.mode == ProgressTTY && p.now().Sub(p.drawAt) >= 100*time.Millisecond {
		p.draw()
	}
}

func (p *printer) Blob(repo name.Repository, d v1.Descriptor, how BlobOutcome) {
	if p.mode != ProgressPlain {
		return
	}
	p.line("%s: %s %s (%s)", repo, how, text.ShortDigest(d.Digest.String()), cli.HumanSize(d.Size))
}

func (p *printer) Retry(repo name.Repository, op string, err error, wait time.Duration) {
	p.line("%s: %s failed, retrying in %s: %s", repo, op, wait.Round(time.Millisecond), text.OneLine(err.Error()))
}

func (p *printer) Done(repo name.Repository, line string) {
	p.mu.Lock()
	if d := p.dests[repo.String()]; d != nil {
		d.done = true
	}
	p.mu.Unlock()
	p.line("%s", line)
}

// line prints a whole line, clearing and then redrawing the progress line
// around it in a terminal.
func (p *printer) line(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
	fmt.Fprintf(p.w, format+"\n", args...)
	if p.mode == ProgressTTY {
		p.draw()
	}
}

// draw rewrites the progress line: bytes sent of those that may need
// sending, per destination still going.
func (p *printer) draw() {
	var parts []string
	for _, k := range p.order {
		d := p.dests[k]
		if d.done {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %s/%s", k, cli.HumanSize(max(d.sent, 0)), cli.HumanSize(d.total)))
	}
	p.drawAt = p.now()
	if len(parts) == 0 {
		if p.drawn {
			fmt.Fprint(p.w, "\r\x1b[K")
			p.drawn = false
		}
		return
	}
	fmt.Fprintf(p.w, "\r\x1b[K%s %s", p.verb, strings.Join(parts, " · "))
	p.drawn = true
}

// NewProgress returns the Progress slipway prints transfers with, in one
// of ProgressModes; verb names the transfer in a terminal ("pushing").
func NewProgress(w io.Writer, mode, verb string) Progress {
	p := newPrinter(w, mode)
	if verb != "" {
		p.verb = verb
	}
	return p
}
