package sparkplug

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/wellgate/wellgate/drivers"
	"google.golang.org/protobuf/encoding/protowire"
)

// Rules named in assertion messages, by the ids of docs/sparkplug.md: the Sparkplug 3.0
// assertion ids ("tck-id-" dropped) where the spec has one, else wellgate's own. grep an id to
// find every test and checker of a rule.
const (
	ruleWillQoS      = "[payloads-ndeath-will-message-qos]"
	ruleWillRetain   = "[payloads-ndeath-will-message-retain]"
	ruleNBirthSeq0   = "docs/sparkplug.md [payloads-nbirth-seq]: NBIRTH seq = 0 on the wire"
	ruleNBirthBdSeq  = "docs/sparkplug.md [payloads-nbirth-bdseq] [payloads-ndeath-bdseq]: NBIRTH bdSeq equal to the will's"
	ruleNBirthCtrl   = "docs/sparkplug.md [payloads-nbirth-rebirth-req] [operational-behavior-data-commands-rebirth-name-aliases]: Node Control/Rebirth Boolean false, no alias"
	ruleBirthMetrics = "docs/sparkplug.md [payloads-name-requirement] [payloads-metric-datatype-req] [payloads-name-birth-data-requirement]: every birth metric with name, datatype, current value and timestamp"
	ruleDBirthOrder  = "docs/sparkplug.md [payloads-dbirth-order] [payloads-dbirth-seq-inc]: DBIRTH right after NBIRTH, before any DATA; seq +1"
	ruleSeq          = "docs/sparkplug.md [payloads-sequence-num-incrementing]: one seq counter, +1 per message, 255 wraps to 0"
	ruleNoSeqNDeath  = "docs/sparkplug.md [payloads-ndeath-seq]: NDEATH carries no seq"
	ruleRBE          = "docs/sparkplug.md [principles-rbe-recommended]: DATA only for metrics that changed (report by exception)"
	ruleAliasUnique  = "docs/sparkplug.md [payloads-alias-uniqueness] [payloads-alias-birth-requirement]: aliases unique across the node and all its devices, with the name in births"
	ruleAliasOnly    = "docs/sparkplug.md [payloads-alias-data-cmd-requirement]: DATA with aliases, alias only (no name)"
	ruleNeverUnborn  = "docs/sparkplug.md [data-metric-born]: DATA never carries a metric that was not in a birth"
	ruleQoSRetain    = "docs/sparkplug.md [data-qos]: births, DATA, DDEATH at DataQoS, never retained"
	ruleDDeath       = "docs/sparkplug.md [operational-behavior-device-ddeath]: DDEATH when a device is lost; DBIRTH again when it returns"
	ruleRebirth      = "docs/sparkplug.md [operational-behavior-data-commands-rebirth-action-2] [operational-behavior-data-commands-rebirth-action-3]: NCMD Rebirth gives NBIRTH (seq 0, same bdSeq) and all DBIRTHs"
	ruleDCMD         = "docs/sparkplug.md [cmd-write-writable]: DCMD writes the named metric iff writable"
	ruleBadCmd       = "docs/sparkplug.md [cmd-bad-ignored]: unknown metrics and malformed payloads are logged and ignored"
	ruleHistorical   = "docs/sparkplug.md [historical-replay]: backlog with is_historical = true and original timestamps"
	ruleQuality      = "docs/sparkplug.md [payloads-propertyset-quality-value-type] [payloads-propertyset-quality-value-value] [data-quality]: property Quality Int32 192/0/500"
	ruleNull         = "docs/sparkplug.md [metric-null-value]: is_null = true and no value; births still carry the datatype"
)

// topLevelSeq finds the payload's top-level seq field in raw bytes.
func topLevelSeq(raw []byte) (uint64, bool) {
	for len(raw) > 0 {
		num, typ, n := protowire.ConsumeTag(raw)
		if n < 0 {
			return 0, false
		}
		raw = raw[n:]
		if num == fPayloadSeq && typ == protowire.VarintType {
			v, _ := protowire.ConsumeVarint(raw)
			return v, true
		}
		n = protowire.ConsumeFieldValue(num, typ, raw)
		if n < 0 {
			return 0, false
		}
		raw = raw[n:]
	}
	return 0, false
}

