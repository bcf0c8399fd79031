package bridge

import (
	"testing"
	"time"

	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/internal/peers"
	"github.com/wellgate/wellgate/sparkplug"
)

func TestBirthsAndLiveData(t *testing.T) {
	m := peers.StartMosquitto(t)
	col := newCollector(t, m.Addr)
	h := newHarness(t, "", testOptions(m.URL()), nil).start()
	h.waitState(StateOnline, 10*time.Second)
	h.produce(10)
	h.waitFor(10*time.Second, "10 live values", func() bool { return allArrived(col.all(), 10) })
	msgs := col.all()
	if msgs[0].topic != "spBv1.0/G/NBIRTH/E" || msgs[1].topic != "spBv1.0/G/DBIRTH/E/well1" {
		t.Fatalf("first messages %s, %s; want NBIRTH, DBIRTH", msgs[0].topic, msgs[1].topic)
	}
	nb := msgs[0].payload
	if !nb.HasSeq || nb.Seq != 0 {
		t.Fatalf("NBIRTH seq %v/%d, want 0 on the wire", nb.HasSeq, nb.Seq)
	}
	for _, mt := range nb.Metrics {
		if mt.Name == sparkplug.MetricBdSeq && mt.Value.Bits != h.b.Status().BdSeq {
			t.Fatalf("NBIRTH bdSeq %d, connection's %d", mt.Value.Bits, h.b.Status().BdSeq)
		}
	}
	live, hist := checkAllArrived(t, h, msgs, 10)
	if live != 10 || hist != 0 {
		t.Fatalf("%d live, %d historical; want 10 live", live, hist)
	}
	for _, r := range msgs {
		if r.retain || r.qos != 0 {
			t.Fatalf("%s: retain %v qos %d, want QoS 0 not retained", r.topic, r.retain, r.qos)
		}
	}
	st := h.b.Status()
	if st.Connects != 1 || st.State != StateOnline || st.PublishedLive != 10 {
		t.Fatalf("status %+v", st)
	}
}

// TestShutdownPublishesDeath: on cancel the bridge publishes NDEATH with the connection's bdSeq.
func TestShutdownPublishesDeath(t *testing.T) {
	m := peers.StartMosquitto(t)
	col := newCollector(t, m.Addr)
	h := newHarness(t, "", testOptions(m.URL()), nil).start()
	h.waitState(StateOnline, 10*time.Second)
	bdSeq := h.b.Status().BdSeq
	h.stop()
	h.waitFor(10*time.Second, "NDEATH", func() bool {
		for _, r := range col.all() {
			if r.topic == "spBv1.0/G/NDEATH/E" && r.payload != nil && len(r.payload.Metrics) == 1 &&
				r.payload.Metrics[0].Value.Bits == bdSeq {
				return true
			}
		}
		return false
	})
}

func TestCommands(t *testing.T) {
	m := peers.StartMosquitto(t)
	col := newCollector(t, m.Addr)
	h := newHarness(t, "", testOptions(m.URL()), nil).start()
	h.waitState(StateOnline, 10*time.Second)
	// DCMD write of a writable tag reaches OnCommand.
	p := sparkplug.Payload{Metrics: []sparkplug.Metric{{Name: "setpoint", Datatype: sparkplug.TypeDouble}}}
	p.Metrics[0].SetValue(drivers.DoubleValue(42.5))
	col.c.Publish("spBv1.0/G/DCMD/E/well1", 1, false, p.Marshal()).Wait()
	h.waitFor(10*time.Second, "the write", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.writes) == 1 && h.writes[0].Tag == "setpoint" && h.writes[0].Value.Float64() == 42.5
	})
	// A malformed command is logged with its topic, never fatal.
	col.c.Publish("spBv1.0/G/DCMD/E/well1", 1, false, []byte{0xff, 0xff}).Wait()
	h.waitFor(10*time.Second, "a log line", func() bool { return h.log.count("spBv1.0/G/DCMD/E/well1") > 0 })
	// Rebirth.
	rb := sparkplug.Payload{Metrics: []sparkplug.Metric{{Name: sparkplug.MetricRebirth, Datatype: sparkplug.TypeBoolean}}}
	rb.Metrics[0].SetValue(drivers.BoolValue(true))
	col.c.Publish("spBv1.0/G/NCMD/E", 1, false, rb.Marshal()).Wait()
	h.waitFor(10*time.Second, "a second NBIRTH", func() bool { nb, _ := analyze(col.all()); return len(nb) == 2 })
	if h.b.Status().State != StateOnline {
		t.Fatal("not online after the rebirth")
	}
}
