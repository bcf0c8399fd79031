package bridge

import (
	"slices"
	"testing"
	"time"

	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/internal/peers"
	"github.com/wellgate/wellgate/sparkplug"
)

// TestReconfigure: a reload's new device set reaches the session on the loop. Offline, a
// backlog queued for a device the reload removes replays the rest and skips its samples,
// counted; online, the set is published as a full rebirth on the same connection (no new
// CONNECT, same bdSeq).
func TestReconfigure(t *testing.T) {
	m := peers.StartMosquitto(t)
	px := newProxy(t, m.Addr)
	px.setMode("refuse")
	col := newCollector(t, m.Addr)
	well2 := drivers.DeviceInfo{Name: "well2", Tags: []drivers.TagInfo{{Name: "level", Type: drivers.Double}}}
	h := newHarness(t, "", testOptions(px.url()), func(_ *Options, so *sparkplug.Options) {
		so.Devices = append(slices.Clone(testDevices), well2)
	}).start()

	// Offline: values of both devices go to the queue.
	h.produce(50)
	for i := range 5 {
		h.b.Samples([]drivers.Sample{{Device: "well2", Tag: "level", Value: drivers.DoubleValue(float64(i)),
			Quality: drivers.Good, Time: h.base.Add(time.Duration(i) * time.Millisecond)}})
	}
	h.waitFor(10*time.Second, "the offline backlog", func() bool { return h.b.Status().Queue.Records >= 55 })

	// The reload removes well2 and gives well1 a new tag.
	well1 := testDevices[0]
	well1.Tags = append(slices.Clone(well1.Tags), drivers.TagInfo{Name: "pressure", Type: drivers.Float})
	if err := <-h.b.Reconfigure([]drivers.DeviceInfo{well1}); err != nil {
		t.Fatalf("Reconfigure offline: %v", err)
	}
	px.setMode("pass")
	h.waitState(StateOnline, 10*time.Second)
	h.waitSkipping(20*time.Second, "the backlog replayed", func() bool { return h.b.Status().Queue.Records == 0 })
	st := h.b.Status()
	if st.HistoricalSkipped != 5 {
		t.Errorf("HistoricalSkipped = %d, want the 5 samples of the removed well2", st.HistoricalSkipped)
	}
	waitFor(t, 10*time.Second, "the backlog at the subscriber", func() bool {
		_, values := analyze(col.all())
		return len(values) >= 50
	})
	checkAllArrived(t, h, col.all(), 50)
	for _, r := range col.all() {
		if r.topic == "spBv1.0/G/DBIRTH/E/well2" || r.topic == "spBv1.0/G/DDATA/E/well2" {
			t.Fatalf("%s published after well2 was removed", r.topic)
		}
	}
	if !birthHas(col.all(), "spBv1.0/G/DBIRTH/E/well1", "pressure") {
		t.Error("well1's DBIRTH lacks the new tag pressure")
	}

	// Online: well2 comes back in a rebirth on the same connection.
	connects, bd, mark := st.Connects, st.BdSeq, len(col.all())
	if err := <-h.b.Reconfigure(append([]drivers.DeviceInfo{well1}, well2)); err != nil {
		t.Fatalf("Reconfigure online: %v", err)
	}
	waitFor(t, 10*time.Second, "the rebirth with well2", func() bool {
		return birthHas(col.all()[mark:], "spBv1.0/G/DBIRTH/E/well2", "level")
	})
	msgs := col.all()[mark:]
	if msgs[0].topic != "spBv1.0/G/NBIRTH/E" || msgs[0].payload.Seq != 0 {
		t.Errorf("first message after an online Reconfigure: %s, want NBIRTH seq 0", msgs[0].topic)
	}
	if st := h.b.Status(); st.Connects != connects || st.BdSeq != bd || st.Reconfigures != 2 {
		t.Errorf("after an online Reconfigure: connects %d bdSeq %d reconfigures %d; want %d, %d, 2",
			st.Connects, st.BdSeq, st.Reconfigures, connects, bd)
	}
}

func birthHas(msgs []received, topic, metric string) bool {
	for _, r := range msgs {
		if r.topic != topic || r.payload == nil {
			continue
		}
		for _, mt := range r.payload.Metrics {
			if mt.Name == metric {
				return true
			}
		}
	}
	return false
}