func TestStartBirthsOrderSeqAndContent(t *testing.T) {
	c := &clock{t: t0}
	s := newSession(t, testOptions(c))
	mustUpdate(t, s, good("plc1", "Tubing/Pressure", drivers.DoubleValue(812.5)), good("", "Gateway/Uptime", drivers.IntValue(drivers.Int64, 42)))
	r := &recorder{}
	if err := s.Start(r, 7); err != nil {
		t.Fatal(err)
	}
	msgs := r.take()
	wantTopics := []string{"spBv1.0/wellsite/NBIRTH/gw1", "spBv1.0/wellsite/DBIRTH/gw1/plc1", "spBv1.0/wellsite/DBIRTH/gw1/rtu2"}
	if len(msgs) != len(wantTopics) {
		t.Fatalf("%d messages, want %d (%s)", len(msgs), len(wantTopics), ruleDBirthOrder)
	}
	for i, m := range msgs {
		if m.topic != wantTopics[i] {
			t.Errorf("message %d topic %s, want %s (%s)", i, m.topic, wantTopics[i], ruleDBirthOrder)
		}
		if seq, ok := topLevelSeq(m.raw); !ok || seq != uint64(i) {
			t.Errorf("%s: raw seq %d present=%v, want %d (%s, %s)", m.topic, seq, ok, i, ruleNBirthSeq0, ruleDBirthOrder)
		}
		if m.qos != 0 || m.retain {
			t.Errorf("%s: qos %d retain %v (%s)", m.topic, m.qos, m.retain, ruleQoSRetain)
		}
		if !m.p.HasTimestamp || m.p.Timestamp != uint64(t0.UnixMilli()) {
			t.Errorf("%s: payload timestamp %d/%v", m.topic, m.p.Timestamp, m.p.HasTimestamp)
		}
	}
	nb := msgs[0].p
	if !bytes.Contains(msgs[0].raw, []byte{0x18, 0x00}) {
		t.Errorf("NBIRTH raw bytes lack 18 00 (%s)", ruleNBirthSeq0)
	}
	bd, ok := metricByName(nb, MetricBdSeq)
	if !ok || bd.Datatype != TypeInt64 || bd.Value.Kind != KindLong || bd.Value.Bits != 7 {
		t.Errorf("bdSeq metric %+v (%s)", bd, ruleNBirthBdSeq)
	}
	rb, ok := metricByName(nb, MetricRebirth)
	if !ok || rb.Datatype != TypeBoolean || rb.Value.Kind != KindBool || rb.Value.Bits != 0 || rb.HasAlias {
		t.Errorf("rebirth metric %+v (%s)", rb, ruleNBirthCtrl)
	}
	up, ok := metricByName(nb, "Gateway/Uptime")
	if !ok || up.Datatype != TypeInt64 || up.Value.Bits != 42 || !up.HasTimestamp {
		t.Errorf("node metric %+v (%s)", up, ruleBirthMetrics)
	}
	checkPlc1Birth(t, msgs[1].p)
}

func checkPlc1Birth(t *testing.T, db *Payload) {
	t.Helper()
	if len(db.Metrics) != 5 {
		t.Fatalf("plc1 DBIRTH has %d metrics, want 5 (%s)", len(db.Metrics), ruleBirthMetrics)
	}
	p, _ := metricByName(db, "Tubing/Pressure")
	if p.Datatype != TypeDouble || p.Value.Kind != KindDouble || !p.HasTimestamp {
		t.Errorf("pressure %+v (%s)", p, ruleBirthMetrics)
	}
	if q, ok := quality(p); !ok || q != 192 {
		t.Errorf("pressure Quality %d/%v, want 192 (%s)", q, ok, ruleQuality)
	}
	if u, ok := p.Properties.Get(PropEngUnit); !ok || u.Value.Str != "psi" || u.Type != TypeString {
		t.Errorf("pressure engUnit %+v", u)
	}
	if u, ok := p.Properties.Get(PropDocumentation); !ok || u.Value.Str != "tubing head pressure" {
		t.Errorf("pressure documentation %+v", u)
	}
	if ro, ok := p.Properties.Get(PropReadOnly); !ok || ro.Value.Bits != 1 {
		t.Errorf("pressure readOnly %+v", ro)
	}
	st, _ := metricByName(db, "State")
	if !st.IsNull || st.Datatype != TypeString || st.Value.Kind != KindNone {
		t.Errorf("never-read metric %+v (%s)", st, ruleNull)
	}
	if q, ok := quality(st); !ok || q != 0 {
		t.Errorf("never-read Quality %d, want 0 (%s)", q, ruleQuality)
	}
}

