package push

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/slipwayci/slipway/internal/cli"
)

// printer shows a push as it goes. In a terminal it keeps one line of byte
// progress up to date; in a plain log it prints a line per blob; in CI only
// retries and one line per destination at the end, since CI logs are read
// after the fact.
type printer struct {
	w    io.Writer
	mode string // "tty", "log" or "ci"
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
	return &printer{w: w, mode: mode, now: time.Now, dests: map[string]*destProgress{}}
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
	if p.mode == "tty" && p.now().Sub(p.drawAt) >= 100*time.Millisecond {
		p.draw()
	}
}

func (p *printer) Blob(repo name.Repository, d v1.Descriptor, how string) {
	if p.mode != "log" {
		return
	}
	p.line("%s: %s %s (%s)", repo, how, shortDigest(d.Digest.String()), cli.HumanSize(d.Size))
}

func (p *printer) Retry(repo name.Repository, op string, err error, wait time.Duration) {
	p.line("%s: %s failed, retrying in %s: %v", repo, op, wait.Round(time.Millisecond), oneLine(err))
}

func (p *printer) Done(r Result) {
	p.mu.Lock()
	if d := p.dests[r.Repo.String()]; d != nil {
		d.done = true
	}
	p.mu.Unlock()
	p.line("%s", resultLine(r))
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
	if p.mode == "tty" {
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
	fmt.Fprintf(p.w, "\r\x1b[Kpushing %s", strings.Join(parts, " · "))
	p.drawn = true
}

// resultLine is one destination's outcome on one line.
func resultLine(r Result) string {
	if r.Err != nil {
		// The error itself ends the step's output; here, only where.
		return fmt.Sprintf("%s: failed after %s", r.Repo, r.Duration.Round(10*time.Millisecond))
	}
	s := r.Stats
	var b strings.Builder
	fmt.Fprintf(&b, "%s@%s: ", r.Repo, r.Digest)
	if s.ImageExisted {
		b.WriteString("image already there")
	} else {
		fmt.Fprintf(&b, "%d blobs uploaded (%s), %d existing, %d mounted (%s)", s.Uploaded, cli.HumanSize(s.UploadedBytes), s.Existing, s.Mounted, cli.HumanSize(s.MountedBytes))
	}
	if r.Referrers != "" {
		fmt.Fprintf(&b, "; referrers by %s, %d new", map[string]string{"api": "API", "tag": "fallback tag"}[r.Referrers], s.Artifacts)
	}
	if len(r.Tags) > 0 {
		fmt.Fprintf(&b, "; tags %s", strings.Join(r.Tags, ", "))
	}
	fmt.Fprintf(&b, "; %d requests", s.Requests)
	if s.Retries > 0 {
		fmt.Fprintf(&b, ", %d retried", s.Retries)
	}
	fmt.Fprintf(&b, " in %s", r.Duration.Round(10*time.Millisecond))
	return b.String()
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

func shortDigest(d string) string {
	if i := strings.IndexByte(d, ':'); i >= 0 && len(d) > i+13 {
		return d[:i+13]
	}
	return d
}

// NewProgress returns the Progress slipway push prints with: mode "tty"
// keeps a line of byte progress, "log" prints a line per blob, "ci" only
// retries and a line per destination.
func NewProgress(w io.Writer, mode string) Progress { return newPrinter(w, mode) }
