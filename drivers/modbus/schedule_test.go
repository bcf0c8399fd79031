package modbus

import (
	"slices"
	"testing"
	"time"

	"github.com/wellgate/wellgate/drivers"
)

// TestPollSchedule polls a device every 100 ms against the in-process server, started 37 ms
// after a multiple of 100 ms since the epoch, and looks at where in the 100 ms the samples'
// times fall. "clock" puts them just after the multiples; "start" keeps the phase of its
// first poll (37 ms, and later when the machine is slow to start the driver); a scan rate set
// on an hourly device moves it onto the new rate's grid.
//
// A sample's time is taken when its reply is decoded: after the timer fired and the request
// went to the server and back over loopback. On an idle machine that is under a millisecond
// after the start; the tolerance of 25 ms, and the 8 of 12 samples that must keep it, allow
// for a loaded two-core machine running the race detector, and still fail a start-relative
// schedule 37 ms off the grid (the "start" case checks that it does, when its first poll did
// land that far off).
func TestPollSchedule(t *testing.T) {
	const (
		ivl    = 100 * time.Millisecond
		offset = 37 * time.Millisecond
		tol    = 25 * time.Millisecond
		n      = 12
		need   = 8
	)
	phase := func(at time.Time) time.Duration { return time.Duration(at.UnixNano() % int64(ivl)) }
	// within counts the times whose phase in the interval (since the epoch) is in [from, from+tol).
	within := func(times []time.Time, from time.Duration) int {
		k := 0
		for _, at := range times {
			if p := (phase(at) - from + ivl) % ivl; p < tol {
				k++
			}
		}
		return k
	}
	// run polls and returns the time of the first poll's sample and of the n after it.
	run := func(t *testing.T, schedule string, interval time.Duration, rate time.Duration) (time.Time, []time.Time) {
		srv := newTestServer(t, 1)
		dev := tcpDevice("plc", srv, 1, TagOptions{Name: "a", Address: "40001"})
		dev.PollInterval, dev.PollSchedule = interval, schedule
		// Setting the start's phase, not synchronising: begin 37 ms after a multiple.
		time.Sleep(time.Until(time.Now().Truncate(ivl).Add(ivl + offset)))
		d, sink := startDriver(t, Options{Devices: []DeviceOptions{dev}})
		eventually(t, 5*time.Second, "first poll", func() bool { return sink.batchCount("plc") >= 1 })
		first, _ := sink.sample("plc", "a")
		times := make(chan time.Time, 4*n)
		sink.onSample(func(s drivers.Sample) {
			select {
			case times <- s.Time:
			default:
			}
		})
		if rate > 0 {
			d.SetScanRate(rate)
		}
		var got []time.Time
		deadline := time.After(10 * time.Second)
		for len(got) < n {
			select {
			case at := <-times:
				got = append(got, at)
			case <-deadline:
				t.Fatalf("%d samples in 10s, want %d", len(got), n)
			}
		}
		return first.Time, got
	}
	phases := func(times []time.Time) []time.Duration {
		var out []time.Duration
		for _, at := range times {
			out = append(out, time.Duration(at.UnixNano()%int64(ivl)).Round(time.Millisecond))
		}
		return out
	}
	t.Run("clock", func(t *testing.T) {
		_, got := run(t, "clock", ivl, 0)
		if k := within(got, 0); k < need {
			t.Errorf("%d of %d samples within %v after a multiple of %v, want %d: phases %v", k, n, tol, ivl, need, phases(got))
		}
	})
	t.Run("start", func(t *testing.T) {
		first, got := run(t, "start", ivl, 0)
		// The polls keep one phase: the first poll's, give or take its connect (the phase of
		// its sample) and the load; the median of the samples' phases stands for it.
		ps := phases(got)
		slices.Sort(ps)
		median := ps[len(ps)/2]
		if k := within(got, (median-tol/2+ivl)%ivl); k < need {
			t.Errorf("%d of %d samples within %v around their median phase %v, want %d: phases %v (first poll %v)",
				k, n, tol, median, need, phases(got), phase(first).Round(time.Millisecond))
		}
		if median < tol || median > ivl-tol/2 {
			t.Logf("the polls landed at phase %v, too near the grid to check that the clock test fails", median)
		} else if k := within(got, 0); k >= need {
			t.Errorf("%d of %d start-relative samples pass the clock test: it cannot tell them apart; phases %v", k, n, phases(got))
		}
	})
	t.Run("scan rate", func(t *testing.T) {
		_, got := run(t, "clock", time.Hour, ivl)
		if k := within(got, 0); k < need {
			t.Errorf("%d of %d samples within %v after a multiple of the scan rate %v, want %d: phases %v", k, n, tol, ivl, need, phases(got))
		}
	})
}

// A poll_schedule New does not know is refused.
func TestPollScheduleRefused(t *testing.T) {
	dev := tcpOptions("plc", "127.0.0.1:502", 1, TagOptions{Name: "a", Address: "40001"})
	dev.PollSchedule = "hourly"
	if _, err := New(Options{Devices: []DeviceOptions{dev}}, nil); err == nil {
		t.Fatal("New accepted poll_schedule \"hourly\"")
	}
}