func TestDataOnlyChangedMetrics(t *testing.T) {
	c := &clock{t: t0}
	s, r := started(t, testOptions(c), 1)
	mustUpdate(t, s, good("plc1", "State", drivers.StringValue("running")), good("plc1", "Mode", drivers.IntValue(drivers.Int8, -5)))
	r.take()
	at := t0.Add(time.Second)
	rep := mustUpdate(t, s,
		sample("plc1", "State", drivers.StringValue("running"), drivers.Good, at),
		sample("plc1", "Mode", drivers.IntValue(drivers.Int8, 3), drivers.Good, at),
		sample("rtu2", "Level", drivers.UintValue(drivers.UInt32, 4000000000), drivers.Good, at),
	)
	if len(rep) != 2 || rep[0].Tag != "Mode" || rep[1].Tag != "Level" {
		t.Fatalf("reported %+v, want Mode and Level (%s)", rep, ruleRBE)
	}
	msgs := r.take()
	if len(msgs) != 2 || msgs[0].topic != "spBv1.0/wellsite/DDATA/gw1/plc1" || msgs[1].topic != "spBv1.0/wellsite/DDATA/gw1/rtu2" {
		t.Fatalf("messages %+v, want one DDATA per device", msgs)
	}
	d := msgs[0].p
	if len(d.Metrics) != 1 || d.Metrics[0].Name != "Mode" || d.Metrics[0].Value.Bits != 3 {
		t.Fatalf("DDATA %+v (%s)", d.Metrics, ruleRBE)
	}
	if d.Metrics[0].Timestamp != uint64(at.UnixMilli()) || !d.Metrics[0].HasTimestamp {
		t.Errorf("metric timestamp %d, want the sample's", d.Metrics[0].Timestamp)
	}
	if d.Metrics[0].Properties != nil {
		t.Errorf("Good unchanged quality should not carry the Quality property: %+v", d.Metrics[0].Properties)
	}
	if d.Metrics[0].Datatype != 0 {
		t.Errorf("DATA carries a datatype")
	}
	lv := msgs[1].p.Metrics[0]
	if lv.Value.Kind != KindInt || lv.Value.Bits != 4000000000 {
		t.Errorf("UInt32 in %s %d, want int_value (docs/sparkplug.md [metric-value-kind])", lv.Value.Kind, lv.Value.Bits)
	}
	if seq0, seq1 := msgs[0].p.Seq, msgs[1].p.Seq; seq1 != seq0+1 {
		t.Errorf("seqs %d, %d (%s)", seq0, seq1, ruleSeq)
	}
}

func TestDeadbands(t *testing.T) {
	c := &clock{t: t0}
	s, r := started(t, testOptions(c), 1)
	steps := []struct {
		tag    string
		v      drivers.Value
		report bool
	}{
		{"Tubing/Pressure", drivers.DoubleValue(100), true}, // first value after a null birth
		{"Tubing/Pressure", drivers.DoubleValue(100.9), false},
		{"Tubing/Pressure", drivers.DoubleValue(99.1), false},
		{"Tubing/Pressure", drivers.DoubleValue(101.5), true}, // > 1 from 100
		{"Tubing/Pressure", drivers.DoubleValue(100.6), false},
		{"Flow", drivers.FloatValue(50), true},
		{"Flow", drivers.FloatValue(54.5), false}, // 9 %
		{"Flow", drivers.FloatValue(44), true},    // 12 %
		{"Flow", drivers.FloatValue(40), false},   // 9.1 % of 44
		{"Flow", drivers.FloatValue(0), true},
		{"Flow", drivers.FloatValue(0), false},
		{"Tubing/Pressure", drivers.Null(drivers.Double), true}, // value → null
		{"Tubing/Pressure", drivers.DoubleValue(101.5), true},   // null → value
	}
	for i, st := range steps {
		rep := mustUpdate(t, s, good("plc1", st.tag, st.v))
		msgs := r.take()
		if (len(rep) == 1) != st.report || (len(msgs) == 1) != st.report {
			t.Errorf("step %d %s=%v: reported %d, published %d, want report=%v (%s)", i, st.tag, st.v, len(rep), len(msgs), st.report, ruleRBE)
		}
	}
}

