package sparkplug

import (
	"strings"
	"testing"
	"time"

	"github.com/wellgate/wellgate/drivers"
)

// reloaded is testOptions' device set after a reload: plc1 loses Mode and gains Choke, rtu2 is
// gone, well3 is new.
func reloaded() []drivers.DeviceInfo {
	return []drivers.DeviceInfo{
		{Name: "plc1", Tags: []drivers.TagInfo{
			{Name: "Tubing/Pressure", Type: drivers.Double, Units: "psi", Deadband: 1},
			{Name: "Flow", Type: drivers.Float, Writable: true},
			{Name: "Choke", Type: drivers.UInt16},
		}},
		{Name: "well3", Tags: []drivers.TagInfo{{Name: "Level", Type: drivers.Float}}},
	}
}

// Online, SetDevices is a full rebirth: NBIRTH (seq 0, same bdSeq) with aliases numbered again,
// a DBIRTH per new device in order, the kept values in them, nothing for the removed device;
// then DATA refers to the new table only.
func TestSetDevicesRebirthsOnline(t *testing.T) {
	c := &clock{t: t0}
	opts := testOptions(c)
	opts.Aliases = true
	s, r := started(t, opts, 7)
	mustUpdate(t, s, good("plc1", "Tubing/Pressure", drivers.DoubleValue(1500)), good("rtu2", "Level", drivers.IntValue(drivers.UInt32, 9)))
	r.take()

	if err := s.SetDevices(reloaded()); err != nil {
		t.Fatalf("SetDevices: %v", err)
	}
	msgs := r.take()
	var topics []string
	for _, m := range msgs {
		topics = append(topics, m.topic)
	}
	want := []string{"spBv1.0/wellsite/NBIRTH/gw1", "spBv1.0/wellsite/DBIRTH/gw1/plc1", "spBv1.0/wellsite/DBIRTH/gw1/well3"}
	if strings.Join(topics, " ") != strings.Join(want, " ") {
		t.Fatalf("[payloads-dbirth-order] after SetDevices: %v, want %v", topics, want)
	}
	if p := msgs[0].p; p.Seq != 0 {
		t.Errorf("[payloads-nbirth-seq] NBIRTH seq %d", p.Seq)
	} else if m, _ := metricByName(p, MetricBdSeq); m.Value.Bits != 7 {
		t.Errorf("NBIRTH bdSeq %d, want 7 (the connection's)", m.Value.Bits)
	}
	aliases := map[uint64]string{}
	for _, m := range msgs {
		for _, mm := range m.p.Metrics {
			if mm.HasAlias {
				if prev, dup := aliases[mm.Alias]; dup {
					t.Errorf("[payloads-alias-uniqueness] alias %d for %s and %s", mm.Alias, prev, mm.Name)
				}
				aliases[mm.Alias] = mm.Name
			}
		}
	}
	if len(aliases) != 1+3+1 { // node metric, plc1's three, well3's one
		t.Errorf("aliases %v, want 5 numbered afresh", aliases)
	}
	p, ok := metricByName(msgs[1].p, "Tubing/Pressure")
	if !ok || p.IsNull || p.Value.Bits == 0 {
		t.Errorf("kept tag Tubing/Pressure born %+v, want its last value", p)
	}
	if ch, ok := metricByName(msgs[1].p, "Choke"); !ok || !ch.IsNull {
		t.Errorf("new tag Choke born %+v (present %v), want null", ch, ok)
	}
	if _, ok := metricByName(msgs[1].p, "Mode"); ok {
		t.Error("removed tag Mode is still born")
	}

	// Samples for what is gone are dropped; the new tag reports by its new alias.
	c.Add(time.Second)
	mustUpdate(t, s, good("rtu2", "Level", drivers.IntValue(drivers.UInt32, 10)), good("plc1", "Mode", drivers.IntValue(drivers.Int8, 1)),
		good("plc1", "Choke", drivers.IntValue(drivers.UInt16, 40)))
	msgs = r.take()
	if len(msgs) != 1 || msgs[0].topic != "spBv1.0/wellsite/DDATA/gw1/plc1" || len(msgs[0].p.Metrics) != 1 {
		t.Fatalf("[data-metric-born] after SetDevices: %+v", msgs)
	}
	if got := msgs[0].p.Metrics[0]; aliases[got.Alias] != "Choke" {
		t.Errorf("DDATA alias %d is %q, want Choke's", got.Alias, aliases[got.Alias])
	}
}

// Offline, SetDevices publishes nothing; the next Start births the new set. A new device makes
// the session wait for its first poll again.
func TestSetDevicesOffline(t *testing.T) {
	c := &clock{t: t0}
	s := newSession(t, testOptions(c))
	mustUpdate(t, s, good("plc1", "Flow", drivers.FloatValue(3)), good("rtu2", "Level", drivers.IntValue(drivers.UInt32, 9)))
	if !s.Polled() {
		t.Fatal("not polled after both devices reported")
	}
	if err := s.SetDevices(reloaded()); err != nil {
		t.Fatal(err)
	}
	if s.Polled() {
		t.Error("Polled with well3 never reported")
	}
	r := &recorder{}
	if err := s.Start(r, 1); err != nil {
		t.Fatal(err)
	}
	msgs := r.take()
	if len(msgs) != 3 || !strings.HasSuffix(msgs[2].topic, "/DBIRTH/gw1/well3") {
		t.Fatalf("births after an offline SetDevices: %d messages", len(msgs))
	}
	if f, _ := metricByName(msgs[1].p, "Flow"); f.IsNull {
		t.Error("Flow's value lost across SetDevices")
	}
	if err := s.SetDevices([]drivers.DeviceInfo{{Name: "a/b"}}); err == nil {
		t.Error("an invalid device id was taken")
	}
}

// [historical-replay] after a reload: a backlog that holds samples of a removed device and a
// removed tag replays the rest; those are skipped and counted, not an error.
func TestHistoricalSkipsRemovedTags(t *testing.T) {
	c := &clock{t: t0}
	s, r := started(t, testOptions(c), 0)
	if err := s.SetDevices(reloaded()); err != nil {
		t.Fatal(err)
	}
	r.take()
	old := t0.Add(-time.Hour)
	err := s.PublishHistorical([]drivers.Sample{
		sample("rtu2", "Level", drivers.IntValue(drivers.UInt32, 5), drivers.Good, old),
		sample("plc1", "Mode", drivers.IntValue(drivers.Int8, 2), drivers.Good, old),
		sample("plc1", "Flow", drivers.FloatValue(8), drivers.Good, old),
	})
	if err != nil {
		t.Fatalf("PublishHistorical: %v", err)
	}
	if n := s.HistoricalSkipped(); n != 2 {
		t.Errorf("HistoricalSkipped = %d, want 2", n)
	}
	msgs := r.take()
	if len(msgs) != 1 || len(msgs[0].p.Metrics) != 1 || !msgs[0].p.Metrics[0].IsHistorical {
		t.Fatalf("replay: %+v, want one historical DDATA with Flow", msgs)
	}
}
