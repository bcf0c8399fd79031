package sparkplug

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wellgate/wellgate/drivers"
)

const (
	ruleBornDead     = "docs/sparkplug.md [device-born-dead]: a device down at birth time is born with null, Bad metrics and declared dead at once"
	ruleCovered      = "docs/sparkplug.md [historical-covered-by-birth]: a queued sample the birth carried is not replayed"
	ruleRebirthMerge = "docs/sparkplug.md [rebirth-holdoff]: rebirth requests within the hold-off merge into one rebirth after it"
	ruleCmdBound     = "docs/sparkplug.md [cmd-metrics-bound]: a command with more metrics than the bound is refused as a whole"
)

// A device that is down when the node is born is visible all the same: DBIRTH with every
// metric (datatype from the tag map) null and Bad, DDEATH right after; when it comes up, a
// DBIRTH with its values.
func TestDeviceDownAtBirth(t *testing.T) {
	c := &clock{t: t0}
	s := newSession(t, testOptions(c))
	if err := s.SetDeviceState("plc1", false); err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, s, good("rtu2", "Level", drivers.IntValue(drivers.UInt32, 7)))
	r := &recorder{}
	if err := s.Start(r, 3); err != nil {
		t.Fatal(err)
	}
	msgs := r.take()
	want := []string{"spBv1.0/wellsite/NBIRTH/gw1", "spBv1.0/wellsite/DBIRTH/gw1/plc1",
		"spBv1.0/wellsite/DDEATH/gw1/plc1", "spBv1.0/wellsite/DBIRTH/gw1/rtu2"}
	if len(msgs) != len(want) {
		t.Fatalf("%d messages, want %v (%s)", len(msgs), want, ruleBornDead)
	}
	for i, m := range msgs {
		if m.topic != want[i] || m.p.Seq != uint64(i) {
			t.Errorf("message %d: %s seq %d, want %s seq %d (%s, %s)", i, m.topic, m.p.Seq, want[i], i, ruleBornDead, ruleSeq)
		}
	}
	db := msgs[1].p
	if len(db.Metrics) != 5 {
		t.Fatalf("dead DBIRTH has %d metrics, want all 5 (%s)", len(db.Metrics), ruleBornDead)
	}
	wantTypes := map[string]DataType{"Tubing/Pressure": TypeDouble, "Flow": TypeFloat, "State": TypeString, "Mode": TypeInt8, "Heartbeat": TypeUInt16}
	for _, m := range db.Metrics {
		q, ok := quality(m)
		if !m.IsNull || m.Value.Kind != KindNone || m.Datatype != wantTypes[m.Name] || !ok || q != 0 || !m.HasTimestamp {
			t.Errorf("dead DBIRTH metric %+v quality %d: want null, datatype %d, Quality 0 (%s, %s)", m, q, wantTypes[m.Name], ruleBornDead, ruleNull)
		}
	}
	// Samples while down are recorded, not published; coming up gives a DBIRTH with them.
	mustUpdate(t, s, good("plc1", "State", drivers.StringValue("running")))
	if len(r.take()) != 0 {
		t.Fatalf("DATA for a dead device (%s)", ruleDDeath)
	}
	if err := s.SetDeviceState("plc1", true); err != nil {
		t.Fatal(err)
	}
	msgs = r.take()
	if len(msgs) != 1 || msgs[0].topic != "spBv1.0/wellsite/DBIRTH/gw1/plc1" {
		t.Fatalf("coming up published %+v, want one DBIRTH (%s)", msgs, ruleDDeath)
	}
	if st, _ := metricByName(msgs[0].p, "State"); st.Value.Str != "running" {
		t.Errorf("DBIRTH State %+v, want the value recorded while down (%s)", st, ruleBirthMetrics)
	}
	// A rebirth while plc1 is down again: born dead again.
	if err := s.SetDeviceState("plc1", false); err != nil {
		t.Fatal(err)
	}
	r.take()
	if err := s.Rebirth(); err != nil {
		t.Fatal(err)
	}
	msgs = r.take()
	if len(msgs) != 4 || msgs[1].topic != want[1] || msgs[2].topic != want[2] {
		t.Fatalf("rebirth with plc1 down: %d messages, want NBIRTH, dead DBIRTH, DDEATH, DBIRTH (%s)", len(msgs), ruleBornDead)
	}
	if st, _ := metricByName(msgs[1].p, "State"); !st.IsNull {
		t.Errorf("dead DBIRTH State %+v, want null (%s)", st, ruleBornDead)
	}
}