func TestMaxIntervalResend(t *testing.T) {
	c := &clock{t: t0}
	s, r := started(t, testOptions(c), 1)
	hb := drivers.UintValue(drivers.UInt16, 9)
	if rep := mustUpdate(t, s, good("plc1", "Heartbeat", hb)); len(rep) != 1 {
		t.Fatal("first value not reported")
	}
	c.Add(59 * time.Second)
	if rep := mustUpdate(t, s, good("plc1", "Heartbeat", hb)); len(rep) != 0 {
		t.Errorf("unchanged value re-sent before MaxInterval (%s)", ruleRBE)
	}
	c.Add(time.Second)
	if rep := mustUpdate(t, s, good("plc1", "Heartbeat", hb)); len(rep) != 1 {
		t.Errorf("unchanged value not re-sent after MaxInterval")
	}
	c.Add(30 * time.Second)
	if rep := mustUpdate(t, s, good("plc1", "Heartbeat", hb)); len(rep) != 0 {
		t.Errorf("MaxInterval not measured from the last report")
	}
	if n := len(r.take()); n != 2 {
		t.Errorf("%d DDATA, want 2", n)
	}
}

func TestQualityChangeReported(t *testing.T) {
	c := &clock{t: t0}
	s, r := started(t, testOptions(c), 1)
	v := drivers.DoubleValue(10)
	mustUpdate(t, s, good("plc1", "Tubing/Pressure", v))
	r.take()
	for i, st := range []struct {
		q       drivers.Quality
		wantQ   int32
		present bool
	}{
		{drivers.Stale, 500, true}, {drivers.Stale, 500, false}, {drivers.Good, 192, true}, {drivers.Bad, 0, true},
	} {
		rep := mustUpdate(t, s, sample("plc1", "Tubing/Pressure", v, st.q, t0))
		msgs := r.take()
		if !st.present {
			if len(rep) != 0 || len(msgs) != 0 {
				t.Errorf("step %d: unchanged quality and value reported (%s)", i, ruleRBE)
			}
			continue
		}
		if len(msgs) != 1 {
			t.Fatalf("step %d: quality change to %v not published", i, st.q)
		}
		if q, ok := quality(msgs[0].p.Metrics[0]); !ok || q != st.wantQ {
			t.Errorf("step %d: Quality %d/%v, want %d (%s)", i, q, ok, st.wantQ, ruleQuality)
		}
	}
}

func TestAliases(t *testing.T) {
	c := &clock{t: t0}
	opts := testOptions(c)
	opts.Aliases = true
	s := newSession(t, opts)
	r := &recorder{}
	if err := s.Start(r, 3); err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]string{}
	for _, m := range r.take() {
		for _, mt := range m.p.Metrics {
			if mt.Name == MetricBdSeq || mt.Name == MetricRebirth {
				if mt.HasAlias {
					t.Errorf("%s has an alias (%s)", mt.Name, ruleNBirthCtrl)
				}
				continue
			}
			if !mt.HasAlias || mt.Name == "" {
				t.Errorf("birth metric %q without alias or name (%s)", mt.Name, ruleAliasUnique)
			}
			if prev, dup := seen[mt.Alias]; dup {
				t.Errorf("alias %d used by %q and %q (%s)", mt.Alias, prev, mt.Name, ruleAliasUnique)
			}
			seen[mt.Alias] = mt.Name
		}
	}
	mustUpdate(t, s, good("rtu2", "Level", drivers.UintValue(drivers.UInt32, 5)))
	msgs := r.take()
	m := msgs[0].p.Metrics[0]
	if m.Name != "" || !m.HasAlias || seen[m.Alias] != "Level" || m.Datatype != 0 {
		t.Errorf("DDATA metric %+v, want alias of Level only (%s)", m, ruleAliasOnly)
	}
}

func TestUnknownSamplesNeverPublished(t *testing.T) {
	c := &clock{t: t0}
	s, r := started(t, testOptions(c), 1)
	rep := mustUpdate(t, s,
		good("plc9", "Flow", drivers.FloatValue(1)),
		good("plc1", "Nope", drivers.FloatValue(1)),
		good("", "Flow", drivers.FloatValue(1)),
		good("plc1", "Mode", drivers.StringValue("not a number")),
	)
	if len(rep) != 0 || len(r.take()) != 0 {
		t.Errorf("unknown tags reported %+v (%s)", rep, ruleNeverUnborn)
	}
}

