package modbus

import (
	"bytes"
	"strings"
	"testing"
	"time"

	smodbus "github.com/simonvetter/modbus"

	"github.com/wellgate/wellgate/drivers"
)

func statusOf(d *Driver, name string) drivers.DeviceStatus {
	for _, s := range d.Status() {
		if s.Device == name {
			return s
		}
	}
	return drivers.DeviceStatus{}
}

func good(sink *testSink, dev, tag string, want drivers.Value) func() bool {
	return func() bool {
		s, ok := sink.sample(dev, tag)
		return ok && s.Quality == drivers.Good && s.Value.Equal(want)
	}
}

func isBad(sink *testSink, dev, tag string) func() bool {
	return func() bool {
		s, ok := sink.sample(dev, tag)
		return ok && s.Quality == drivers.Bad && s.Value.IsNull()
	}
}

func TestExceptionReply(t *testing.T) {
	srv := newTestServer(t, 1)
	srv.with(1, func(b *bank) { b.exception, b.holding[0] = smodbus.ErrServerDeviceFailure, 7 })
	d, sink := startDriver(t, Options{Devices: []DeviceOptions{
		tcpDevice("plc", srv, 1, TagOptions{Name: "a", Address: "40001"}, TagOptions{Name: "c", Address: "00001"}),
	}})
	eventually(t, 5*time.Second, "bad quality", isBad(sink, "plc", "a"))
	if s, _ := sink.sample("plc", "a"); s.Value.Type() != drivers.UInt16 {
		t.Errorf("null value lost its type: %v", s.Value.Type())
	}
	eventually(t, 5*time.Second, "exceptions counted", func() bool { return statusOf(d, "plc").ErrorsByKind["exception"] >= 2 })
	if st := statusOf(d, "plc"); !st.Up || sink.lastState("plc") != 1 {
		t.Errorf("a device answering exceptions is answering: up=%v state=%d", st.Up, sink.lastState("plc"))
	}
	srv.with(1, func(b *bank) { b.exception = nil })
	eventually(t, 5*time.Second, "good again", good(sink, "plc", "a", drivers.UintValue(drivers.UInt16, 7)))
}

// TestSlowDevice: a reply that arrives after the timeout must not poison the connection (with
// goburrow every later request would fail with a transaction id mismatch): the next request
// succeeds.
func TestSlowDevice(t *testing.T) {
	srv := newTestServer(t, 1)
	dev := tcpDevice("plc", srv, 1, TagOptions{Name: "a", Address: "40001"})
	dev.Timeout = 100 * time.Millisecond
	d, sink := startDriver(t, Options{Devices: []DeviceOptions{dev}})
	eventually(t, 5*time.Second, "first value", good(sink, "plc", "a", drivers.UintValue(drivers.UInt16, 0)))
	srv.with(1, func(b *bank) { b.delay = 250 * time.Millisecond })
	eventually(t, 5*time.Second, "a timeout", func() bool { return statusOf(d, "plc").ErrorsByKind["timeout"] >= 1 })
	srv.with(1, func(b *bank) { b.delay, b.holding[0] = 0, 42 })
	eventually(t, 5*time.Second, "the next value", good(sink, "plc", "a", drivers.UintValue(drivers.UInt16, 42)))
	st := statusOf(d, "plc")
	if st.ErrorsByKind["garbage"] != 0 {
		t.Errorf("late reply poisoned later requests: %v", st.ErrorsByKind)
	}
}

func TestServerRestart(t *testing.T) {
	srv := newTestServer(t, 1)
	srv.with(1, func(b *bank) { b.holding[0] = 1 })
	d, sink := startDriver(t, Options{Devices: []DeviceOptions{
		tcpDevice("plc", srv, 1, TagOptions{Name: "a", Address: "40001"}),
	}})
	eventually(t, 5*time.Second, "up", func() bool { return sink.lastState("plc") == 1 })
	srv.stop()
	eventually(t, 5*time.Second, "down", func() bool { return sink.lastState("plc") == -1 })
	eventually(t, 5*time.Second, "bad", isBad(sink, "plc", "a"))
	if statusOf(d, "plc").Up {
		t.Error("status says up")
	}
	srv.with(1, func(b *bank) { b.holding[0] = 2 })
	srv.start()
	eventually(t, 10*time.Second, "up again", func() bool { return sink.lastState("plc") == 1 })
	eventually(t, 5*time.Second, "new value", good(sink, "plc", "a", drivers.UintValue(drivers.UInt16, 2)))
}

func TestConnectionRefusedAtStart(t *testing.T) {
	addr := freeAddr(t)
	dev := tcpOptions("plc", addr, 1, TagOptions{Name: "a", Address: "40001"})
	dev.PollInterval, dev.Timeout = 50*time.Millisecond, 500*time.Millisecond
	d, sink := startDriver(t, Options{Devices: []DeviceOptions{dev}})
	eventually(t, 5*time.Second, "down", func() bool { return sink.lastState("plc") == -1 })
	if n := statusOf(d, "plc").ErrorsByKind["connection"]; n < 2 {
		t.Errorf("connection errors %d", n)
	}
	srv := newTestServerAt(t, addr, 1)
	srv.with(1, func(b *bank) { b.holding[0] = 5 })
	eventually(t, 10*time.Second, "up", func() bool { return sink.lastState("plc") == 1 })
	eventually(t, 5*time.Second, "value", good(sink, "plc", "a", drivers.UintValue(drivers.UInt16, 5)))
}

