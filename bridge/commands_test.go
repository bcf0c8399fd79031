package bridge

import (
	"strings"
	"testing"
	"time"

	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/internal/peers"
	"github.com/wellgate/wellgate/sparkplug"
)

func rebirthCmd() []byte {
	p := sparkplug.Payload{Metrics: []sparkplug.Metric{{Name: sparkplug.MetricRebirth, Datatype: sparkplug.TypeBoolean,
		Value: sparkplug.WireValue{Kind: sparkplug.KindBool, Bits: 1}}}}
	return p.Marshal()
}

func setpointCmd(v float64) []byte {
	p := sparkplug.Payload{Metrics: []sparkplug.Metric{{Name: "setpoint", Datatype: sparkplug.TypeDouble}}}
	p.Metrics[0].SetValue(drivers.DoubleValue(v))
	return p.Marshal()
}

// A retained DCMD (and a retained NCMD Rebirth) left on the upstream broker is replayed at
// every connect: across three restarts it is ignored and counted, never written.
func TestRetainedCommandsIgnored(t *testing.T) {
	m := peers.StartMosquitto(t)
	col := newCollector(t, m.Addr)
	col.c.Publish("spBv1.0/G/DCMD/E/well1", 1, true, setpointCmd(99)).Wait()
	col.c.Publish("spBv1.0/G/NCMD/E", 1, true, rebirthCmd()).Wait()
	t.Cleanup(func() {
		col.c.Publish("spBv1.0/G/DCMD/E/well1", 1, true, []byte{}).Wait()
		col.c.Publish("spBv1.0/G/NCMD/E", 1, true, []byte{}).Wait()
	})
	dir := t.TempDir()
	for run := 1; run <= 3; run++ {
		h := newHarness(t, dir, testOptions(m.URL()), nil).start()
		h.waitState(StateOnline, 10*time.Second)
		h.waitFor(10*time.Second, "both retained commands", func() bool { return h.b.Status().CommandsRetained == 2 })
		// A live command on the same connection still works, after the retained ones.
		col.c.Publish("spBv1.0/G/DCMD/E/well1", 1, false, setpointCmd(float64(run))).Wait()
		h.waitFor(10*time.Second, "the live write", func() bool { h.mu.Lock(); defer h.mu.Unlock(); return len(h.writes) > 0 })
		// The bridge reports the written value (DDATA) after the births and after any rebirth
		// the retained NCMD could have caused, on the same connection; the broker hands one
		// publisher's messages to a subscriber in order. Once the collector has that DDATA it
		// has every NBIRTH of this run: a count taken sooner races the broker's delivery.
		h.waitFor(10*time.Second, "the written value upstream", func() bool { return sawSetpoint(col.all(), float64(run)) })
		h.mu.Lock()
		writes := append([]sparkplug.Write(nil), h.writes...)
		h.mu.Unlock()
		if len(writes) != 1 || writes[0].Value.Float64() != float64(run) {
			t.Fatalf("run %d: writes %+v, want only the live one (docs/sparkplug.md [cmd-retained-ignored])", run, writes)
		}
		if n := countTopic(col.all(), "spBv1.0/G/NBIRTH/E"); n != run {
			t.Fatalf("run %d: %d NBIRTHs, want %d: the retained Rebirth was obeyed", run, n, run)
		}
		if n := h.log.count("retained command ignored"); n != 1 {
			t.Errorf("run %d: %d log lines for the retained commands, want 1 (rate-limited)", run, n)
		}
		h.stop()
	}
}

// sawSetpoint reports whether a DDATA of well1 carried setpoint = v.
func sawSetpoint(msgs []received, v float64) bool {
	for _, m := range msgs {
		if m.topic != "spBv1.0/G/DDATA/E/well1" || m.payload == nil {
			continue
		}
		for _, mt := range m.payload.Metrics {
			if mt.Name != "setpoint" || mt.IsNull {
				continue
			}
			if dv, err := mt.DriverValue(drivers.Double); err == nil && dv.Float64() == v {
				return true
			}
		}
	}
	return false
}