func TestDeviceDeathAndBirth(t *testing.T) {
	c := &clock{t: t0}
	s, r := started(t, testOptions(c), 1)
	if err := s.SetDeviceState("plc1", false); err != nil {
		t.Fatal(err)
	}
	msgs := r.take()
	if len(msgs) != 1 || msgs[0].topic != "spBv1.0/wellsite/DDEATH/gw1/plc1" || !msgs[0].p.HasSeq || msgs[0].p.Seq != 3 {
		t.Fatalf("DDEATH %+v (%s, %s)", msgs, ruleDDeath, ruleSeq)
	}
	if len(msgs[0].p.Metrics) != 0 || msgs[0].retain || msgs[0].qos != 0 {
		t.Errorf("DDEATH payload %+v (%s)", msgs[0], ruleQoSRetain)
	}
	// Down: recorded, not reported, not published.
	if rep := mustUpdate(t, s, good("plc1", "State", drivers.StringValue("tripped"))); len(rep) != 0 || len(r.take()) != 0 {
		t.Errorf("sample for a dead device reported (%s)", ruleDDeath)
	}
	if err := s.SetDeviceState("plc1", false); err != nil || len(r.take()) != 0 {
		t.Errorf("repeated down published again")
	}
	if err := s.SetDeviceState("plc1", true); err != nil {
		t.Fatal(err)
	}
	msgs = r.take()
	if len(msgs) != 1 || msgs[0].topic != "spBv1.0/wellsite/DBIRTH/gw1/plc1" || msgs[0].p.Seq != 4 {
		t.Fatalf("DBIRTH %+v (%s)", msgs, ruleDDeath)
	}
	if st, _ := metricByName(msgs[0].p, "State"); st.Value.Str != "tripped" {
		t.Errorf("DBIRTH State %+v, want the value recorded while down (%s)", st, ruleBirthMetrics)
	}
	if err := s.SetDeviceState("nope", true); !errors.Is(err, ErrUnknownDevice) {
		t.Errorf("unknown device: %v", err)
	}
}

func TestSeqWrapsAndQoS1(t *testing.T) {
	c := &clock{t: t0}
	opts := testOptions(c)
	opts.DataQoS = 1
	s, r := started(t, opts, 1) // seqs 0, 1, 2 used by births
	var last uint64
	for i := range 300 {
		mustUpdate(t, s, good("plc1", "Mode", drivers.IntValue(drivers.Int8, int64(i%2))))
		msgs := r.take()
		if len(msgs) != 1 {
			t.Fatalf("update %d: %d messages", i, len(msgs))
		}
		m := msgs[0]
		want := uint64(3+i) % 256
		if m.p.Seq != want || !m.p.HasSeq {
			t.Fatalf("update %d: seq %d, want %d (%s)", i, m.p.Seq, want, ruleSeq)
		}
		if m.qos != 1 || m.retain {
			t.Fatalf("qos %d retain %v, want 1/false (%s)", m.qos, m.retain, ruleQoSRetain)
		}
		last = m.p.Seq
	}
	if last != (3+299)%256 {
		t.Errorf("last seq %d", last)
	}
}

func TestRebirthCommand(t *testing.T) {
	c := &clock{t: t0}
	s, r := started(t, testOptions(c), 9)
	mustUpdate(t, s, good("plc1", "Mode", drivers.IntValue(drivers.Int8, 1)))
	r.take()
	c.Add(DefaultRebirthHoldoff) // the births of started are a hold-off old: a request is served at once
	cmd := Payload{Timestamp: 1, HasTimestamp: true, Metrics: []Metric{{Name: MetricRebirth, Datatype: TypeBoolean, Value: WireValue{Kind: KindBool, Bits: 1}}}}
	writes, err := s.HandleCommand("spBv1.0/wellsite/NCMD/gw1", cmd.Marshal())
	if err != nil || len(writes) != 0 {
		t.Fatalf("rebirth: %v, %v", writes, err)
	}
	msgs := r.take()
	if len(msgs) != 3 || msgs[0].topic != "spBv1.0/wellsite/NBIRTH/gw1" {
		t.Fatalf("rebirth published %d messages (%s)", len(msgs), ruleRebirth)
	}
	if seq, ok := topLevelSeq(msgs[0].raw); !ok || seq != 0 {
		t.Errorf("rebirth NBIRTH seq %d/%v (%s)", seq, ok, ruleRebirth)
	}
	if bd, _ := metricByName(msgs[0].p, MetricBdSeq); bd.Value.Bits != 9 {
		t.Errorf("rebirth bdSeq %d, want 9 (%s)", bd.Value.Bits, ruleRebirth)
	}
	if msgs[1].p.Seq != 1 || msgs[2].p.Seq != 2 {
		t.Errorf("DBIRTH seqs after rebirth %d %d (%s)", msgs[1].p.Seq, msgs[2].p.Seq, ruleDBirthOrder)
	}
	// Rebirth = false does nothing.
	cmd.Metrics[0].Value.Bits = 0
	if _, err := s.HandleCommand("spBv1.0/wellsite/NCMD/gw1", cmd.Marshal()); err != nil || len(r.take()) != 0 {
		t.Errorf("Rebirth=false: %v", err)
	}
}

