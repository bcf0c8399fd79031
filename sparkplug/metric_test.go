package sparkplug

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/wellgate/wellgate/drivers"
)

// The per-tag state is what issue 14 sized: keep it one cache line.
func TestMetricStateSize(t *testing.T) {
	if n := unsafe.Sizeof(metricState{}); n != 64 {
		t.Errorf("metricState is %d bytes, want 64", n)
	}
}

// Every slot gives back exactly the value stored (drivers.Value.Equal), whatever the type,
// null, NaN or odd bits, and compares exactly.
func TestSlotsKeepValuesExactly(t *testing.T) {
	nan32 := drivers.FloatValue(float32(math.NaN()))
	cases := []drivers.Value{
		drivers.DoubleValue(math.NaN()), drivers.DoubleValue(math.Copysign(0, -1)), drivers.DoubleValue(math.Inf(-1)),
		drivers.DoubleValue(1.5), nan32, drivers.FloatValue(-3.25),
		drivers.IntValue(drivers.Int8, -5), drivers.IntValue(drivers.Int64, math.MinInt64),
		drivers.UintValue(drivers.UInt64, math.MaxUint64), drivers.UintValue(drivers.Boolean, 5),
		drivers.BoolValue(true), drivers.DateTimeValue(t0),
		drivers.StringValue("running"), drivers.TextValue(""), drivers.BytesValue([]byte{0, 1, 0xff}),
	}
	for _, v := range cases {
		for _, null := range []bool{false, true} {
			if null {
				v = drivers.Null(v.Type())
			}
			tags := []drivers.TagInfo{{Name: "a", Type: v.Type()}, {Name: "b", Type: v.Type()}}
			d := makeDevice("d", tags, 0, 0)
			for s := range nSlots {
				d.store(1, s, v)
				if got := d.load(1, s); !got.Equal(v) {
					t.Errorf("%s %v slot %d: load gives %v", v.Type(), v, s, got)
				}
				if !d.same(1, s, v) || d.isNull(1, s) != v.IsNull() {
					t.Errorf("%s %v slot %d: same %v, isNull %v", v.Type(), v, s, d.same(1, s, v), d.isNull(1, s))
				}
			}
			if got := d.load(0, cur); !got.Equal(drivers.Null(v.Type())) {
				t.Errorf("%s: a fresh metric holds %v, want null", v.Type(), got)
			}
			d.store(1, rep, drivers.Null(v.Type()))
			d.copySlot(1, cur, rep)
			if eq, sameNull := d.sameSlots(1, cur, rep); !eq || !sameNull || !d.load(1, rep).Equal(v) {
				t.Errorf("%s %v: copySlot gives %v", v.Type(), v, d.load(1, rep))
			}
		}
	}
}

// Times keep their order to the nanosecond, and the zero time means "no sample".
func TestSplitTimeOrder(t *testing.T) {
	var m metricState
	m.tMs = zeroMs
	if m.hasTime() || !m.newer(time.Time{}.Add(-time.Nanosecond)) || m.newer(time.Time{}) {
		t.Fatal("zero time: hasTime or newer wrong")
	}
	opcZero := time.Date(1601, 1, 1, 0, 0, 0, 0, time.UTC) // out of UnixNano's range
	for _, at := range []time.Time{t0, t0.Add(999_999), t0.Add(-1), opcZero, opcZero.Add(1500 * time.Microsecond)} {
		ms, sub := splitTime(at)
		m.tMs, m.meta = ms, m.meta&^subMask|sub
		if !m.hasTime() || m.newer(at) || !m.newer(at.Add(-time.Nanosecond)) || m.newer(at.Add(time.Nanosecond)) {
			t.Errorf("%v: order lost", at)
		}
		if ms != at.UnixMilli() {
			t.Errorf("%v: ms %d, want %d", at, ms, at.UnixMilli())
		}
	}
}