// 1,000 Rebirth requests in a second give a bounded number of births: one per hold-off.
func TestRebirthStorm(t *testing.T) {
	t.Parallel()
	m := peers.StartMosquitto(t)
	col := newCollector(t, m.Addr)
	h := newHarness(t, "", testOptions(m.URL()), nil).start()
	h.waitState(StateOnline, 10*time.Second)
	const n = 1000
	start := time.Now()
	for range n {
		col.c.Publish("spBv1.0/G/NCMD/E", 0, false, rebirthCmd())
	}
	h.waitFor(10*time.Second, "every request", func() bool {
		st := h.b.Status()
		return st.Commands+st.InboundDropped >= n
	})
	sent := time.Since(start)
	// The first request is served at once, the others merge into one rebirth a second later.
	h.waitSkipping(10*time.Second, "the merged rebirth", func() bool { return countTopic(col.all(), "spBv1.0/G/NBIRTH/E") >= 3 })
	mark := h.clk.Now()
	h.waitSkipping(5*time.Second, "the hold-off to pass twice more", func() bool { return h.clk.Since(mark) > 3*time.Second })
	births := countTopic(col.all(), "spBv1.0/G/NBIRTH/E") - 1
	dbirths := countTopic(col.all(), "spBv1.0/G/DBIRTH/E/well1") - 1
	t.Logf("%d Rebirth requests in %v (%d dropped by a full mailbox): %d NBIRTH and %d DBIRTH", n, sent.Round(time.Millisecond),
		h.b.Status().InboundDropped, births, dbirths)
	if births < 2 || births > 3 || dbirths != births {
		t.Errorf("%d rebirths for %d requests in %v, want 2 (3 if sending took over a second): the first, and one per second for the rest (docs/sparkplug.md [rebirth-holdoff])", births, n, sent)
	}
}

// Ten Next Server requests move the upstream once; a DCMD with 20,000 metrics is refused as a
// whole, with one log line.
func TestNextServerStormAndHugeCommand(t *testing.T) {
	m1, m2 := peers.StartMosquitto(t), peers.StartMosquitto(t)
	col1, col2 := newCollector(t, m1.Addr), newCollector(t, m2.Addr)
	h := newHarness(t, "", testOptions(m1.URL(), m2.URL()), nil).start()
	h.waitState(StateOnline, 10*time.Second)

	huge := sparkplug.Payload{}
	for range 20000 {
		m := sparkplug.Metric{Name: "setpoint", Datatype: sparkplug.TypeDouble}
		m.SetValue(drivers.DoubleValue(1))
		huge.Metrics = append(huge.Metrics, m)
	}
	col1.c.Publish("spBv1.0/G/DCMD/E/well1", 1, false, huge.Marshal()).Wait()
	h.waitFor(10*time.Second, "the huge command refused", func() bool {
		return h.b.Status().CommandErrors == 1 && h.log.count("command not fully applied") > 0
	})
	h.mu.Lock()
	nw := len(h.writes)
	h.mu.Unlock()
	if nw != 0 {
		t.Errorf("%d writes from a 20,000-metric DCMD, want none (docs/sparkplug.md [cmd-metrics-bound])", nw)
	}
	if n := h.log.count("command not fully applied"); n != 1 || !strings.Contains(h.log.dump(), "too many metrics") {
		t.Errorf("%d log lines for the huge command, want 1 saying why:\n%s", n, h.log.dump())
	}

	p := sparkplug.Payload{Metrics: []sparkplug.Metric{{Name: metricNextServer, Datatype: sparkplug.TypeBoolean,
		Value: sparkplug.WireValue{Kind: sparkplug.KindBool, Bits: 1}}}}
	for range 10 {
		col1.c.Publish("spBv1.0/G/NCMD/E", 1, false, p.Marshal()).Wait()
	}
	h.waitFor(10*time.Second, "NBIRTH on the second server", func() bool { return countTopic(col2.all(), "spBv1.0/G/NBIRTH/E") == 1 })
	// col1 may still be decoding the huge DCMD it saw: its NDEATH can come late.
	h.waitFor(10*time.Second, "NDEATH on the first server", func() bool { return countTopic(col1.all(), "spBv1.0/G/NDEATH/E") >= 1 })
	h.waitState(StateOnline, 10*time.Second)
	first := h.b.Status() // the requests that reached the bridge before it left the first server
	for range 10 {        // and ten more on the second one
		col2.c.Publish("spBv1.0/G/NCMD/E", 1, false, p.Marshal()).Wait()
	}
	h.waitFor(10*time.Second, "the second storm handled", func() bool { return h.b.Status().Commands == first.Commands+10 })
	st := h.b.Status()
	asked := st.Commands - 1 // all but the huge DCMD
	t.Logf("%d Next Server requests reached the bridge: %d moves, %d refused", asked, st.Connects-1, st.NextServerRefused)
	if n := countTopic(col1.all(), "spBv1.0/G/NDEATH/E"); n != 1 || st.Connects != 2 || st.Server != m2.URL() {
		t.Errorf("%d NDEATHs on the first server, %d connects, at %s: want one move, to the second server", n, st.Connects, st.Server)
	}
	if st.NextServerRefused != asked-1 {
		t.Errorf("%d Next Server requests refused of %d, want all but the first", st.NextServerRefused, asked)
	}
}