func TestHistorical(t *testing.T) {
	c := &clock{t: t0}
	opts := testOptions(c)
	opts.Aliases = true
	s, r := started(t, opts, 1)
	old := t0.Add(-time.Hour)
	err := s.PublishHistorical([]drivers.Sample{
		sample("plc1", "Flow", drivers.FloatValue(1), drivers.Good, old),
		sample("plc1", "Flow", drivers.FloatValue(2), drivers.Stale, old.Add(time.Second)),
		sample("", "Gateway/Uptime", drivers.IntValue(drivers.Int64, 5), drivers.Good, old),
		sample("ghost", "x", drivers.FloatValue(2), drivers.Good, old),
	})
	if err != nil {
		t.Fatal(err)
	}
	msgs := r.take()
	if len(msgs) != 2 || msgs[0].topic != "spBv1.0/wellsite/NDATA/gw1" || msgs[1].topic != "spBv1.0/wellsite/DDATA/gw1/plc1" {
		t.Fatalf("historical messages %+v", msgs)
	}
	if msgs[0].p.Seq != 3 || msgs[1].p.Seq != 4 {
		t.Errorf("historical seqs %d %d (%s)", msgs[0].p.Seq, msgs[1].p.Seq, ruleSeq)
	}
	dm := msgs[1].p.Metrics
	if len(dm) != 2 || !dm[0].IsHistorical || !dm[1].IsHistorical || dm[0].Timestamp != uint64(old.UnixMilli()) || dm[1].Timestamp != uint64(old.UnixMilli())+1000 {
		t.Errorf("historical metrics %+v (%s)", dm, ruleHistorical)
	}
	if q, ok := quality(dm[1]); !ok || q != 500 {
		t.Errorf("historical stale sample Quality %d/%v (%s)", q, ok, ruleQuality)
	}
	// Historical replay does not move the live report baseline.
	if rep := mustUpdate(t, s, good("plc1", "Flow", drivers.FloatValue(2))); len(rep) != 1 {
		t.Errorf("live update after replay not reported")
	}
	s.Stop()
	if err := s.PublishHistorical([]drivers.Sample{good("plc1", "Flow", drivers.FloatValue(1))}); !errors.Is(err, ErrOffline) {
		t.Errorf("offline historical: %v, want ErrOffline", err)
	}
}

func TestOfflineRecordsAndReports(t *testing.T) {
	c := &clock{t: t0}
	s := newSession(t, testOptions(c))
	rep := mustUpdate(t, s, good("plc1", "Mode", drivers.IntValue(drivers.Int8, 2)), good("plc1", "Mode", drivers.IntValue(drivers.Int8, 2)))
	if len(rep) != 1 || s.Online() {
		t.Fatalf("offline update reported %d, want 1 for the bridge's queue", len(rep))
	}
	if err := s.Rebirth(); !errors.Is(err, ErrOffline) {
		t.Errorf("offline rebirth: %v", err)
	}
	if err := s.Death(); !errors.Is(err, ErrOffline) {
		t.Errorf("offline death: %v", err)
	}
	r := &recorder{}
	if err := s.Start(r, 2); err != nil {
		t.Fatal(err)
	}
	db := r.take()[1].p
	if m, _ := metricByName(db, "Mode"); m.Value.Bits != 2 {
		t.Errorf("DBIRTH Mode %+v, want the value recorded offline (%s)", m, ruleBirthMetrics)
	}
	s.Stop()
	if rep := mustUpdate(t, s, good("plc1", "Mode", drivers.IntValue(drivers.Int8, 3))); len(rep) != 1 || len(r.take()) != 0 {
		t.Errorf("stopped session published or did not report")
	}
}

