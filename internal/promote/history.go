package promote

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/slipwayci/slipway/internal/clock"
	"github.com/slipwayci/slipway/internal/registry"
	"github.com/slipwayci/slipway/internal/trust"
)

// An environment's history is an append-only chain of promotion records
// kept in its repository: each record names the one before it, and the
// head tag names the newest. The head is the one source of truth; the
// environment's tags are derived from it. Registries offer no
// compare-and-swap on tags, so appending is optimistic, checked, and
// repaired (see Append), and every promotion ends by making the tags agree
// with whatever head it finds (see Converge). docs/promote.md states what
// that guarantees.

// HeadTag is the tag naming the newest record of env's history.
func HeadTag(env string) string { return "slipway-history-" + env }

// Timing of appends; tests shorten them.
const (
	DefaultSettle = 2 * time.Second
	maxAttempts   = 12
	maxHistory    = 100000
)

// ErrLostRace is returned when other promotions of the environment kept
// winning the head for every attempt.
var ErrLostRace = errors.New("other promotions of the environment kept replacing the head of its history")

// History reads and appends to one environment's history.
type History struct {
	repo *registry.Repository
	env  string
	// Now stamps records; Settle is how long an append waits before it
	// checks, a last time, that its record is still in the history.
	Now    func() time.Time
	Settle time.Duration

	// Races counts the appends that found another promotion's record at
	// the head, or found theirs displaced, and started over.
	Races atomic.Int32

	mu        sync.Mutex
	entries   map[v1.Hash]*Entry
	records   map[v1.Hash]*Record
	manifests map[v1.Hash]manifestBytes
}

type manifestBytes struct {
	raw []byte
	mt  types.MediaType
}

// NewHistory reads and writes env's history in repo.
func NewHistory(repo *registry.Repository, env string) *History {
	return &History{
		repo: repo, env: env, Now: time.Now, Settle: DefaultSettle,
		entries: map[v1.Hash]*Entry{}, records: map[v1.Hash]*Record{}, manifests: map[v1.Hash]manifestBytes{},
	}
}

// Environment is the environment's name.
func (h *History) Environment() string { return h.env }

// headRef is what the head tag names; false if there is no history yet.
func (h *History) headRef(ctx context.Context) (v1.Hash, bool, error) {
	return h.repo.Resolve(ctx, HeadTag(h.env))
}

// Head returns the newest record, or nil if the history is empty.
func (h *History) Head(ctx context.Context) (*Entry, error) {
	ref, ok, err := h.headRef(ctx)
	if err != nil || !ok {
		return nil, err
	}
	return h.Entry(ctx, ref)
}

// Entry reads the record with manifest digest ref. Records never change,
// so each is read once.
func (h *History) Entry(ctx context.Context, ref v1.Hash) (*Entry, error) {
	h.mu.Lock()
	e, ok := h.entries[ref]
	h.mu.Unlock()
	if ok {
		return e, nil
	}
	raw, _, found, err := h.repo.Manifest(ctx, ref.String())
	if err != nil {
		return nil, fmt.Errorf("reading the history of %s: %w", h.env, err)
	}
	if !found {
		return nil, fmt.Errorf("reading the history of %s: record %s is missing from %s", h.env, ref, h.repo.Name())
	}
	if e, err = parseEntry(ref, raw); err != nil {
		return nil, fmt.Errorf("reading the history of %s: %w", h.env, err)
	}
	if e.Environment != h.env {
		return nil, fmt.Errorf("reading the history of %s: record %s belongs to %s", h.env, ref, e.Environment)
	}
	h.mu.Lock()
	h.entries[ref] = e
	h.mu.Unlock()
	return e, nil
}

// Record reads the statement of e.
func (h *History) Record(ctx context.Context, e *Entry) (*Record, error) {
	h.mu.Lock()
	r, ok := h.records[e.Ref]
	h.mu.Unlock()
	if ok {
		return r, nil
	}
	data, err := h.repo.Blob(ctx, e.statement.Digest, 1<<20)
	if err != nil {
		return nil, fmt.Errorf("reading record %s: %w", e.Ref, err)
	}
	if r, err = parseRecord(e, data); err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.records[e.Ref] = r
	h.mu.Unlock()
	return r, nil
}