// Polled: every device has reported, by a sample or a state.
func TestPolled(t *testing.T) {
	c := &clock{t: t0}
	s := newSession(t, testOptions(c))
	if s.Polled() {
		t.Fatal("polled before any report")
	}
	mustUpdate(t, s, good("", "Gateway/Uptime", drivers.IntValue(drivers.Int64, 1)), good("plc1", "Nope", drivers.IntValue(drivers.Int64, 1)))
	if s.Polled() {
		t.Fatal("polled after a node metric and plc1 only")
	}
	if err := s.SetDeviceState("rtu2", false); err != nil {
		t.Fatal(err)
	}
	if !s.Polled() {
		t.Fatal("not polled after plc1's sample and rtu2's state")
	}
}

// A historical sample the birth carried (same value, quality and time) is not replayed: the
// host has it. Older ones, and the same value at another time, are.
func TestHistoricalCoveredByBirth(t *testing.T) {
	c := &clock{t: t0}
	s := newSession(t, testOptions(c))
	old := t0.Add(-time.Minute)
	queued := []drivers.Sample{
		sample("plc1", "Flow", drivers.FloatValue(1), drivers.Good, old),
		sample("plc1", "Flow", drivers.FloatValue(2), drivers.Good, old.Add(time.Second)),
		sample("", "Gateway/Uptime", drivers.IntValue(drivers.Int64, 60), drivers.Good, old.Add(time.Second)),
	}
	if rep := mustUpdate(t, s, queued...); len(rep) != 3 { // offline: reported for the queue
		t.Fatalf("offline update reported %d", len(rep))
	}
	r := &recorder{}
	if err := s.Start(r, 1); err != nil {
		t.Fatal(err)
	}
	r.take()
	replay := append(queued, sample("plc1", "Flow", drivers.FloatValue(2), drivers.Good, old.Add(2*time.Second)))
	if err := s.PublishHistorical(replay); err != nil {
		t.Fatal(err)
	}
	msgs := r.take()
	if len(msgs) != 1 || msgs[0].topic != "spBv1.0/wellsite/DDATA/gw1/plc1" {
		t.Fatalf("historical %+v, want one DDATA (%s)", msgs, ruleCovered)
	}
	var got []uint64
	for _, m := range msgs[0].p.Metrics {
		got = append(got, m.Timestamp)
	}
	if len(got) != 2 || got[0] != uint64(old.UnixMilli()) || got[1] != uint64(old.Add(2*time.Second).UnixMilli()) {
		t.Errorf("replayed timestamps %v, want the older Flow and the later repeat only (%s)", got, ruleCovered)
	}
}