func TestStartPublishFailureStaysOffline(t *testing.T) {
	c := &clock{t: t0}
	s := newSession(t, testOptions(c))
	r := &recorder{fail: errBroken}
	if err := s.Start(r, 1); !errors.Is(err, errBroken) || s.Online() {
		t.Fatalf("Start with failing publisher: %v, online %v", err, s.Online())
	}
	r.fail = nil
	if err := s.Start(r, 2); err != nil || !s.Online() {
		t.Fatalf("second Start: %v", err)
	}
	r.take()
	r.fail = errBroken
	rep, err := s.Update([]drivers.Sample{good("plc1", "Mode", drivers.IntValue(drivers.Int8, 3))})
	if !errors.Is(err, errBroken) || len(rep) != 1 {
		t.Errorf("Update with failing publisher: %d reported, %v", len(rep), err)
	}
}

func TestDeathAndWill(t *testing.T) {
	c := &clock{t: t0}
	s, r := started(t, testOptions(c), 200)
	if s.DeathTopic() != "spBv1.0/wellsite/NDEATH/gw1" {
		t.Errorf("death topic %s", s.DeathTopic())
	}
	if err := s.Death(); err != nil {
		t.Fatal(err)
	}
	msgs := r.take()
	if len(msgs) != 1 || msgs[0].topic != s.DeathTopic() || msgs[0].qos != 1 || msgs[0].retain {
		t.Fatalf("NDEATH %+v (%s, %s)", msgs, ruleWillQoS, ruleWillRetain)
	}
	for _, p := range []*Payload{msgs[0].p, mustUnmarshal(t, WillPayload(200))} {
		if p.HasSeq {
			t.Errorf("NDEATH has seq (%s)", ruleNoSeqNDeath)
		}
		if len(p.Metrics) != 1 || p.Metrics[0].Name != MetricBdSeq || p.Metrics[0].Datatype != TypeInt64 ||
			p.Metrics[0].Value.Kind != KindLong || p.Metrics[0].Value.Bits != 200 || !p.HasTimestamp {
			t.Errorf("NDEATH payload %+v (%s)", p, ruleNBirthBdSeq)
		}
	}
	if s.Online() {
		t.Error("online after Death")
	}
	ncmd, dcmd := s.Topics()
	if ncmd != "spBv1.0/wellsite/NCMD/gw1" || dcmd != "spBv1.0/wellsite/DCMD/gw1/#" {
		t.Errorf("topics %s %s", ncmd, dcmd)
	}
}

