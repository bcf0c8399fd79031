package opcua

import (
	"strings"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/internal/peers"
)

// itemsOn returns how many monitored items the server holds on a node.
func (ts *testServer) itemsOn(name string) int {
	m := ts.srv.MonitoredItemService
	m.Mu.Lock()
	defer m.Mu.Unlock()
	return len(m.Nodes[ua.NewStringNodeID(ts.ns.ID(), name).String()])
}

// waitSubscribed waits until the server has a monitored item on a variable.
func waitSubscribed(t *testing.T, ts *testServer, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for ts.itemsOn(name) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no monitored item on %s", name)
		}
		time.Sleep(5 * time.Millisecond) // polling the server's state with a deadline
	}
}

// checkUpAfterSamples checks that, after the last down of device, the first up came after
// a batch with a good sample of every tag: a DBIRTH carries current values.
func checkUpAfterSamples(t *testing.T, events []event, device string, tags int) {
	t.Helper()
	good := map[string]bool{}
	sawDown := false
	for _, e := range events {
		switch {
		case e.state && e.device == device && !e.up:
			sawDown, good = true, map[string]bool{}
		case e.state && e.device == device && e.up:
			if !sawDown {
				continue
			}
			if len(good) < tags {
				t.Fatalf("device %s up after good samples of %d tags, want %d", device, len(good), tags)
			}
			return
		case !e.state:
			for _, s := range e.samples {
				if s.Device == device && s.Quality == drivers.Good {
					good[s.Tag] = true
				}
			}
		}
	}
	t.Fatalf("device %s never came up after going down", device)
}

// TestRefusedAtStartThenUp: a server that refuses connections makes the device down with bad
// samples; once it accepts, the device's samples come first, then up.
func TestRefusedAtStartThenUp(t *testing.T) {
	ts := shared(t)
	node := ts.add("refused.level", ua.TypeIDDouble, 1.5, false)
	p := newProxy(t, ts.addr, false)
	o := ts.device("Refused", ModeSubscribe, TagOptions{Name: "Level", NodeID: node, Type: "Double"})
	o.Endpoint = p.url()
	r := startDriver(t, Options{Devices: []DeviceOptions{o}})
	r.sink.waitFor(t, 5*time.Second, "down", func() bool { return r.sink.state("Refused") == -1 })
	if s, _ := r.sink.sample("Refused", "Level"); s.Quality != drivers.Bad || !s.Value.IsNull() {
		t.Fatalf("sample while refused: %+v", s)
	}
	if st := r.d.Status()[0]; st.Up || st.ErrorsByKind[kindConnection] == 0 || st.LastError == "" {
		t.Fatalf("status while refused: %+v", st)
	}
	p.listen()
	r.sink.waitValue(t, 10*time.Second, "Refused", "Level", drivers.Good, drivers.DoubleValue(1.5))
	r.sink.waitFor(t, 5*time.Second, "up", func() bool { return r.sink.state("Refused") == 1 })
	checkUpAfterSamples(t, r.sink.snapshot(), "Refused", 1)
}

