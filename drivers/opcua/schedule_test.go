package opcua

import (
	"fmt"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/internal/clock"
)

// TestPollSchedule runs a poll-mode device on a fake clock that starts 370 ms past a whole
// second, with a 1 s interval, against the in-process server. The value carries no timestamps,
// so each sample's time is the fake time of its poll. "clock" polls at once, then at every
// whole second; "start" every second after the first poll. The clock is moved in two steps
// to each expected poll, the last of 1 ms, so that a timer due even 1 ms early shows.
func TestPollSchedule(t *testing.T) {
	ts := shared(t)
	start := time.Date(2026, 12, 2, 10, 0, 0, int(370*time.Millisecond), time.UTC)
	for _, c := range []struct {
		schedule string
		first    time.Time // the first poll after the one at start
	}{
		{"clock", start.Truncate(time.Second).Add(time.Second)},
		{"start", start.Add(time.Second)},
	} {
		t.Run(c.schedule, func(t *testing.T) {
			name := "sched." + c.schedule
			node := ts.add(name, ua.TypeIDDouble, 1.0, false)
			ts.setDV(name, &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(1.0)})
			dev := "Sched" + c.schedule
			o := ts.device(dev, ModePoll, TagOptions{Name: "Level", NodeID: node, Type: "Double"})
			o.Interval, o.PollSchedule = time.Second, c.schedule
			o.KeepAlive, o.Watchdog = time.Hour, time.Hour
			clk := clock.NewFake(start)
			r := startDriver(t, Options{Clock: clk, Devices: []DeviceOptions{o}})
			times := func() []time.Time {
				var out []time.Time
				for _, e := range r.sink.snapshot() {
					for _, s := range e.samples {
						if s.Device == dev && s.Quality == drivers.Good {
							out = append(out, s.Time)
						}
					}
				}
				return out
			}
			armed := func() bool { return clk.Waiters() == 2 } // the keep-alive ticker and the poll timer
			r.sink.waitFor(t, 5*time.Second, "first poll", func() bool { return len(times()) == 1 && armed() })
			want := []time.Time{start}
			for k := range 3 {
				due := c.first.Add(time.Duration(k) * time.Second)
				want = append(want, due)
				clk.Advance(due.Add(-time.Millisecond).Sub(clk.Now()))
				clk.Advance(time.Millisecond)
				r.sink.waitFor(t, 5*time.Second, fmt.Sprintf("poll %d", k+2), func() bool { return len(times()) == k+2 && armed() })
			}
			if got := times(); !slicesEqualTimes(got, want) {
				t.Fatalf("polls at %v, want %v", clockTimes(got), clockTimes(want))
			}
		})
	}
}

// TestPollScheduleScanRate: Node Control/Scan Rate polls at once and then on the new rate's
// grid, on the clock.
func TestPollScheduleScanRate(t *testing.T) {
	ts := shared(t)
	start := time.Date(2026, 12, 2, 10, 0, 0, int(370*time.Millisecond), time.UTC)
	ts.add("sched.rate", ua.TypeIDDouble, 1.0, false)
	ts.setDV("sched.rate", &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(1.0)})
	o := ts.device("SchedRate", ModePoll, TagOptions{Name: "Level", NodeID: "nsu=urn:wellgate:test;s=sched.rate", Type: "Double"})
	o.Interval, o.KeepAlive, o.Watchdog = time.Hour, time.Hour, time.Hour
	clk := clock.NewFake(start)
	r := startDriver(t, Options{Clock: clk, Devices: []DeviceOptions{o}})
	times := func() []time.Time {
		var out []time.Time
		for _, e := range r.sink.snapshot() {
			for _, s := range e.samples {
				if s.Device == "SchedRate" && s.Quality == drivers.Good {
					out = append(out, s.Time)
				}
			}
		}
		return out
	}
	// The keep-alive ticker and the poll timer; more when the timer was stopped and re-armed
	// between two Advances (the fake clock then lists it twice until it prunes).
	armed := func() bool { return clk.Waiters() >= 2 }
	r.sink.waitFor(t, 5*time.Second, "first poll", func() bool { return len(times()) == 1 && armed() })
	r.d.SetScanRate(250 * time.Millisecond)
	r.sink.waitFor(t, 5*time.Second, "the scan rate's poll", func() bool { return len(times()) == 2 && armed() })
	want := []time.Time{start, start}
	for k, due := range []time.Time{start.Add(130 * time.Millisecond), start.Add(380 * time.Millisecond)} {
		want = append(want, due)
		clk.Advance(due.Add(-time.Millisecond).Sub(clk.Now()))
		clk.Advance(time.Millisecond)
		r.sink.waitFor(t, 5*time.Second, fmt.Sprintf("poll %d", k+3), func() bool { return len(times()) == k+3 && armed() })
	}
	if got := times(); !slicesEqualTimes(got, want) {
		t.Fatalf("polls at %v, want %v", clockTimes(got), clockTimes(want))
	}
}

func slicesEqualTimes(a, b []time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

func clockTimes(ts []time.Time) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.UTC().Format("15:04:05.000"))
	}
	return out
}