func mustUnmarshal(t *testing.T, b []byte) *Payload {
	t.Helper()
	p, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVectorsThroughSession(t *testing.T) {
	c := &clock{t: t0}
	opts := Options{GroupID: "g", EdgeNodeID: "e", Now: c.Now, Devices: []drivers.DeviceInfo{{Name: "d", Tags: vectorTags()}}}
	s := newSession(t, opts)
	for _, v := range vectors {
		mustUpdate(t, s, good("d", v.name, v.value))
	}
	r := &recorder{}
	if err := s.Start(r, 0); err != nil {
		t.Fatal(err)
	}
	db := r.take()[1].p
	for i, v := range vectors {
		m := db.Metrics[i]
		if m.Name != v.name || m.Datatype != DataType(v.value.Type()) || m.IsNull != v.value.IsNull() {
			t.Errorf("%s: DBIRTH metric %+v (%s)", v.name, m, ruleBirthMetrics)
		}
		if !v.value.IsNull() && (m.Value.Kind != v.wire.Kind || m.Value.Bits != v.wire.Bits || m.Value.Str != v.wire.Str || !bytes.Equal(m.Value.Bytes, v.wire.Bytes)) {
			t.Errorf("%s: DBIRTH value %+v, want %+v", v.name, m.Value, v.wire)
		}
		if v.value.IsNull() && m.Value.Kind != KindNone {
			t.Errorf("%s: null with a value field (%s)", v.name, ruleNull)
		}
	}
}

func TestNewSessionValidation(t *testing.T) {
	c := &clock{t: t0}
	bad := map[string]func(*Options){
		"group with slash":   func(o *Options) { o.GroupID = "a/b" },
		"edge with plus":     func(o *Options) { o.EdgeNodeID = "a+" },
		"empty edge":         func(o *Options) { o.EdgeNodeID = "" },
		"device with hash":   func(o *Options) { o.Devices[0].Name = "p#" },
		"duplicate device":   func(o *Options) { o.Devices[1].Name = "plc1" },
		"duplicate tag":      func(o *Options) { o.Devices[0].Tags[1].Name = "Tubing/Pressure" },
		"empty tag":          func(o *Options) { o.Devices[0].Tags[1].Name = "" },
		"invalid utf8 tag":   func(o *Options) { o.Devices[0].Tags[1].Name = "\xff" },
		"unknown type":       func(o *Options) { o.Devices[0].Tags[1].Type = drivers.Unknown },
		"reserved bdSeq":     func(o *Options) { o.NodeMetrics[0].Name = "bdSeq" },
		"reserved control":   func(o *Options) { o.NodeMetrics[0].Name = "Node Control/Rebirth" },
		"qos 2":              func(o *Options) { o.DataQoS = 2 },
		"negative deadband":  func(o *Options) { o.Devices[0].Tags[0].Deadband = -1 },
		"invalid utf8 group": func(o *Options) { o.GroupID = "\xc3" },
	}
	for name, mutate := range bad {
		o := testOptions(c)
		mutate(&o)
		if _, err := NewSession(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestConcurrentUseKeepsSeqOrder(t *testing.T) {
	c := &clock{t: t0}
	s, r := started(t, testOptions(c), 1)
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 200 {
				switch g {
				case 0, 1:
					_, _ = s.Update([]drivers.Sample{good("plc1", "Mode", drivers.IntValue(drivers.Int8, int64(i%100)))})
				case 2:
					_ = s.SetDeviceState("rtu2", i%2 == 0)
				case 3:
					if i%50 == 0 {
						_ = s.Rebirth()
					}
					_, _ = s.HandleCommand("spBv1.0/wellsite/DCMD/gw1/plc1", dcmd(Metric{Name: "Mode", Value: WireValue{Kind: KindInt, Bits: 1}}))
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
	var prev uint64 = 2
	for i, m := range r.take() {
		want := (prev + 1) % 256
		if m.topic == "spBv1.0/wellsite/NBIRTH/gw1" {
			want = 0
		}
		if m.p.Seq != want {
			t.Fatalf("message %d %s: seq %d, want %d (%s)", i, m.topic, m.p.Seq, want, ruleSeq)
		}
		prev = m.p.Seq
	}
}

// A device that is down when its backlog is replayed still gets it: born for the purpose,
// given the historical DDATA, and declared dead again, so that no value is lost and no DATA
// goes out for a dead device.
func TestHistoricalForDeadDevice(t *testing.T) {
	c := &clock{t: t0}
	s, r := started(t, testOptions(c), 1)
	if err := s.SetDeviceState("plc1", false); err != nil {
		t.Fatal(err)
	}
	r.take()
	old := t0.Add(-time.Hour)
	if err := s.PublishHistorical([]drivers.Sample{sample("plc1", "Flow", drivers.FloatValue(7), drivers.Good, old)}); err != nil {
		t.Fatal(err)
	}
	msgs := r.take()
	want := []string{"spBv1.0/wellsite/DBIRTH/gw1/plc1", "spBv1.0/wellsite/DDATA/gw1/plc1", "spBv1.0/wellsite/DDEATH/gw1/plc1"}
	if len(msgs) != len(want) {
		t.Fatalf("%d messages %+v, want DBIRTH, DDATA, DDEATH", len(msgs), msgs)
	}
	for i, m := range msgs {
		if m.topic != want[i] {
			t.Errorf("message %d: %s, want %s (%s)", i, m.topic, want[i], ruleDDeath)
		}
		if i > 0 && m.p.Seq != (msgs[i-1].p.Seq+1)%256 {
			t.Errorf("seq %d after %d (%s)", m.p.Seq, msgs[i-1].p.Seq, ruleSeq)
		}
	}
	if dm := msgs[1].p.Metrics; len(dm) != 1 || !dm[0].IsHistorical || dm[0].Timestamp != uint64(old.UnixMilli()) {
		t.Errorf("backlog metric %+v (%s)", dm, ruleHistorical)
	}
	// Still dead for live data.
	mustUpdate(t, s, good("plc1", "Flow", drivers.FloatValue(8)))
	if msgs := r.take(); len(msgs) != 0 {
		t.Errorf("live DATA for a dead device: %+v", msgs)
	}
}