// Lookups: samples in configuration order, out of order, from several devices in one batch,
// and unknown ones, all land on the right metric; Update leaves the caller's batch alone.
func TestUpdateLookups(t *testing.T) {
	c := &clock{t: t0}
	s, r := started(t, testOptions(c), 1)
	batch := []drivers.Sample{
		good("plc1", "Mode", drivers.IntValue(drivers.Int8, 3)),
		good("rtu2", "Level", drivers.IntValue(drivers.UInt32, 9)),
		good("plc1", "Nope", drivers.IntValue(drivers.Int8, 1)),
		good("plc1", "Flow", drivers.FloatValue(2)),
		good("plc1", "Tubing/Pressure", drivers.DoubleValue(50)),
		good("", "Gateway/Uptime", drivers.IntValue(drivers.Int64, 60)),
		good("plc9", "Flow", drivers.FloatValue(2)),
		{Device: "plc1", Tag: "State", Value: drivers.StringValue("on"), Quality: drivers.Good}, // no time
	}
	orig := slices.Clone(batch)
	rep := mustUpdate(t, s, batch...)
	if len(rep) != 6 {
		t.Fatalf("reported %d samples, want 6: %+v", len(rep), rep)
	}
	if !slices.Equal(batch, orig) {
		t.Errorf("Update changed the caller's batch: %+v", batch)
	}
	if !rep[5].Time.Equal(t0) || rep[5].Tag != "State" {
		t.Errorf("sample without time reported as %+v, want the session clock", rep[5])
	}
	msgs := r.take()
	want := map[string][]string{
		"spBv1.0/wellsite/NDATA/gw1":      {"Gateway/Uptime"},
		"spBv1.0/wellsite/DDATA/gw1/plc1": {"Mode", "Flow", "Tubing/Pressure", "State"},
		"spBv1.0/wellsite/DDATA/gw1/rtu2": {"Level"},
	}
	order := []string{"spBv1.0/wellsite/NDATA/gw1", "spBv1.0/wellsite/DDATA/gw1/plc1", "spBv1.0/wellsite/DDATA/gw1/rtu2"}
	if len(msgs) != len(order) {
		t.Fatalf("%d messages, want %d", len(msgs), len(order))
	}
	for k, m := range msgs {
		if m.topic != order[k] {
			t.Errorf("message %d on %s, want %s (node first, then devices in configuration order)", k, m.topic, order[k])
		}
		var names []string
		for _, mt := range m.p.Metrics {
			names = append(names, mt.Name)
		}
		if !slices.Equal(names, want[m.topic]) {
			t.Errorf("%s carries %v, want %v", m.topic, names, want[m.topic])
		}
	}
	// The same values again, in reverse order: nothing to report.
	slices.Reverse(orig)
	if rep := mustUpdate(t, s, orig...); len(rep) != 0 {
		t.Errorf("unchanged batch reported %+v", rep)
	}
}

// The per-tag state of a fleet stays small (issue 14: two sessions × 40,000 tags in a 256 MB
// box); BenchmarkSessionMemory reports the exact figure.
func TestSessionMemoryPerTag(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 40,000 tags")
	}
	const devices, tags = 200, 200
	devs := fleetDevices(devices, tags)
	before := heapInUse()
	s, err := NewSession(Options{GroupID: "g", EdgeNodeID: "e", Aliases: true, Devices: devs})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		if _, err := s.Update(fleetBatch(d, 0, t0)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Start(discard{}, 0); err != nil {
		t.Fatal(err)
	}
	perTag := float64(heapInUse()-before) / (devices * tags)
	if perTag > 150 {
		t.Errorf("%.0f bytes per tag, want under 150", perTag)
	}
	t.Logf("%.1f bytes per tag", perTag)
	_ = s.Polled()
}

// latencies is an Observer that keeps what it observes.
type latencies []float64

func (l *latencies) Observe(v float64) { *l = append(*l, v) }

