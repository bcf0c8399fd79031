package modbus

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wellgate/wellgate/drivers"
)

// TestLineBackWithinOnePollInterval: every slave on an RTU line stops answering (the line is
// cut) long enough for a growing quarantine to outgrow the poll interval many times over;
// when the line comes back, both devices are up within one poll interval (plus the timeout
// of a probe that was in flight), with the default max_backoff.
func TestLineBackWithinOnePollInterval(t *testing.T) {
	a, b := ptyPair(t)
	slave := newRTUSlave(t, b, 1, 2)
	var devs []DeviceOptions
	for u := 1; u <= 2; u++ {
		dev := rtuDevice(string(rune('a'+u-1)), a, u, TagOptions{Name: "v", Address: "hr:0"})
		dev.PollInterval, dev.Timeout = 300*time.Millisecond, 50*time.Millisecond
		devs = append(devs, dev)
	}
	_, sink := startDriver(t, Options{Devices: devs})
	eventually(t, 5*time.Second, "up", func() bool { return sink.lastState("a") == 1 && sink.lastState("b") == 1 })
	slave.with(1, func(_ *bank, s *rtuSlave) { s.silent[1], s.silent[2] = true, true })
	eventually(t, 5*time.Second, "down", func() bool { return sink.lastState("a") == -1 && sink.lastState("b") == -1 })
	time.Sleep(2500 * time.Millisecond) // the outage: eight poll intervals
	back := time.Now()
	slave.with(1, func(_ *bank, s *rtuSlave) { s.silent[1], s.silent[2] = false, false })
	eventually(t, 5*time.Second, "up again", func() bool { return sink.lastState("a") == 1 && sink.lastState("b") == 1 })
	took := time.Since(back)
	t.Logf("both devices up %v after the line came back (poll interval 300ms, timeout 50ms)", took.Round(time.Millisecond))
	if took > 300*time.Millisecond+50*time.Millisecond+time.Second { // slack for a loaded CI machine; the quarantine would be seconds
		t.Errorf("back after %v, more than one poll interval and a timeout", took)
	}
}

// TestLineBackProbesQuarantined: x stops answering while its neighbour y answers, and is
// quarantined with a growing interval; then the whole line is cut. When the line comes back,
// y (probed at its poll rate, as nobody else answers) shows that the line lives, and x, whose
// next probe was due seconds later, is probed at once.
func TestLineBackProbesQuarantined(t *testing.T) {
	a, b := ptyPair(t)
	slave := newRTUSlave(t, b, 1, 2)
	x := rtuDevice("x", a, 1, TagOptions{Name: "v", Address: "hr:0"})
	x.PollInterval, x.Timeout = 100*time.Millisecond, 50*time.Millisecond
	y := rtuDevice("y", a, 2, TagOptions{Name: "v", Address: "hr:0"})
	y.PollInterval, y.Timeout = 100*time.Millisecond, 50*time.Millisecond
	_, sink := startDriver(t, Options{Devices: []DeviceOptions{x, y}})
	eventually(t, 5*time.Second, "up", func() bool { return sink.lastState("x") == 1 && sink.lastState("y") == 1 })
	slave.with(1, func(_ *bank, s *rtuSlave) { s.silent[1] = true })
	eventually(t, 5*time.Second, "x down", func() bool { return sink.lastState("x") == -1 })
	time.Sleep(4 * time.Second) // x's quarantine grows: 100, 200, 400, 800, 1600, 3200 ms
	slave.with(2, func(_ *bank, s *rtuSlave) { s.silent[2] = true })
	eventually(t, 5*time.Second, "y down", func() bool { return sink.lastState("y") == -1 })
	back := time.Now()
	slave.with(1, func(_ *bank, s *rtuSlave) { s.silent[1], s.silent[2] = false, false })
	eventually(t, 5*time.Second, "x up again", func() bool { return sink.lastState("x") == 1 })
	took := time.Since(back)
	t.Logf("x, quarantined before the line was cut, up %v after the line came back (poll interval 100ms)", took.Round(time.Millisecond))
	if took > 100*time.Millisecond+2*50*time.Millisecond+time.Second { // slack for a loaded CI machine; x's next probe was seconds away
		t.Errorf("x back after %v", took)
	}
}

