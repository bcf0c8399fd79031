package modbus

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/wellgate/wellgate/drivers"
)

// lateSlaveSpan is how long each case of TestLateSlaveCostsNeighbourNothing runs; the load
// build tag makes it longer (load_late_test.go).
var lateSlaveSpan = 1200 * time.Millisecond

// TestLateSlaveCostsNeighbourNothing: a slave that answers after its timeout shares a bus
// with a healthy one. Its late replies carry a valid CRC and bytes chosen to look like the
// start of the healthy device's reply (unit id and function code inside the stale frame, as in
// the issue: unit ids 1–4 collide with function codes). The healthy device must lose no
// cycle and never publish a value that is not its own, for coil and register replies and every
// unit id 1–4; the late replies are discarded and counted on the slave that sent them.
func TestLateSlaveCostsNeighbourNothing(t *testing.T) {
	for _, tb := range []table{coils, holdingRegisters} {
		for late := byte(1); late <= 4; late++ {
			healthy := late%4 + 1
			t.Run(fmt.Sprintf("%s/late%d-healthy%d", tb.prefix(), late, healthy), func(t *testing.T) {
				lateSlaveCase(t, tb, late, healthy, lateSlaveSpan)
			})
		}
	}
}

func lateSlaveCase(t *testing.T, tb table, late, healthy byte, span time.Duration) {
	a, b := ptyPair(t)
	slave := newRTUSlave(t, b, late, healthy)
	var lateTag, healthyTag TagOptions
	var want drivers.Value
	switch tb {
	case coils:
		// The stale reply is late 01 02 <healthy> 01 crc: "<healthy> 01" starts a coil reply.
		slave.with(late, func(bk *bank, _ *rtuSlave) {
			for i := range 16 {
				bk.coils[i] = (uint16(healthy)|uint16(fcReadCoils)<<8)>>i&1 == 1
			}
		})
		slave.with(healthy, func(bk *bank, _ *rtuSlave) { bk.coils[0], bk.coils[2], bk.coils[7] = true, true, true })
		lateTag = TagOptions{Name: "bits", Address: "co:0"}
		healthyTag = TagOptions{Name: "c7", Address: "co:7"}
		want = drivers.BoolValue(true)
	default:
		// The stale reply is late 03 04 <healthy> 03 02 xx crc: "<healthy> 03 02" starts the
		// healthy device's one-register reply.
		slave.with(late, func(bk *bank, _ *rtuSlave) { bk.holding[0], bk.holding[1] = uint16(healthy)<<8|3, 0x0299 })
		slave.with(healthy, func(bk *bank, _ *rtuSlave) { bk.holding[0] = 0x1200 + uint16(healthy) })
		lateTag = TagOptions{Name: "r", Address: "hr:0", Type: "uint32"}
		healthyTag = TagOptions{Name: "r", Address: "hr:0"}
		want = drivers.UintValue(drivers.UInt16, 0x1200+uint64(healthy))
	}
	lateDev := rtuDevice("late", a, int(late), lateTag)
	if tb == coils {
		for i := 1; i < 16; i++ { // 16 coils: two data bytes
			lateDev.Tags = append(lateDev.Tags, TagOptions{Name: fmt.Sprintf("b%d", i), Address: fmt.Sprintf("co:%d", i)})
		}
	}
	// Polled (and probed, once down) at least 240 ms apart, so that its reply, 130 ms after
	// a request, lands between exchanges or in its neighbour's. One that came after the next
	// request to the same device, with the same function and byte count, could not be told
	// from its answer: that is RTU's limit (see the package comment), not this test's subject.
	lateDev.PollInterval, lateDev.Timeout, lateDev.MaxBackoff = 300*time.Millisecond, 100*time.Millisecond, 300*time.Millisecond
	// The healthy device polls every 200 ms: a timeout of the late one (100 ms) may delay a
	// cycle, but must never cost one. Its own timeout is generous: on a loaded machine the
	// in-test slave may answer slowly, which is not what this test is about.
	okDev := rtuDevice("healthy", a, int(healthy), healthyTag)
	okDev.PollInterval, okDev.Timeout = 200*time.Millisecond, time.Second
	slave.with(late, func(_ *bank, s *rtuSlave) { s.late[late] = 130 * time.Millisecond })

	d, sink := startDriver(t, Options{Devices: []DeviceOptions{lateDev, okDev}})
	var foreign []drivers.Sample
	sink.onSample(func(s drivers.Sample) {
		if s.Device == "healthy" && (s.Quality != drivers.Good || !s.Value.Equal(want)) {
			foreign = append(foreign, s)
		}
	})
	eventually(t, 5*time.Second, "healthy up", func() bool { return sink.lastState("healthy") == 1 })
	c0, start := statusOf(d, "healthy").Requests, time.Now()
	time.Sleep(span) // the measurement window, not synchronisation
	ok, lt := statusOf(d, "healthy"), statusOf(d, "late")
	cycles, ideal := ok.Requests-c0, float64(time.Since(start))/float64(okDev.PollInterval)
	sent := slave.counter(&slave.lateSent, late)
	t.Logf("healthy unit %d: %d cycles in %v (ideal %.1f), %d errors, %d bad samples, last response %v; late unit %d: %d late replies sent, %d counted (%v)",
		healthy, cycles, span, ideal, ok.Errors, sink.badCount("healthy"), ok.ResponseTime.Round(time.Microsecond), late, sent, lt.ErrorsByKind[kindLate], lt.ErrorsByKind)
	if ok.Errors != 0 || sink.badCount("healthy") != 0 {
		t.Errorf("the healthy device lost cycles: %d errors %v (last %q), %d bad samples", ok.Errors, ok.ErrorsByKind, ok.LastError, sink.badCount("healthy"))
	}
	sink.mu.Lock()
	if len(foreign) > 0 {
		t.Errorf("the healthy device published %d values not its own, first %v", len(foreign), foreign[0])
	}
	sink.mu.Unlock()
	if float64(cycles) < ideal/4 { // a loose floor: a loaded machine slows everything down
		t.Errorf("the healthy device made %d cycles of an ideal %.1f", cycles, ideal)
	}
	if sent < 2 || lt.ErrorsByKind[kindLate] < uint64(sent)/2 {
		t.Errorf("late replies: %d sent, %d counted", sent, lt.ErrorsByKind[kindLate])
	}
}