// A storm of Rebirth requests gives one rebirth per hold-off; every request is answered by
// births published after it. The births of Start do not hold the first request back.
func TestRebirthStormMerged(t *testing.T) {
	c := &clock{t: t0}
	s, r := started(t, testOptions(c), 5)
	cmd := dcmd(Metric{Name: MetricRebirth, Datatype: TypeBoolean, Value: WireValue{Kind: KindBool, Bits: 1}})
	var births []uint64 // NBIRTH timestamps
	take := func() {
		for _, m := range r.take() {
			if m.topic == "spBv1.0/wellsite/NBIRTH/gw1" {
				births = append(births, m.p.Timestamp)
			}
		}
	}
	schedules := 0
	for range 1000 { // 1,000 requests in one second, each followed by a tick
		c.Add(time.Millisecond)
		if _, err := s.HandleCommand("spBv1.0/wellsite/NCMD/gw1", cmd); err != nil {
			t.Fatal(err)
		}
		if _, ok := s.DeferredRebirth(); ok {
			schedules++
		}
		if _, err := s.FlushRebirth(); err != nil {
			t.Fatal(err)
		}
		take()
	}
	last := uint64(c.Now().UnixMilli())
	c.Add(DefaultRebirthHoldoff)
	if ok, err := s.FlushRebirth(); !ok || err != nil {
		t.Fatalf("the merged rebirth after the storm: %v, %v (%s)", ok, err, ruleRebirthMerge)
	}
	take()
	if len(births) != 2 || births[0] != uint64(t0.Add(time.Millisecond).UnixMilli()) || births[1] < last {
		t.Errorf("1000 requests in 1s: NBIRTHs at %v; want 2: the first request served at once, the rest merged into one after the last request at %d (%s)",
			births, last, ruleRebirthMerge)
	}
	if schedules != 1 {
		t.Errorf("DeferredRebirth gave %d schedules, want one per merged rebirth, 1", schedules)
	}
	if n := s.MergedRebirths(); n != 999 {
		t.Errorf("%d requests merged, want 999", n)
	}
	if ok, _ := s.FlushRebirth(); ok {
		t.Error("FlushRebirth with nothing due published")
	}
	// Offline, a merged rebirth is dropped: the next Start births anyway.
	if _, err := s.HandleCommand("spBv1.0/wellsite/NCMD/gw1", cmd); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	c.Add(DefaultRebirthHoldoff)
	if ok, _ := s.FlushRebirth(); ok || len(r.take()) != 0 {
		t.Error("a merged rebirth was published after Stop")
	}
}

// A command with more metrics than the bound is refused as a whole; per-metric problems are
// summed up in one bounded error.
func TestCommandMetricsBounded(t *testing.T) {
	c := &clock{t: t0}
	opts := testOptions(c)
	opts.MaxCommandMetrics = 100
	s, _ := started(t, opts, 1)
	const topic = "spBv1.0/wellsite/DCMD/gw1/plc1"
	many := make([]Metric, 101)
	for i := range many {
		many[i] = Metric{Name: "Mode", Value: WireValue{Kind: KindInt, Bits: 1}}
	}
	writes, err := s.HandleCommand(topic, dcmd(many...))
	if !errors.Is(err, ErrTooManyMetrics) || len(writes) != 0 {
		t.Fatalf("101 metrics: %d writes, %v; want ErrTooManyMetrics and none (%s)", len(writes), err, ruleCmdBound)
	}
	for i := range 50 {
		many[i] = Metric{Name: "Nope"}
	}
	writes, err = s.HandleCommand(topic, dcmd(many[:100]...))
	if len(writes) != 50 || !errors.Is(err, ErrUnknownMetric) {
		t.Fatalf("100 metrics, 50 bad: %d writes, %v", len(writes), err)
	}
	if msg := err.Error(); strings.Count(msg, "Nope") != maxCommandErrors || !strings.Contains(msg, "40 more metrics refused") {
		t.Errorf("error lists %d problems: %.300s…; want %d and a count of the rest (%s)", strings.Count(msg, "Nope"), msg, maxCommandErrors, ruleCmdBound)
	}
}

// Record keeps the newest sample of a metric for the next birth, without reporting it.
func TestRecordKeepsNewest(t *testing.T) {
	c := &clock{t: t0}
	s := newSession(t, testOptions(c))
	s.Record([]drivers.Sample{
		sample("plc1", "Mode", drivers.IntValue(drivers.Int8, 2), drivers.Good, t0.Add(time.Second)),
		sample("plc1", "Mode", drivers.IntValue(drivers.Int8, 1), drivers.Good, t0), // older: ignored
	})
	r := &recorder{}
	if err := s.Start(r, 1); err != nil {
		t.Fatal(err)
	}
	if m, _ := metricByName(r.take()[1].p, "Mode"); m.Value.Bits != 2 {
		t.Errorf("DBIRTH Mode %+v, want the newest recorded 2 (%s)", m, ruleBirthMetrics)
	}
}
