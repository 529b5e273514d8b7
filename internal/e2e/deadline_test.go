package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"
)

// testBudget is how long one end-to-end test may take unless it asks for
// more with budget: room for the few tool runs a test makes one after
// another, each within toolTimeout, on a busy 2-core machine whose build
// cache the run's shared builds have filled. Waiting for those builds (see
// must) is not counted; they have coldBuildTimeout.
const testBudget = 15 * time.Minute

// hangGrace is how long a test that ran out of time gets to notice that
// its context is done. A test still running after that is stuck where no
// context reaches, and the package is stopped with every goroutine's
// stack, as go test's -timeout would do, but naming the test and sooner.
const hangGrace = 2 * time.Minute

// A deadline bounds one top-level test and its subtests. When it passes
// the test fails, saying so, and its context (testContext) is cancelled,
// which kills the tools it runs: a hang fails that test, not the package.
type deadline struct {
	t      *testing.T
	ctx    context.Context
	cancel context.CancelCauseFunc

	mu     sync.Mutex
	budget time.Duration
	left   time.Duration // what remains while paused
	end    time.Time     // when it passes while running
	timer  *time.Timer
	paused int
	done   bool
}

var (
	deadlinesMu sync.Mutex
	deadlines   = map[string]*deadline{}
)

// topName is the name of the top-level test t belongs to.
func topName(t *testing.T) string {
	name, _, _ := strings.Cut(t.Name(), "/")
	return name
}

// startDeadline gives the top-level test t the time d, from now.
func startDeadline(t *testing.T, d time.Duration) {
	t.Helper()
	if strings.Contains(t.Name(), "/") {
		t.Fatal("startDeadline is for top-level tests; subtests share their test's deadline")
	}
	dl := &deadline{t: t, budget: d, left: d, end: time.Now().Add(d)}
	dl.ctx, dl.cancel = context.WithCancelCause(context.Background())
	dl.timer = time.AfterFunc(d, dl.expire)
	deadlinesMu.Lock()
	deadlines[t.Name()] = dl
	deadlinesMu.Unlock()
	t.Cleanup(func() {
		dl.mu.Lock()
		dl.done = true
		dl.timer.Stop()
		dl.mu.Unlock()
		dl.cancel(nil)
		deadlinesMu.Lock()
		delete(deadlines, t.Name())
		deadlinesMu.Unlock()
	})
}

// budget gives t's test d in place of testBudget, counted from now; a test
// that cold-compiles much more than slipway for this machine calls it
// first thing.
func budget(t *testing.T, d time.Duration) {
	t.Helper()
	dl := deadlineOf(t)
	if dl == nil {
		t.Fatal("budget before requireE2E")
	}
	dl.mu.Lock()
	defer dl.mu.Unlock()
	dl.budget, dl.left = d, d
	if dl.paused == 0 && !dl.done && dl.ctx.Err() == nil {
		dl.end = time.Now().Add(d)
		dl.timer.Reset(d)
	}
}

// deadlineOf is the deadline of t's top-level test, nil without one.
func deadlineOf(t *testing.T) *deadline {
	deadlinesMu.Lock()
	defer deadlinesMu.Unlock()
	return deadlines[topName(t)]
}

// testContext is t's context, cancelled too when its test's deadline
// passes, with the deadline as the cause.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithCancelCause(t.Context())
	t.Cleanup(func() { cancel(nil) })
	if dl := deadlineOf(t); dl != nil {
		stop := context.AfterFunc(dl.ctx, func() { cancel(context.Cause(dl.ctx)) })
		t.Cleanup(func() { stop() })
	}
	return ctx
}

func (d *deadline) expire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done || d.paused > 0 {
		return
	}
	err := fmt.Errorf("%s ran past its deadline of %s (time waiting for the run's shared builds not counted)", d.t.Name(), d.budget)
	// Errorf, not Fatalf: this is not the test's goroutine. Holding mu
	// keeps the test from completing (its cleanup takes mu) meanwhile.
	d.t.Errorf("%v; stopping what it runs", err)
	d.cancel(err)
	time.AfterFunc(hangGrace, func() {
		d.mu.Lock()
		done := d.done
		d.mu.Unlock()
		if !done {
			debug.SetTraceback("all")
			panic(fmt.Sprintf("%v, and is still running %s later, stuck where its context does not reach", err, hangGrace))
		}
	})
}

// pause stops the clock while the test waits for something it does not
// own; a nil deadline (no requireE2E yet) does nothing.
func (d *deadline) pause() {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.paused++
	if d.paused == 1 && d.ctx.Err() == nil {
		d.timer.Stop()
		d.left = time.Until(d.end)
	}
}

// resume starts the clock again with what was left.
func (d *deadline) resume() {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.paused--
	if d.paused == 0 && !d.done && d.ctx.Err() == nil {
		d.end = time.Now().Add(d.left)
		d.timer.Reset(d.left)
	}
}

// TestDeadline runs this test binary again for a test that overruns a
// one-second budget inside a tool, and one that spends two seconds waiting
// for a shared build with the same budget: the first must fail by name and
// have its tool killed, the second pass.
func TestDeadline(t *testing.T) {
	if os.Getenv("SLIPWAY_E2E_DEADLINE_CHILD") == "1" {
		return
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		wantFail bool
		want     string
	}{
		{"TestDeadlineChildHangs", true, "TestDeadlineChildHangs ran past its deadline of 1s"},
		{"TestDeadlineChildWaits", false, "PASS"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, self, "-test.run=^"+tt.name+"$", "-test.v")
			cmd.Env = append(os.Environ(), "SLIPWAY_E2E_DEADLINE_CHILD=1")
			start := time.Now()
			out, err := cmd.CombinedOutput()
			if took := time.Since(start); took > 30*time.Second {
				t.Errorf("the child ran %s; its sleep 60 was not stopped at the deadline", took)
			}
			if failed := err != nil; failed != tt.wantFail {
				t.Errorf("child failed: %v, want %v", err, tt.wantFail)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("the child's output lacks %q:\n%s", tt.want, out)
			}
		})
	}
}

func TestDeadlineChildHangs(t *testing.T) {
	if os.Getenv("SLIPWAY_E2E_DEADLINE_CHILD") != "1" {
		t.Skip("run by TestDeadline")
	}
	startDeadline(t, time.Second)
	if _, err := runFor(t, time.Minute, t.TempDir(), nil, "sleep", "60"); err == nil {
		t.Error("sleep 60 finished inside a one-second deadline")
	}
}

func TestDeadlineChildWaits(t *testing.T) {
	if os.Getenv("SLIPWAY_E2E_DEADLINE_CHILD") != "1" {
		t.Skip("run by TestDeadline")
	}
	startDeadline(t, time.Second)
	must(t, func() (int, error) { time.Sleep(2 * time.Second); return 0, nil })
	if _, err := run(t, t.TempDir(), nil, "true"); err != nil {
		t.Errorf("true after a two-second shared build: %v", err)
	}
}