// TestServerBackWithinOnePollInterval: a Modbus TCP server is down (connection refused) for
// eight poll intervals; the connection is retried at the poll interval at most, so the
// device is up within one poll interval of the server's return.
func TestServerBackWithinOnePollInterval(t *testing.T) {
	srv := newTestServer(t, 1)
	dev := tcpDevice("plc", srv, 1, TagOptions{Name: "a", Address: "40001"})
	dev.PollInterval, dev.Timeout = 300*time.Millisecond, 200*time.Millisecond
	_, sink := startDriver(t, Options{Devices: []DeviceOptions{dev}})
	eventually(t, 5*time.Second, "up", func() bool { return sink.lastState("plc") == 1 })
	srv.stop()
	eventually(t, 5*time.Second, "down", func() bool { return sink.lastState("plc") == -1 })
	time.Sleep(2500 * time.Millisecond) // the outage
	srv.start()
	back := time.Now()
	eventually(t, 5*time.Second, "up again", func() bool { return sink.lastState("plc") == 1 })
	took := time.Since(back)
	t.Logf("device up %v after the server came back (poll interval 300ms)", took.Round(time.Millisecond))
	if took > 300*time.Millisecond+time.Second { // slack for a loaded CI machine
		t.Errorf("back after %v, more than one poll interval", took)
	}
}

// TestQuarantineCappedByMaxBackoff: a slave stops answering while its neighbour keeps
// answering; it is quarantined (probed far less often than its poll rate, to spare the
// neighbour its timeouts), but never more than max_backoff apart, so it is back within
// max_backoff of its return however long it was away.
func TestQuarantineCappedByMaxBackoff(t *testing.T) {
	a, b := ptyPair(t)
	slave := newRTUSlave(t, b, 1, 2)
	x := rtuDevice("x", a, 1, TagOptions{Name: "v", Address: "hr:0"})
	x.PollInterval, x.Timeout, x.MaxBackoff = 100*time.Millisecond, 50*time.Millisecond, 300*time.Millisecond
	y := rtuDevice("y", a, 2, TagOptions{Name: "v", Address: "hr:0"})
	y.PollInterval, y.Timeout = 100*time.Millisecond, time.Second
	_, sink := startDriver(t, Options{Devices: []DeviceOptions{x, y}})
	eventually(t, 5*time.Second, "up", func() bool { return sink.lastState("x") == 1 && sink.lastState("y") == 1 })
	slave.with(1, func(_ *bank, s *rtuSlave) { s.silent[1] = true })
	eventually(t, 5*time.Second, "x down", func() bool { return sink.lastState("x") == -1 })
	probes := slave.counter(&slave.seen, 1)
	time.Sleep(3500 * time.Millisecond) // the outage
	probes = slave.counter(&slave.seen, 1) - probes
	back := time.Now()
	slave.with(1, func(_ *bank, s *rtuSlave) { s.silent[1] = false })
	eventually(t, 5*time.Second, "x up again", func() bool { return sink.lastState("x") == 1 })
	took := time.Since(back)
	t.Logf("quarantined x probed %d times in 3.5s (35 polls), up %v after its return (max_backoff 300ms)", probes, took.Round(time.Millisecond))
	if probes > 16 || probes < 5 {
		t.Errorf("x probed %d times in 3.5 s: want about one per max_backoff", probes)
	}
	// At worst a probe was in flight: its timeout, then max_backoff.
	if took > 50*time.Millisecond+300*time.Millisecond+time.Second { // slack for a loaded CI machine; the old cap was 30 s
		t.Errorf("back after %v, more than max_backoff", took)
	}
	if sink.lastState("y") != 1 || sink.badCount("y") != 0 {
		t.Error("the neighbour suffered")
	}
}

// runUntilCancel runs the driver and returns a function that cancels it and reports how long
// Run took to return.
func runUntilCancel(t *testing.T, d *Driver, sink *testSink) func() time.Duration {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, sink) }()
	t.Cleanup(cancel)
	return func() time.Duration {
		start := time.Now()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return")
		}
		return time.Since(start)
	}
}