// TestDeadSlaveAmongThree: three unit ids behind one endpoint (a TCP-to-RTU bridge); unit 2
// stops answering. Units 1 and 3 keep their poll rate, and unit 2 costs at most one timeout
// per cycle, then less and less as its quarantine grows. Rates are measured with counters.
func TestDeadSlaveAmongThree(t *testing.T) {
	srv := newTestServer(t, 1, 2, 3)
	var devs []DeviceOptions
	for i, name := range []string{"u1", "u2", "u3"} {
		dev := tcpDevice(name, srv, i+1, TagOptions{Name: "a", Address: "40001"})
		dev.PollInterval, dev.Timeout = 100*time.Millisecond, 100*time.Millisecond
		devs = append(devs, dev)
	}
	d, sink := startDriver(t, Options{Devices: devs})
	eventually(t, 5*time.Second, "all up", func() bool {
		return sink.lastState("u1") == 1 && sink.lastState("u2") == 1 && sink.lastState("u3") == 1
	})
	srv.with(2, func(b *bank) { b.delay = 10 * time.Second })
	eventually(t, 5*time.Second, "u2 down", func() bool { return sink.lastState("u2") == -1 })
	if sink.lastState("u1") != 1 || sink.lastState("u3") != 1 {
		t.Fatal("a dead slave took the others down")
	}
	r1, r3, dead := srv.reads(1, holdingRegisters), srv.reads(3, holdingRegisters), statusOf(d, "u2").Requests
	start := time.Now()
	const cycles = 20
	eventually(t, 10*time.Second, "u1 polls", func() bool { return srv.reads(1, holdingRegisters) >= r1+cycles })
	elapsed := time.Since(start)
	got3 := srv.reads(3, holdingRegisters) - r3
	probes := statusOf(d, "u2").Requests - dead
	ideal := float64(elapsed) / float64(100*time.Millisecond)
	t.Logf("in %v: u1 %d cycles, u3 %d cycles (ideal %.1f), dead u2 probed %d times", elapsed.Round(time.Millisecond), cycles, got3, ideal, probes)
	if float64(got3) < 0.6*cycles {
		t.Errorf("u3 polled %d times while u1 polled %d", got3, cycles)
	}
	if probes > cycles/4 {
		t.Errorf("dead u2 probed %d times in %d cycles: not quarantined", probes, cycles)
	}
	if float64(cycles) < 0.5*ideal {
		t.Errorf("u1 made %d cycles of an ideal %.1f", cycles, ideal)
	}
}

// TestIllegalAddressSplit: one tag in a merged read has an address the device refuses. The
// read is split, every other tag stays good in the same cycle, the refused tag alone is bad,
// and the split is remembered: later cycles make the same three reads without retrying.
func TestIllegalAddressSplit(t *testing.T) {
	srv := newTestServer(t, 1)
	var tags []TagOptions
	for i := range 10 {
		tags = append(tags, TagOptions{Name: string(rune('a' + i)), Address: "hr:" + string(rune('0'+i))})
	}
	tags = append(tags, TagOptions{Name: "g1", Address: "hr:20"}, TagOptions{Name: "g2", Address: "hr:22"})
	srv.with(1, func(b *bank) {
		b.illegal[holdingRegisters] = map[uint16]bool{4: true, 21: true}
		for i := range 23 {
			b.holding[i] = uint16(100 + i)
		}
	})
	dev := tcpDevice("plc", srv, 1, tags...)
	dev.MaxGap = 1
	d, sink := startDriver(t, Options{Devices: []DeviceOptions{dev}})
	eventually(t, 5*time.Second, "up", func() bool { return sink.lastState("plc") == 1 })
	for i := range 10 {
		name := string(rune('a' + i))
		if i == 4 {
			eventually(t, time.Second, name+" bad", isBad(sink, "plc", name))
			continue
		}
		eventually(t, time.Second, name+" good", good(sink, "plc", name, drivers.UintValue(drivers.UInt16, uint64(100+i))))
	}
	eventually(t, time.Second, "g1", good(sink, "plc", "g1", drivers.UintValue(drivers.UInt16, 120)))
	eventually(t, time.Second, "g2", good(sink, "plc", "g2", drivers.UintValue(drivers.UInt16, 122)))
	var plan bytes.Buffer
	d.WritePlan(&plan)
	if !strings.HasSuffix(plan.String(), "\n5 requests per poll cycle\n") {
		t.Fatalf("plan after the split:\n%s", plan.String())
	}
	before := srv.reads(1, holdingRegisters)
	b0 := sink.batchCount("plc")
	eventually(t, 5*time.Second, "5 more cycles", func() bool { return sink.batchCount("plc") >= b0+5 })
	after, b1 := srv.reads(1, holdingRegisters), sink.batchCount("plc")
	// Every cycle started after b0 and finished by b1 makes 5 reads; allow one cycle in flight.
	if n := after - before; n < 5*(b1-b0) || n > 5*(b1-b0+1) {
		t.Errorf("%d reads in %d cycles, want 5 per cycle", n, b1-b0)
	}
}
