package bridge

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wellgate/wellgate/bridge/queue"
	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/internal/clock"
	"github.com/wellgate/wellgate/sparkplug"
)

// harness runs a Bridge with a real Session and a Disk queue in a temporary data dir, on a
// fake clock that the harness's waits move along (see wait).
type harness struct {
	t      *testing.T
	dir    string
	b      *Bridge
	sess   *sparkplug.Session
	q      *queue.Disk
	log    *logBuffer
	clk    *clock.Fake
	cancel context.CancelFunc
	done   chan error
	base   time.Time

	mu     sync.Mutex
	next   int
	writes []sparkplug.Write
}

var testDevices = []drivers.DeviceInfo{{
	Name: "well1", Driver: "test",
	Tags: []drivers.TagInfo{
		{Name: "counter", Type: drivers.Int64},
		{Name: "setpoint", Type: drivers.Double, Writable: true, Deadband: 1},
	},
}}

// metricNextServer is the node metric the harness, like the gateway, moves the bridge with.
const metricNextServer = "Node Control/Next Server"

var testNodeMetrics = []drivers.TagInfo{{Name: metricNextServer, Type: drivers.Boolean, Writable: true}}

// testOptions are the upstream settings the tests use: a 1s keepalive (the shortest MQTT
// has), fast replay and a 5s detection window. The tests feed samples once the bridge is
// online, so births do not wait for a first poll (TestBirthsWaitForFirstPoll sets the wait).
func testOptions(servers ...string) Options {
	return Options{
		Servers:         servers,
		Keepalive:       time.Second,
		ConnectTimeout:  2 * time.Second,
		ReplayRate:      20000,
		DetectionWindow: 5 * time.Second,
		FirstPollWait:   -1,
	}
}

// newHarness builds (but does not start) a bridge on dir ("" for a new temporary one) with
// opts (from testOptions). Its OnCommand acts as the gateway does: it records the writes,
// moves to the next server when asked, and reads every device write back through Written.
func newHarness(t *testing.T, dir string, opts Options, mod func(*Options, *sparkplug.Options)) *harness {
	t.Helper()
	return newHarnessQueue(t, dir, queue.Options{SyncInterval: 20 * time.Millisecond}, opts, mod)
}

// newHarnessQueue is newHarness with the queue's options.
func newHarnessQueue(t *testing.T, dir string, qopts queue.Options, opts Options, mod func(*Options, *sparkplug.Options)) *harness {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	log, lb := testLogger(t)
	h := &harness{t: t, dir: dir, log: lb, base: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	h.clk = clock.NewFake(h.base)
	so := sparkplug.Options{GroupID: "G", EdgeNodeID: "E", Devices: testDevices, NodeMetrics: testNodeMetrics, Logger: log, Now: h.clk.Now}
	opts.Logger, opts.Clock = log, h.clk
	opts.ReconnectMin, opts.ReconnectMax = 50*time.Millisecond, 200*time.Millisecond
	opts.OnCommand = h.onCommand
	if mod != nil {
		mod(&opts, &so)
	}
	var err error
	if h.sess, err = sparkplug.NewSession(so); err != nil {
		t.Fatal(err)
	}
	if h.q, err = queue.OpenDisk(filepath.Join(dir, "queue"), qopts, log); err != nil {
		t.Fatal(err)
	}
	seq, err := sparkplug.NewBdSeqStore(filepath.Join(dir, "bdseq"))
	if err != nil {
		t.Fatal(err)
	}
	opts.Session, opts.Queue, opts.BdSeq = h.sess, h.q, seq
	if h.b, err = New(opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.stop)
	return h
}

func (h *harness) onCommand(ws []sparkplug.Write) {
	h.mu.Lock()
	h.writes = append(h.writes, ws...)
	h.mu.Unlock()
	for _, w := range ws {
		switch {
		case w.Device == "" && w.Tag == metricNextServer && w.Value.Bool():
			_ = h.b.NextServer() // refused within the hold-off: counted in Status
		case w.Device != "":
			h.b.Written([]drivers.Sample{{Device: w.Device, Tag: w.Tag, Value: w.Value, Quality: drivers.Good, Time: h.clk.Now()}})
		}
	}
}

func (h *harness) start() *harness {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.b.Run(ctx) }()
	return h
}