// Walk calls fn with each record from start back to the first, until fn
// returns false. It checks every link: each record is of this environment
// and one after the record it names.
func (h *History) Walk(ctx context.Context, start *Entry, fn func(*Entry) bool) error {
	for e, n := start, 0; e != nil; n++ {
		if n > maxHistory {
			return fmt.Errorf("reading the history of %s: more than %d records", h.env, maxHistory)
		}
		if !fn(e) || !isSet(e.Previous) {
			return nil
		}
		prev, err := h.Entry(ctx, e.Previous)
		if err != nil {
			return err
		}
		if prev.Sequence != e.Sequence-1 {
			return fmt.Errorf("reading the history of %s: record %s (#%d) follows #%d", h.env, e.Ref, e.Sequence, prev.Sequence)
		}
		e = prev
	}
	return nil
}

// Entries returns the whole history, oldest first.
func (h *History) Entries(ctx context.Context) ([]*Entry, error) {
	head, err := h.Head(ctx)
	if err != nil || head == nil {
		return nil, err
	}
	var out []*Entry
	if err := h.Walk(ctx, head, func(e *Entry) bool { out = append(out, e); return true }); err != nil {
		return nil, err
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// counts says whether a record counts; a nil counts counts every record.
type counts func(ctx context.Context, e *Entry) (bool, error)

// signedRecords reads the bundles that sign a digest's promotion records
// and verifies them under v (SignedRecords), once per digest: the walks
// that decide what counts, and the checks after them, ask for the same
// digests again.
type signedRecords struct {
	h        *History
	v        *trust.Verifier
	now      time.Time
	byDigest map[v1.Hash]map[v1.Hash]time.Time
}

// signedBy returns h's records as v verifies them. Under trust: anyone who
// can push to the repository can append a record, and an unsigned
// rollback must undo nothing.
func (h *History) signedBy(v *trust.Verifier, now time.Time) *signedRecords {
	return &signedRecords{h: h, v: v, now: now, byDigest: map[v1.Hash]map[v1.Hash]time.Time{}}
}

// of returns the digests of digest's record statements that verify, with
// each signature's earliest time.
func (s *signedRecords) of(ctx context.Context, digest v1.Hash) (map[v1.Hash]time.Time, error) {
	if signed, ok := s.byDigest[digest]; ok {
		return signed, nil
	}
	signed, err := s.h.SignedRecords(ctx, digest, s.v, s.now)
	if err != nil {
		return nil, err
	}
	s.byDigest[digest] = signed
	return signed, nil
}

// signs is the counts that counts only e's record being signed.
func (s *signedRecords) signs(ctx context.Context, e *Entry) (bool, error) {
	signed, err := s.of(ctx, e.Digest)
	if err != nil {
		return false, err
	}
	_, ok := signed[e.statement.Digest]
	return ok, nil
}

// undoes reports whether e is a rollback that c counts.
func (c counts) undoes(ctx context.Context, e *Entry) (bool, error) {
	if !e.Rollback || c == nil {
		return e.Rollback, nil
	}
	return c(ctx, e)
}

// inEffect returns up to n promotions in effect, newest first, walking back
// from start: a rollback that c counts undoes the promotion it names, so
// the newest promotion not undone is the current one and the next is what
// a rollback returns to. Promotions c does not count are still returned
// (the caller refuses to return to one); rollbacks it does not count are
// passed over.
func (h *History) inEffect(ctx context.Context, start *Entry, n int, c counts) ([]*Entry, error) {
	undone := map[v1.Hash]bool{}
	var out []*Entry
	var cerr error
	err := h.Walk(ctx, start, func(e *Entry) bool {
		if e.Rollback {
			var ok bool
			if ok, cerr = c.undoes(ctx, e); cerr != nil {
				return false
			}
			if ok {
				undone[e.Undoes] = true
			}
			return true
		}
		if !undone[e.Ref] {
			out = append(out, e)
		}
		return len(out) < n
	})
	if cerr != nil {
		return nil, cerr
	}
	return out, err
}

// Promotions lists the promotions of digest in this history, newest first,
// with those a rollback undid marked: the from and soak gates' evidence. A
// record that is not in the history (one that lost a race for the head)
// is no evidence. Referrers of the digest tell how far back to look; with
// none, the digest was never promoted here.
//
// Only rollbacks c counts undo a promotion; nil counts them all.
func (h *History) Promotions(ctx context.Context, digest v1.Hash, c counts) ([]Promotion, error) {
	refs, err := h.repo.Referrers(ctx, digest)
	if err != nil {
		return nil, err
	}
	oldest := 0
	for _, d := range refs {
		if d.Annotations[registry.AnnotationPredicateType] != PredicateType || d.Annotations[annEnvironment] != h.env {
			continue
		}
		var seq int
		if _, err := fmt.Sscan(d.Annotations[annSequence], &seq); err == nil && seq > 0 && (oldest == 0 || seq < oldest) {
			oldest = seq
		}
	}
	if oldest == 0 {
		return nil, nil
	}
	head, err := h.Head(ctx)
	if err != nil || head == nil {
		return nil, err
	}
	undone := map[v1.Hash]bool{}
	var out []Promotion
	var cerr error
	err = h.Walk(ctx, head, func(e *Entry) bool {
		var ok bool
		if ok, cerr = c.undoes(ctx, e); cerr != nil {
			return false
		}
		if ok {
			undone[e.Undoes] = true
		}
		if e.Digest == digest {
			out = append(out, Promotion{Digest: digest.String(), To: h.env, Time: e.Time, Rollback: e.Rollback, Undone: undone[e.Ref], Record: e.Ref.String(), statement: e.statement.Digest})
		}
		return e.Sequence > oldest
	})
	if cerr != nil {
		return nil, cerr
	}
	return out, err
}

// Append adds the record build makes from the current head, and returns
// its entry; build returns nil when there is nothing to add (the digest is
// there already), and Append returns nil too, having made the tags agree.
//
// Each attempt reads the head, writes the record naming it, reads the head
// again (starting over if it moved), points the head tag at the record and
// reads the tag back. If another promotion's
// record is there instead and ours is not in the history behind it, that
// one won: ours stays attached to its digest but outside the history, and
// the attempt starts over from the new head. (If ours is behind it, the
// other promotion came after ours, and ours stands.)
// The winner then makes the tags agree (Converge), waits Settle, and checks
// that its record is still in the history: a rival that read the head
// before our write and wrote after our check has replaced it, and then
// ours is appended again after theirs.
func (h *History) Append(ctx context.Context, build func(ctx context.Context, head *Entry) (*Record, error)) (*Entry, error) {
	for attempt := range maxAttempts {
		if attempt > 0 {
			// Rivals that collided come back at different times.
			if err := clock.Sleep(ctx, time.Duration(attempt)*(20*time.Millisecond+rand.N(80*time.Millisecond))); err != nil {
				return nil, err
			}
		}
		head, err := h.Head(ctx)
		if err != nil {
			return nil, err
		}
		rec, err := build(ctx, head)
		if err != nil {
			return nil, err
		}
		if rec == nil {
			_, err := h.Converge(ctx)
			return nil, err
		}
		rec.Environment, rec.Sequence, rec.Previous = h.env, 1, ""
		if head != nil {
			rec.Sequence, rec.Previous = head.Sequence+1, head.Ref.String()
		}
		rec.Time = h.Now().UTC()
		e, err := h.write(ctx, rec)
		if err != nil {
			return nil, err
		}
		// Building and writing the record can take longer than a rival's
		// settle time (a rollback walks the history). Read the head again
		// right before moving it, so that our head write lands within one
		// round trip of a read that still found the head we build on: a
		// rival that wrote in between has not finished settling, and its
		// last check sees ours.
		if now, ok, err := h.headRef(ctx); err != nil {
			return nil, err
		} else if ok != (head != nil) || head != nil && now != head.Ref {
			h.Races.Add(1)
			continue
		}
		if err := h.tag(ctx, HeadTag(h.env), e.Ref); err != nil {
			return nil, err
		}
		// Ours is at the head, or behind a record whose promotion read ours
		// there and came after it: ours stands, and appending it again
		// would put our digest back over theirs. Otherwise another
		// promotion replaced ours, and we lost.
		if in, err := h.contains(ctx, e); err != nil {
			return nil, err
		} else if !in {
			h.Races.Add(1)
			continue
		}
		if _, err := h.Converge(ctx); err != nil {
			return nil, err
		}
		if err := clock.Sleep(ctx, h.Settle); err != nil {
			return nil, err
		}
		if in, err := h.contains(ctx, e); err != nil {
			return nil, err
		} else if !in {
			h.Races.Add(1)
			continue
		}
		if _, err := h.Converge(ctx); err != nil {
			return nil, err
		}
		return e, nil
	}
	return nil, fmt.Errorf("recording the promotion to %s: %w; run it again", h.env, ErrLostRace)
}

// write attaches the record to its digest.
func (h *History) write(ctx context.Context, rec *Record) (*Entry, error) {
	d, err := v1.NewHash(rec.Digest)
	if err != nil {
		return nil, err
	}
	m, err := h.manifest(ctx, d)
	if err != nil {
		return nil, err
	}
	art, err := rec.artifact()
	if err != nil {
		return nil, err
	}
	desc, err := h.repo.Attach(ctx, v1.Descriptor{MediaType: m.mt, Digest: d, Size: int64(len(m.raw))}, art)
	if err != nil {
		return nil, fmt.Errorf("recording the promotion to %s: %w", h.env, err)
	}
	e, err := h.Entry(ctx, desc.Digest)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.records[e.Ref] = rec
	h.mu.Unlock()
	return e, nil
}

// contains reports whether e is in the history now.
func (h *History) contains(ctx context.Context, e *Entry) (bool, error) {
	head, err := h.Head(ctx)
	if err != nil || head == nil {
		return false, err
	}
	found := false
	err = h.Walk(ctx, head, func(x *Entry) bool {
		found = x.Ref == e.Ref
		return !found && x.Sequence > e.Sequence
	})
	return found, err
}

// Converge makes every tag of the head record name the head's digest,
// reading the tags and the head back until a round finds the head
// unchanged and the tags agreeing with it. It returns the head (nil for an
// empty history). Whichever promotion converges last leaves the tags
// agreeing with the head, whether or not its own record is there.
func (h *History) Converge(ctx context.Context) (*Entry, error) {
	for range maxAttempts {
		head, err := h.Head(ctx)
		if err != nil || head == nil {
			return nil, err
		}
		rec, err := h.Record(ctx, head)
		if err != nil {
			return nil, err
		}
		agree := true
		for _, tag := range rec.Tags {
			cur, ok, err := h.repo.Resolve(ctx, tag)
			if err != nil {
				return nil, err
			}
			if ok && cur == head.Digest {
				continue
			}
			if err := h.tag(ctx, tag, head.Digest); err != nil {
				return nil, err
			}
			if cur, _, err = h.repo.Resolve(ctx, tag); err != nil {
				return nil, err
			}
			agree = agree && cur == head.Digest
		}
		again, _, err := h.headRef(ctx)
		if err != nil {
			return nil, err
		}
		if agree && again == head.Ref {
			return head, nil
		}
	}
	return nil, fmt.Errorf("moving the tags of %s: %w; run it again", h.env, ErrLostRace)
}

// tag points tag at the manifest with digest d.
func (h *History) tag(ctx context.Context, tag string, d v1.Hash) error {
	m, err := h.manifest(ctx, d)
	if err != nil {
		return err
	}
	if err := h.repo.PutManifest(ctx, tag, m.mt, m.raw); err != nil {
		return fmt.Errorf("tagging %s: %w", tag, err)
	}
	return nil
}

func (h *History) manifest(ctx context.Context, d v1.Hash) (manifestBytes, error) {
	h.mu.Lock()
	m, ok := h.manifests[d]
	h.mu.Unlock()
	if ok {
		return m, nil
	}
	raw, mt, found, err := h.repo.Manifest(ctx, d.String())
	if err != nil {
		return m, err
	}
	if !found {
		return m, fmt.Errorf("%s@%s is not there", h.repo.Name(), d)
	}
	m = manifestBytes{raw: raw, mt: mt}
	h.mu.Lock()
	h.manifests[d] = m
	h.mu.Unlock()
	return m, nil
}