// TestLateReplyDiscardedAndCounted: a slave's reply is held until the next reply to its
// neighbour, so every late reply, with a valid CRC and the same function and byte count as the
// neighbour's reply, arrives in the middle of the neighbour's exchange. Each one is discarded
// and counted on the slave that sent it, exactly; the neighbour loses nothing; the late slave
// never gets a value, since no reply of its own arrives in time.
func TestLateReplyDiscardedAndCounted(t *testing.T) {
	a, b := ptyPair(t)
	slave := newRTUSlave(t, b, 1, 2)
	slave.with(1, func(bk *bank, _ *rtuSlave) { bk.holding[0] = 0x2222 })
	// The held frame 02 03 02 01 03 crc holds "01 03", the start of unit 1's reply.
	slave.with(2, func(bk *bank, s *rtuSlave) { bk.holding[0] = 0x0103; s.holdLate[2] = true })
	one := rtuDevice("one", a, 1, TagOptions{Name: "v", Address: "hr:0"})
	one.Timeout = time.Second // so that unit 2's held reply never lands in unit 2's own exchange
	two := rtuDevice("two", a, 2, TagOptions{Name: "v", Address: "hr:0"})
	two.Timeout, two.MaxBackoff = 50*time.Millisecond, 100*time.Millisecond
	d, sink := startDriver(t, Options{Devices: []DeviceOptions{one, two}})
	var wrong []drivers.Sample
	sink.onSample(func(s drivers.Sample) {
		if s.Device == "one" && !s.Value.Equal(drivers.UintValue(drivers.UInt16, 0x2222)) || s.Device == "two" && s.Quality == drivers.Good {
			wrong = append(wrong, s)
		}
	})
	eventually(t, 10*time.Second, "10 late replies", func() bool { return slave.counter(&slave.lateSent, 2) >= 10 })
	slave.with(2, func(_ *bank, s *rtuSlave) { s.silent[2] = true })
	// The last reply held goes out in front of unit 1's next reply.
	eventually(t, 5*time.Second, "the held reply flushed", func() bool {
		slave.mu.Lock()
		defer slave.mu.Unlock()
		return len(slave.held) == 0
	})
	sent := slave.counter(&slave.lateSent, 2)
	eventually(t, 5*time.Second, fmt.Sprintf("%d late replies counted", sent), func() bool {
		return statusOf(d, "two").ErrorsByKind[kindLate] >= uint64(sent)
	})
	if got := statusOf(d, "two").ErrorsByKind[kindLate]; got != uint64(sent) {
		t.Errorf("%d late replies counted, %d sent", got, sent)
	}
	if st := statusOf(d, "one"); st.Errors != 0 || sink.badCount("one") != 0 {
		t.Errorf("unit 1 lost cycles: %v, last %q", st.ErrorsByKind, st.LastError)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(wrong) > 0 {
		t.Errorf("a late reply was decoded as an answer: %v", wrong)
	}
}

// TestSilentInterval: 3.5 characters from the baud and the framing; 1.75 ms above 19200.
func TestSilentInterval(t *testing.T) {
	for _, c := range []struct {
		s    SerialOptions
		want time.Duration
	}{
		{SerialOptions{Baud: 9600, DataBits: 8, Parity: "N", StopBits: 1}, 3645833},  // 10 bits
		{SerialOptions{Baud: 9600, DataBits: 8, Parity: "E", StopBits: 1}, 4010416},  // 11 bits
		{SerialOptions{Baud: 19200, DataBits: 8, Parity: "N", StopBits: 2}, 2005208}, // 11 bits
		{SerialOptions{Baud: 19200, DataBits: 7, Parity: "O", StopBits: 1}, 1822916}, // 10 bits
		{SerialOptions{Baud: 1200, DataBits: 8, Parity: "N", StopBits: 1}, 29166666},
		{SerialOptions{Baud: 38400, DataBits: 8, Parity: "E", StopBits: 1}, 1750 * time.Microsecond},
	} {
		if got := silentInterval(c.s); got != c.want {
			t.Errorf("%+v: %v, want %v", c.s, got, c.want)
		}
	}
}

// TestInterFrameTiming polls two slaves back to back and measures, at the slave's end, the
// silence between each reply and the next request: never less than 3.5 characters at the
// line's baud and framing (or inter_frame_delay plus turnaround_delay when set), and not much
// more either.
func TestInterFrameTiming(t *testing.T) {
	for _, c := range []struct {
		name       string
		baud       int
		parity     string
		frame, tat time.Duration
		want       time.Duration
	}{
		{"9600 8E1", 9600, "E", 0, 0, 4010416},
		{"19200 8N1", 19200, "N", 0, 0, 1822916},
		{"19200 8N1 radio", 19200, "N", 20 * time.Millisecond, 10 * time.Millisecond, 30 * time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b := ptyPair(t)
			slave := newRTUSlaveAt(t, b, c.baud, c.parity, 1, 2)
			var devs []DeviceOptions
			for u := 1; u <= 2; u++ {
				dev := rtuDevice(fmt.Sprintf("d%d", u), a, u, TagOptions{Name: "v", Address: "hr:0"}, TagOptions{Name: "c", Address: "co:0"})
				dev.Serial.Baud, dev.Serial.Parity = c.baud, c.parity
				dev.Serial.InterFrameDelay, dev.Serial.TurnaroundDelay = c.frame, c.tat
				dev.PollInterval = time.Millisecond // as fast as the line allows
				// No timeouts on a loaded machine: after one, a request may legitimately
				// reach the slave before its late reply leaves.
				dev.Timeout = 2 * time.Second
				devs = append(devs, dev)
			}
			_, sink := startDriver(t, Options{Devices: devs})
			eventually(t, 5*time.Second, "both up", func() bool { return sink.lastState("d1") == 1 && sink.lastState("d2") == 1 })
			slave.with(1, func(_ *bank, s *rtuSlave) { s.record = true })
			eventually(t, 10*time.Second, "40 exchanges", func() bool { return slave.counter(&slave.requests, 1)+slave.counter(&slave.requests, 2) >= 60 })
			slave.mu.Lock()
			events := slices.Clone(slave.events)
			slave.mu.Unlock()
			var gaps []time.Duration
			for i := 1; i < len(events); i++ {
				if events[i-1].reply && !events[i].reply {
					gaps = append(gaps, events[i].at.Sub(events[i-1].at))
				}
			}
			if len(gaps) < 20 {
				t.Fatalf("%d gaps measured", len(gaps))
			}
			slices.Sort(gaps)
			median := gaps[len(gaps)/2]
			t.Logf("%d gaps from reply to next request: min %v, median %v, max %v (silent interval %v)",
				len(gaps), gaps[0], median, gaps[len(gaps)-1], c.want)
			if gaps[0] < c.want {
				t.Errorf("a request %v after the last reply, less than the silent interval %v", gaps[0], c.want)
			}
			if median > c.want+30*time.Millisecond {
				t.Errorf("median silence %v: the line waits far longer than %v", median, c.want)
			}
		})
	}
}