// stop cancels Run, waits for it, closes the bridge and the queue. Idempotent.
func (h *harness) stop() {
	if h.cancel != nil {
		h.cancel()
		select {
		case err := <-h.done:
			if err != nil {
				h.t.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			h.t.Errorf("Run did not return 20s after cancel")
		}
		h.cancel = nil
	}
	if err := h.b.Close(); err != nil {
		h.t.Errorf("Close: %v", err)
	}
	if h.q != nil {
		h.q.Close()
	}
}

// waitFor polls cond until it holds, moving the fake clock along with real time: the
// bridge's timers (reconnect delays, the detection window) keep their meaning against what
// real peers do, such as a keepalive noticing a dead link.
func (h *harness) waitFor(d time.Duration, what string, cond func() bool) {
	h.t.Helper()
	h.wait(d, what, cond, 0)
}

// waitSkipping polls cond, moving the fake clock ahead of real time (20×): for waits on the
// bridge's own timers, such as the detection window that confirms replayed QoS 0 data, while
// the link is known to be healthy.
func (h *harness) waitSkipping(d time.Duration, what string, cond func() bool) {
	h.t.Helper()
	h.wait(d, what, cond, 100*time.Millisecond)
}

func (h *harness) wait(d time.Duration, what string, cond func() bool, skip time.Duration) {
	h.t.Helper()
	start := time.Now()
	last := start
	for !cond() {
		now := time.Now()
		if now.Sub(start) > d {
			h.t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		h.clk.Advance(now.Sub(last) + skip)
		last = now
		time.Sleep(5 * time.Millisecond) // polling, not synchronisation
	}
}

// produce delivers n counter samples (values next, next+1, …; time base + value ms).
func (h *harness) produce(n int) {
	h.mu.Lock()
	from := h.next
	h.next += n
	h.mu.Unlock()
	for i := from; i < from+n; i++ {
		h.b.Samples([]drivers.Sample{{
			Device: "well1", Tag: "counter", Value: drivers.IntValue(drivers.Int64, int64(i)),
			Quality: drivers.Good, Time: h.base.Add(time.Duration(i) * time.Millisecond),
		}})
	}
}

func (h *harness) produced() int { h.mu.Lock(); defer h.mu.Unlock(); return h.next }

// onLoop runs fn on the bridge's run loop, as an event, and waits for it: a race-free look at
// the loop's own state.
func (h *harness) onLoop(fn func(b *Bridge)) {
	h.t.Helper()
	done := make(chan struct{})
	if !h.b.mail.put(loopFunc{fn, done}) {
		h.t.Fatal("onLoop: the run loop has stopped")
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		h.t.Fatal("onLoop: the run loop did not take the event within 10s")
	}
}

// loopFunc is a test's function run on the loop (see onLoop).
type loopFunc struct {
	fn   func(b *Bridge)
	done chan struct{}
}

func (ev loopFunc) apply(b *Bridge) { ev.fn(b); close(ev.done) }

// waitFirstProbe waits until the live connection's first proof probe has been answered. The
// first probe goes out on the first tick after the births are written, whatever ProofInterval
// (a new connection has no last probe); the next one not before ProofInterval has passed. A
// test that needs values left without proof (ProofInterval: an hour) waits for it before
// publishing them: else the first probe, on a tick the waits' clock reaches while the values go
// out (sooner on a loaded box), proves some of them.
func (h *harness) waitFirstProbe(d time.Duration) {
	h.t.Helper()
	h.waitFor(d, "the connection's first proof probe", func() bool {
		done := false
		h.onLoop(func(b *Bridge) {
			l := &b.loop
			done = l.live && l.conn != nil && !l.lastProbe.IsZero() && !l.conn.probing.Load()
		})
		return done
	})
}

func (h *harness) waitState(st State, d time.Duration) {
	h.t.Helper()
	h.waitFor(d, "bridge state "+string(st), func() bool { return h.b.Status().State == st })
}

// counterValue is one "counter" metric value seen upstream.
type counterValue struct {
	v          int64
	historical bool
	birth      bool // carried by a DBIRTH (its latest value at birth time)
	ts         uint64
	index      int // message index in the collector
}

// analyze splits what the collector saw into births and counter values: those of DDATA and
// those a DBIRTH carried (a birth carries a metric's latest value with its sample's time, and
// the replay then skips it: it is delivered by the birth).
func analyze(msgs []received) (nbirths []int, values []counterValue) {
	for i, m := range msgs {
		if m.payload == nil {
			continue
		}
		switch m.topic {
		case "spBv1.0/G/NBIRTH/E":
			nbirths = append(nbirths, i)
		case "spBv1.0/G/DDATA/E/well1", "spBv1.0/G/DBIRTH/E/well1":
			for _, mt := range m.payload.Metrics {
				if mt.Name != "counter" || mt.IsNull {
					continue
				}
				v, _ := mt.DriverValue(drivers.Int64)
				values = append(values, counterValue{v: v.Int(), historical: mt.IsHistorical, ts: mt.Timestamp, index: i,
					birth: m.topic == "spBv1.0/G/DBIRTH/E/well1"})
			}
		}
	}
	return nbirths, values
}

// checkAllArrived checks that every value 0..n-1 arrived, that historical values carry their
// original timestamps and that, within each connection, historical values come in order.
func checkAllArrived(t *testing.T, h *harness, msgs []received, n int) (live, hist int) {
	t.Helper()
	nb, values := analyze(msgs)
	seen := make([]bool, n)
	last := int64(-1)
	for _, cv := range values {
		for len(nb) > 0 && cv.index > nb[0] { // a new connection: its backlog starts over
			nb, last = nb[1:], -1
		}
		if cv.v < 0 || cv.v >= int64(n) {
			continue
		}
		seen[cv.v] = true
		if want := uint64(h.base.Add(time.Duration(cv.v) * time.Millisecond).UnixMilli()); cv.ts != want {
			t.Fatalf("value %d has timestamp %d, want %d", cv.v, cv.ts, want)
		}
		if cv.historical {
			hist++
			if cv.v <= last {
				t.Errorf("historical value %d after %d: out of order", cv.v, last)
			}
			last = cv.v
		} else {
			live++
		}
	}
	for v, ok := range seen {
		if !ok {
			t.Fatalf("value %d never arrived (%d values seen, %d live, %d historical)", v, len(values), live, hist)
		}
	}
	return live, hist
}

func allArrived(msgs []received, n int) bool {
	_, values := analyze(msgs)
	seen := make([]bool, n)
	k := 0
	for _, cv := range values {
		if cv.v >= 0 && cv.v < int64(n) && !seen[cv.v] {
			seen[cv.v] = true
			k++
		}
	}
	return k == n
}
