// Package clock lets code that waits take its time from an injected clock: Real in
// production, Fake in tests, so that a test of a reconnect loop or a detection window moves
// time forward instead of sleeping through it.
package clock

import (
	"sort"
	"sync"
	"time"
)

// Clock tells the time and makes timers and tickers.
type Clock interface {
	Now() time.Time
	// Since is Now().Sub(t).
	Since(t time.Time) time.Duration
	NewTimer(d time.Duration) Timer
	NewTicker(d time.Duration) Ticker
}

// Timer is a time.Timer behind an interface.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
	Reset(d time.Duration) bool
}

// Ticker is a time.Ticker behind an interface.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// Real is the system clock.
var Real Clock = realClock{}

type realClock struct{}

func (realClock) Now() time.Time                   { return time.Now() }
func (realClock) Since(t time.Time) time.Duration  { return time.Since(t) }
func (realClock) NewTimer(d time.Duration) Timer   { return realTimer{time.NewTimer(d)} }
func (realClock) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time        { return t.t.C }
func (t realTimer) Stop() bool                 { return t.t.Stop() }
func (t realTimer) Reset(d time.Duration) bool { return t.t.Reset(d) }

type realTicker struct{ t *time.Ticker }

func (t realTicker) C() <-chan time.Time { return t.t.C }
func (t realTicker) Stop()               { t.t.Stop() }

// Fake is a clock that moves only when Advance is called. Timers and tickers fire (without
// blocking: their channels hold one value, as the runtime's do) when Advance passes their
// deadline. It is safe for concurrent use.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	waiters []*fakeWaiter
	added   chan struct{} // pinged when a timer or ticker is armed
}

// NewFake returns a fake clock set to start.
func NewFake(start time.Time) *Fake { return &Fake{now: start, added: make(chan struct{}, 1)} }

type fakeWaiter struct {
	c      chan time.Time
	at     time.Time
	period time.Duration // tickers
	active bool
}

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Since is Now().Sub(t).
func (f *Fake) Since(t time.Time) time.Duration { return f.Now().Sub(t) }

// Advance moves the clock forward by d, firing every timer and ticker whose time comes, in
// time order.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	end := f.now.Add(d)
	for {
		w := f.earliest(end)
		if w == nil {
			break
		}
		f.now = w.at
		select {
		case w.c <- w.at:
		default:
		}
		if w.period > 0 {
			w.at = w.at.Add(w.period)
		} else {
			w.active = false
		}
	}
	f.now = end
	f.prune()
}

// earliest returns the active waiter due first at or before end, or nil.
func (f *Fake) earliest(end time.Time) *fakeWaiter {
	var due []*fakeWaiter
	for _, w := range f.waiters {
		if w.active && !w.at.After(end) {
			due = append(due, w)
		}
	}
	if len(due) == 0 {
		return nil
	}
	sort.SliceStable(due, func(i, j int) bool { return due[i].at.Before(due[j].at) })
	return due[0]
}

func (f *Fake) prune() {
	kept := f.waiters[:0]
	for _, w := range f.waiters {
		if w.active {
			kept = append(kept, w)
		}
	}
	clear(f.waiters[len(kept):])
	f.waiters = kept
}

// Waiters returns how many timers and tickers are armed: a test waits for the code under
// test to arm its timer before it advances the clock.
func (f *Fake) Waiters() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, w := range f.waiters {
		if w.active {
			n++
		}
	}
	return n
}

// Armed is pinged (without blocking) each time a timer or ticker is armed or reset.
func (f *Fake) Armed() <-chan struct{} { return f.added }

func (f *Fake) arm(w *fakeWaiter, d time.Duration) bool {
	f.mu.Lock()
	was := w.active
	w.at, w.active = f.now.Add(d), true
	if !was {
		f.waiters = append(f.waiters, w)
	}
	f.mu.Unlock()
	select {
	case f.added <- struct{}{}:
	default:
	}
	return was
}

// NewTimer returns a timer that fires when the clock reaches Now()+d.
func (f *Fake) NewTimer(d time.Duration) Timer {
	w := &fakeWaiter{c: make(chan time.Time, 1)}
	f.arm(w, d)
	return &fakeTimer{f: f, w: w}
}

// NewTicker returns a ticker that fires every d of fake time.
func (f *Fake) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("clock: non-positive interval for NewTicker")
	}
	w := &fakeWaiter{c: make(chan time.Time, 1), period: d}
	f.arm(w, d)
	return fakeTicker{&fakeTimer{f: f, w: w}}
}

type fakeTicker struct{ t *fakeTimer }

func (t fakeTicker) C() <-chan time.Time { return t.t.C() }
func (t fakeTicker) Stop()               { t.t.Stop() }

type fakeTimer struct {
	f *Fake
	w *fakeWaiter
}

func (t *fakeTimer) C() <-chan time.Time { return t.w.c }

func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	was := t.w.active
	t.w.active = false
	return was
}

func (t *fakeTimer) Reset(d time.Duration) bool { return t.f.arm(t.w, d) }

var (
	_ Timer  = (*fakeTimer)(nil)
	_ Ticker = fakeTicker{}
)