// TestStopDuringSlowRead: the gateway stops (its context is cancelled, as on SIGTERM, or Close
// is called) while a request with a 2.5 s timeout waits for a device that does not answer. Run
// returns at once, over a serial line and over TCP, not when the read times out.
func TestStopDuringSlowRead(t *testing.T) {
	const limit = time.Second // far below the 2.5 s read, with room for a loaded CI machine
	t.Run("rtu/cancel", func(t *testing.T) {
		a, b := ptyPair(t)
		slave := newRTUSlave(t, b, 1)
		slave.with(1, func(_ *bank, s *rtuSlave) { s.silent[1] = true })
		dev := rtuDevice("plc", a, 1, TagOptions{Name: "v", Address: "hr:0"})
		dev.Timeout = 2500 * time.Millisecond
		d, err := New(Options{Devices: []DeviceOptions{dev}}, testLogger())
		if err != nil {
			t.Fatal(err)
		}
		stop := runUntilCancel(t, d, newTestSink())
		eventually(t, 5*time.Second, "a request in flight", func() bool { return slave.counter(&slave.seen, 1) >= 1 })
		time.Sleep(100 * time.Millisecond) // well inside the read
		took := stop()
		t.Logf("Run returned %v after the cancel, 100ms into a 2.5s read", took.Round(time.Microsecond))
		if took > limit {
			t.Errorf("Run took %v to stop", took)
		}
	})
	t.Run("tcp/close", func(t *testing.T) {
		srv := newRawTCPServer(t, func([]byte) [][]byte { return nil })
		dev := tcpOptions("plc", srv.addr, 1, TagOptions{Name: "v", Address: "hr:0"})
		dev.Timeout = 2500 * time.Millisecond
		d, err := New(Options{Devices: []DeviceOptions{dev}}, testLogger())
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- d.Run(context.Background(), newTestSink()) }()
		eventually(t, 5*time.Second, "a request in flight", func() bool { return srv.count() >= 1 })
		time.Sleep(100 * time.Millisecond)
		start := time.Now()
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		took := time.Since(start)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(time.Second):
			t.Fatal("Run still running after Close")
		}
		t.Logf("Close returned %v after it was called, 100ms into a 2.5s read", took.Round(time.Microsecond))
		if took > limit {
			t.Errorf("Close took %v", took)
		}
	})
	t.Run("tcp/cancel", func(t *testing.T) {
		srv := newRawTCPServer(t, func([]byte) [][]byte { return nil })
		dev := tcpOptions("plc", srv.addr, 1, TagOptions{Name: "v", Address: "hr:0"})
		dev.Timeout = 2500 * time.Millisecond
		d, err := New(Options{Devices: []DeviceOptions{dev}}, testLogger())
		if err != nil {
			t.Fatal(err)
		}
		stop := runUntilCancel(t, d, newTestSink())
		eventually(t, 5*time.Second, "a request in flight", func() bool { return srv.count() >= 1 })
		time.Sleep(100 * time.Millisecond)
		if took := stop(); took > limit {
			t.Errorf("Run took %v to stop", took)
		}
	})
}

// TestSplitIsolatesRefusedRegister: a merged read is refused because of one register in a
// hole between tags. Only that register becomes a cut: reads still span the holes the device
// accepts. Tags hr:0, 2, 4, 6 with max_gap 1 and hr:3 refused make two reads, not four; tags
// 100, 110, 120 with max_gap 10 and hr:113 refused make two reads, found by halving the hole.
func TestSplitIsolatesRefusedRegister(t *testing.T) {
	srv := newTestServer(t, 1)
	srv.with(1, func(b *bank) {
		b.illegal[holdingRegisters] = map[uint16]bool{3: true, 113: true}
		for i := range 121 {
			b.holding[i] = uint16(1000 + i)
		}
	})
	small := tcpDevice("small", srv, 1)
	for _, at := range []string{"hr:0", "hr:2", "hr:4", "hr:6"} {
		small.Tags = append(small.Tags, TagOptions{Name: at, Address: at})
	}
	small.MaxGap = 1
	wide := tcpDevice("wide", srv, 1)
	for _, at := range []string{"hr:100", "hr:110", "hr:120"} {
		wide.Tags = append(wide.Tags, TagOptions{Name: at, Address: at})
	}
	wide.MaxGap = 10
	d, sink := startDriver(t, Options{Devices: []DeviceOptions{small, wide}})
	for dev, tags := range map[string][]int{"small": {0, 2, 4, 6}, "wide": {100, 110, 120}} {
		for _, at := range tags {
			name := "hr:" + strconv.Itoa(at)
			eventually(t, 5*time.Second, dev+" "+name, good(sink, dev, name, drivers.UintValue(drivers.UInt16, uint64(1000+at))))
		}
	}
	var plan bytes.Buffer
	d.WritePlan(&plan)
	if !strings.HasSuffix(plan.String(), "\n4 requests per poll cycle\n") {
		t.Fatalf("plan after the splits:\n%s", plan.String())
	}
	b0 := sink.batchCount("small")
	eventually(t, 5*time.Second, "3 more cycles", func() bool { return sink.batchCount("small") >= b0+3 })
	if n := statusOf(d, "small").ErrorsByKind[kindException]; n > 3 {
		t.Errorf("%d exceptions: the split is not kept", n)
	}
}