// Options.Latency observes each metric of live DATA, from its sample's time to its
// publication, and nothing of births or historical replay.
func TestLatencyObservesLiveData(t *testing.T) {
	c := &clock{t: t0}
	opts := testOptions(c)
	var obs latencies
	opts.Latency = &obs
	s := newSession(t, opts)
	mustUpdate(t, s, good("plc1", "Mode", drivers.IntValue(drivers.Int8, 1))) // offline: recorded
	r := &recorder{}
	if err := s.Start(r, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Rebirth(); err != nil {
		t.Fatal(err)
	}
	if len(obs) != 0 {
		t.Fatalf("births observed %v", obs)
	}
	c.Add(250 * time.Millisecond)
	mustUpdate(t, s,
		good("plc1", "Mode", drivers.IntValue(drivers.Int8, 2)),
		sample("plc1", "Flow", drivers.FloatValue(7), drivers.Good, t0.Add(200*time.Millisecond)),
		good("plc1", "Mode", drivers.IntValue(drivers.Int8, 2)), // unchanged: not published
	)
	if !slices.Equal(obs, latencies{0.25, 0.05}) {
		t.Errorf("live DATA observed %v, want [0.25 0.05]", obs)
	}
	obs = nil
	if err := s.PublishHistorical([]drivers.Sample{good("plc1", "Mode", drivers.IntValue(drivers.Int8, 9))}); err != nil {
		t.Fatal(err)
	}
	if len(r.take()) == 0 || len(obs) != 0 {
		t.Errorf("historical DATA observed %v", obs)
	}
	if _, err := s.ReportWritten([]drivers.Sample{good("rtu2", "Level", drivers.IntValue(drivers.UInt32, 4))}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(obs, latencies{0.25}) {
		t.Errorf("read-back DATA observed %v, want [0.25]", obs)
	}
}

// A batch that names tags out of configuration order, or another device's, still costs no
// allocation per unchanged sample.
func TestUpdateUnchangedAllocs(t *testing.T) {
	devs := fleetDevices(3, 50)
	s, err := NewSession(Options{GroupID: "g", EdgeNodeID: "e", Devices: devs})
	if err != nil {
		t.Fatal(err)
	}
	var batch []drivers.Sample
	for _, d := range devs {
		batch = append(batch, fleetBatch(d, 0, t0)...)
	}
	if err := s.Start(discard{}, 0); err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, s, batch...)
	slices.Reverse(batch)
	for i := range batch {
		batch[i].Tag = strings.Clone(batch[i].Tag) // equal, not shared
	}
	if n := testing.AllocsPerRun(20, func() { mustUpdate(t, s, batch...) }); n != 0 {
		t.Errorf("%v allocations per unchanged batch, want 0", n)
	}
}

// Report publishes what Update publishes without handing back a copy of the reported samples:
// the embedded broker's output, which has no use for them, saves that allocation per batch.
func TestReportAllocatesLessThanUpdate(t *testing.T) {
	devs := fleetDevices(1, 50)
	s, err := NewSession(Options{GroupID: "g", EdgeNodeID: "e", Devices: devs})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(discard{}, 0); err != nil {
		t.Fatal(err)
	}
	batches := [2][]drivers.Sample{fleetBatch(devs[0], 0, t0), fleetBatch(devs[0], 1000, t0)}
	k := 0
	next := func() []drivers.Sample { k++; return batches[k%2] } // every value changes every call
	update := testing.AllocsPerRun(50, func() {
		if r, err := s.Update(next()); err != nil || len(r) == 0 {
			t.Fatalf("Update: %d reported, %v", len(r), err)
		}
	})
	report := testing.AllocsPerRun(50, func() {
		if err := s.Report(next(), false); err != nil {
			t.Fatal(err)
		}
	})
	buf := make([]drivers.Sample, 0, 64)
	appended := testing.AllocsPerRun(50, func() {
		if r, err := s.AppendReported(buf[:0], next(), false); err != nil || len(r) == 0 || &r[0] != &buf[:1][0] {
			t.Fatalf("AppendReported: %d reported (want some, in the buffer given), %v", len(r), err)
		}
	})
	t.Logf("allocations per changed batch of 50: Update %v, Report %v, AppendReported %v", update, report, appended)
	if report >= update || appended > report {
		t.Errorf("a changed batch costs %v allocations through Report, %v through AppendReported, %v through Update; want fewer through Report and AppendReported", report, appended, update)
	}

	// AppendReported reports what Update reports.
	a, _ := NewSession(Options{GroupID: "g", EdgeNodeID: "e", Devices: devs})
	u, _ := NewSession(Options{GroupID: "g", EdgeNodeID: "e", Devices: devs})
	for _, x := range []*Session{a, u} {
		if err := x.Start(discard{}, 0); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 4 {
		b := fleetBatch(devs[0], i/2, t0.Add(time.Duration(i)*time.Second)) // changes every other call
		got, err1 := a.AppendReported(nil, b, i == 3)
		want, err2 := u.Update(b)
		if i == 3 {
			want, err2 = u.ReportWritten(b)
		}
		if err1 != nil || err2 != nil || !slices.Equal(got, want) {
			t.Fatalf("batch %d: AppendReported reported %d samples (%v), Update %d (%v)", i, len(got), err1, len(want), err2)
		}
	}
}
