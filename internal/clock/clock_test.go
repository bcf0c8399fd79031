package clock

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func fired(c <-chan time.Time) (time.Time, bool) {
	select {
	case at := <-c:
		return at, true
	default:
		return time.Time{}, false
	}
}

func TestFakeTimerFiresOnlyWhenDue(t *testing.T) {
	f := NewFake(t0)
	tm := f.NewTimer(time.Second)
	f.Advance(999 * time.Millisecond)
	if _, ok := fired(tm.C()); ok {
		t.Fatal("timer fired before its time")
	}
	f.Advance(time.Millisecond)
	at, ok := fired(tm.C())
	if !ok || !at.Equal(t0.Add(time.Second)) {
		t.Fatalf("timer: fired %v at %v, want at %v", ok, at, t0.Add(time.Second))
	}
	if f.Waiters() != 0 {
		t.Fatalf("a fired timer is still armed")
	}
	if tm.Reset(time.Second) {
		t.Fatal("Reset of a fired timer reported it active")
	}
	if !tm.Stop() {
		t.Fatal("Stop of an armed timer reported it inactive")
	}
	f.Advance(time.Hour)
	if _, ok := fired(tm.C()); ok {
		t.Fatal("a stopped timer fired")
	}
}

func TestFakeTickerKeepsPeriodAndDropsMissedTicks(t *testing.T) {
	f := NewFake(t0)
	tk := f.NewTicker(100 * time.Millisecond)
	f.Advance(350 * time.Millisecond) // three ticks due; the channel holds one, like time.Ticker
	at, ok := fired(tk.C())
	if !ok || !at.Equal(t0.Add(100*time.Millisecond)) {
		t.Fatalf("first tick: %v %v", ok, at)
	}
	if _, ok := fired(tk.C()); ok {
		t.Fatal("more than one tick buffered")
	}
	f.Advance(50 * time.Millisecond)
	if at, ok := fired(tk.C()); !ok || !at.Equal(t0.Add(400*time.Millisecond)) {
		t.Fatalf("tick after catch-up: %v %v", ok, at)
	}
	if got := f.Now(); !got.Equal(t0.Add(400 * time.Millisecond)) {
		t.Fatalf("Now = %v", got)
	}
	tk.Stop()
	if f.Waiters() != 0 {
		t.Fatal("stopped ticker still armed")
	}
}

func TestRealClock(t *testing.T) {
	tm := Real.NewTimer(time.Millisecond)
	select {
	case <-tm.C():
	case <-time.After(5 * time.Second):
		t.Fatal("real timer did not fire")
	}
	if Real.Since(Real.Now().Add(-time.Hour)) < time.Hour {
		t.Fatal("Since is wrong")
	}
}