// TestCutWhileServerKeepsSession cuts the TCP connections between the driver and a server that
// keeps running (and keeps the session), refuses reconnection for a while and then lets it
// through: the device goes down, comes back, data flows again within a bounded time, and the
// server is left with exactly one monitored item (the broken session's subscription deleted).
func TestCutWhileServerKeepsSession(t *testing.T) {
	ts := shared(t)
	node := ts.add("cut.level", ua.TypeIDDouble, 0.0, false)
	p := newProxy(t, ts.addr, true)
	o := ts.device("Cut", ModeSubscribe, TagOptions{Name: "Level", NodeID: node, Type: "Double"})
	o.Endpoint = p.url()
	r := startDriver(t, Options{Devices: []DeviceOptions{o}})
	waitSubscribed(t, ts, "cut.level")
	ts.set("cut.level", 1.0, time.Now())
	r.sink.waitValue(t, 5*time.Second, "Cut", "Level", drivers.Good, drivers.DoubleValue(1))

	// A cut that heals at once: no down, data flows again, one item.
	p.cut()
	ts.set("cut.level", 2.0, time.Now())
	r.sink.waitValue(t, 5*time.Second, "Cut", "Level", drivers.Good, drivers.DoubleValue(2))
	if ts.itemsOn("cut.level") > 2 {
		t.Fatalf("%d monitored items after a healed cut", ts.itemsOn("cut.level"))
	}

	// A cut that lasts: down, then back.
	p.refuse()
	p.cut()
	r.sink.waitFor(t, 10*time.Second, "down", func() bool { return r.sink.state("Cut") == -1 })
	ts.set("cut.level", 3.0, time.Now())
	healed := time.Now()
	p.listen()
	r.sink.waitValue(t, 10*time.Second, "Cut", "Level", drivers.Good, drivers.DoubleValue(3))
	r.sink.waitFor(t, 5*time.Second, "up", func() bool { return r.sink.state("Cut") == 1 })
	if took := time.Since(healed); took > 5*time.Second {
		t.Errorf("data flowed again %v after the cut healed", took)
	}
	checkUpAfterSamples(t, r.sink.snapshot(), "Cut", 1)
	ts.set("cut.level", 4.0, time.Now())
	r.sink.waitValue(t, 5*time.Second, "Cut", "Level", drivers.Good, drivers.DoubleValue(4))
	r.sink.waitFor(t, 5*time.Second, "one monitored item", func() bool { return ts.itemsOn("cut.level") == 1 })
}

// TestBlackHole stops every byte between the driver and the server without closing anything:
// the keep-alive finds the dead link, the device goes down, and comes back when bytes flow.
func TestBlackHole(t *testing.T) {
	ts := shared(t)
	node := ts.add("hole.level", ua.TypeIDDouble, 0.0, false)
	p := newProxy(t, ts.addr, true)
	o := ts.device("Hole", ModeSubscribe, TagOptions{Name: "Level", NodeID: node, Type: "Double"})
	o.Endpoint, o.Timeout = p.url(), 300*time.Millisecond
	r := startDriver(t, Options{Devices: []DeviceOptions{o}})
	waitSubscribed(t, ts, "hole.level")
	ts.set("hole.level", 1.0, time.Now())
	r.sink.waitValue(t, 5*time.Second, "Hole", "Level", drivers.Good, drivers.DoubleValue(1))
	p.setBlackhole(true)
	r.sink.waitFor(t, 10*time.Second, "down", func() bool { return r.sink.state("Hole") == -1 })
	p.setBlackhole(false)
	p.cut() // the connections black-holed so far are useless: as a router reboot would
	ts.set("hole.level", 2.0, time.Now())
	r.sink.waitValue(t, 10*time.Second, "Hole", "Level", drivers.Good, drivers.DoubleValue(2))
	r.sink.waitFor(t, 5*time.Second, "up", func() bool { return r.sink.state("Hole") == 1 })
	r.sink.waitFor(t, 5*time.Second, "one monitored item", func() bool { return ts.itemsOn("hole.level") == 1 })
}

// TestWatchdogFindsSilentSubscription deletes the driver's subscription on the server behind
// its back: the session still answers (reads work, the client says Connected), but no data
// comes — the state gopcua #895 leaves a client in. The data watchdog notices a change that
// was not delivered and rebuilds the session.
func TestWatchdogFindsSilentSubscription(t *testing.T) {
	ts := shared(t)
	node := ts.add("silent.level", ua.TypeIDDouble, 0.0, false)
	o := ts.device("Silent", ModeSubscribe, TagOptions{Name: "Level", NodeID: node, Type: "Double"})
	r := startDriver(t, Options{Devices: []DeviceOptions{o}})
	waitSubscribed(t, ts, "silent.level")
	ts.set("silent.level", 1.0, time.Now())
	r.sink.waitValue(t, 5*time.Second, "Silent", "Level", drivers.Good, drivers.DoubleValue(1))
	m := ts.srv.MonitoredItemService
	m.Mu.Lock()
	items := m.Nodes[ua.NewStringNodeID(ts.ns.ID(), "silent.level").String()]
	sub := items[0].Sub.ID
	m.Mu.Unlock()
	ts.srv.SubscriptionService.DeleteSubscription(sub)
	ts.set("silent.level", 2.0, time.Now())
	r.sink.waitValue(t, 10*time.Second, "Silent", "Level", drivers.Good, drivers.DoubleValue(2))
	if !r.log.contains("silent") {
		t.Fatalf("no watchdog line in the log:\n%s", r.log)
	}
	if st := r.d.Status()[0]; st.ErrorsByKind[kindWatchdog] == 0 {
		t.Fatalf("status counts no watchdog error: %+v", st)
	}
	ts.set("silent.level", 3.0, time.Now())
	r.sink.waitValue(t, 5*time.Second, "Silent", "Level", drivers.Good, drivers.DoubleValue(3))
}

// TestServerKilledAndRestarted kills the server process (SIGKILL) and starts it again on the
// same port: the device goes down with bad tags and comes back with fresh data.
func TestServerKilledAndRestarted(t *testing.T) {
	addr := peers.FreePort(t)
	child := startChild(t, addr)
	o := DeviceOptions{Name: "Killed", Endpoint: "opc.tcp://" + addr, Interval: 50 * time.Millisecond,
		Timeout: time.Second, KeepAlive: 200 * time.Millisecond,
		Tags: []TagOptions{{Name: "Counter", NodeID: "nsu=urn:wellgate:test;s=counter", Type: "Int32"}}}
	r := startDriver(t, Options{Devices: []DeviceOptions{o}})
	r.sink.waitFor(t, 20*time.Second, "counting", func() bool {
		s, ok := r.sink.sample("Killed", "Counter")
		return ok && s.Quality == drivers.Good && s.Value.Int() > 2
	})
	child.kill()
	r.sink.waitFor(t, 10*time.Second, "down", func() bool { return r.sink.state("Killed") == -1 })
	if s, _ := r.sink.sample("Killed", "Counter"); s.Quality != drivers.Bad {
		t.Fatalf("counter after the kill: %+v", s)
	}
	startChild(t, addr)
	r.sink.waitFor(t, 30*time.Second, "counting again", func() bool {
		s, ok := r.sink.sample("Killed", "Counter")
		return ok && s.Quality == drivers.Good && s.Value.Int() > 2 && r.sink.state("Killed") == 1
	})
	checkUpAfterSamples(t, r.sink.snapshot(), "Killed", 1)
	if err := r.sink.lastErr("Killed"); err == nil || !strings.Contains(err.Error(), "") {
		t.Fatalf("down without an error")
	}
}

// TestSessionThatNeverDelivers: a server that accepts the session but fails every read of the
// tags' values is a device down, not one silently up without data.
func TestSessionThatNeverDelivers(t *testing.T) {
	ts := shared(t)
	node := ts.add("fail.level", ua.TypeIDDouble, 1.0, false)
	ts.mu.Lock()
	ts.failReads = map[string]bool{ua.NewStringNodeID(ts.ns.ID(), "fail.level").String(): true}
	ts.mu.Unlock()
	t.Cleanup(func() { ts.mu.Lock(); ts.failReads = nil; ts.mu.Unlock() })
	r := startDriver(t, Options{Devices: []DeviceOptions{ts.device("Fails", ModeSubscribe,
		TagOptions{Name: "Level", NodeID: node, Type: "Double"})}})
	r.sink.waitFor(t, 5*time.Second, "down", func() bool { return r.sink.state("Fails") == -1 })
	if err := r.sink.lastErr("Fails"); err == nil || !strings.Contains(err.Error(), "BadInternalError") {
		t.Fatalf("down with %v", err)
	}
	ts.mu.Lock()
	ts.failReads = nil
	ts.mu.Unlock()
	r.sink.waitValue(t, 10*time.Second, "Fails", "Level", drivers.Good, drivers.DoubleValue(1))
	r.sink.waitFor(t, 5*time.Second, "up", func() bool { return r.sink.state("Fails") == 1 })
}
