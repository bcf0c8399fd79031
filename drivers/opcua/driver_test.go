package opcua

import (
	"math"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/wellgate/wellgate/drivers"
)

// typeCase is one OPC UA built-in type with a value and the sample it must become.
type typeCase struct {
	name string
	typ  ua.TypeID
	v    any // a Go value of typ
	v2   any // another one
	want drivers.Value
	sp   drivers.Type
}

var source = time.Date(2024, 3, 4, 5, 6, 7, 8_000_000, time.UTC)

func typeCases() []typeCase {
	return []typeCase{
		{"Boolean", ua.TypeIDBoolean, true, false, drivers.BoolValue(true), drivers.Boolean},
		{"SByte", ua.TypeIDSByte, int8(-100), int8(5), drivers.IntValue(drivers.Int8, -100), drivers.Int8},
		{"Byte", ua.TypeIDByte, uint8(200), uint8(1), drivers.UintValue(drivers.UInt8, 200), drivers.UInt8},
		{"Int16", ua.TypeIDInt16, int16(-30000), int16(2), drivers.IntValue(drivers.Int16, -30000), drivers.Int16},
		{"UInt16", ua.TypeIDUint16, uint16(60000), uint16(3), drivers.UintValue(drivers.UInt16, 60000), drivers.UInt16},
		{"Int32", ua.TypeIDInt32, int32(-2_000_000_000), int32(4), drivers.IntValue(drivers.Int32, -2_000_000_000), drivers.Int32},
		{"UInt32", ua.TypeIDUint32, uint32(4_000_000_000), uint32(5), drivers.UintValue(drivers.UInt32, 4_000_000_000), drivers.UInt32},
		{"Int64", ua.TypeIDInt64, int64(math.MinInt64), int64(6), drivers.IntValue(drivers.Int64, math.MinInt64), drivers.Int64},
		{"UInt64", ua.TypeIDUint64, uint64(math.MaxUint64), uint64(7), drivers.UintValue(drivers.UInt64, math.MaxUint64), drivers.UInt64},
		{"Float", ua.TypeIDFloat, float32(1.5), float32(8), drivers.FloatValue(1.5), drivers.Float},
		{"Double", ua.TypeIDDouble, 2.25, 9.0, drivers.DoubleValue(2.25), drivers.Double},
		{"String", ua.TypeIDString, "höhe", "x", drivers.StringValue("höhe"), drivers.String},
		{"DateTime", ua.TypeIDDateTime, source, source.Add(time.Hour), drivers.DateTimeValue(source), drivers.DateTime},
		{"ByteString", ua.TypeIDByteString, []byte{0, 1, 255}, []byte{9}, drivers.BytesValue([]byte{0, 1, 255}), drivers.Bytes},
	}
}

// TestEveryTypeBothModes reads a node of every built-in type that has a Sparkplug type, with
// the tag's type given, in subscribe and in poll mode: the first value, then a change, each
// with the tightest type and its source timestamp.
func TestEveryTypeBothModes(t *testing.T) {
	ts := shared(t)
	cases := typeCases()
	var tags []TagOptions
	for _, c := range cases {
		tags = append(tags, TagOptions{Name: "T/" + c.name, NodeID: ts.add("every."+c.name, c.typ, c.v, false), Type: c.sp.String()})
	}
	r := startDriver(t, Options{Devices: []DeviceOptions{
		ts.device("Sub", ModeSubscribe, tags...),
		ts.device("Poll", ModePoll, tags...),
	}})
	for _, dev := range r.d.Devices() {
		for i, tag := range dev.Tags {
			if tag.Type != cases[i].sp {
				t.Errorf("%s %s described as %s, want %s", dev.Name, tag.Name, tag.Type, cases[i].sp)
			}
		}
	}
	for _, dev := range []string{"Sub", "Poll"} {
		for _, c := range cases {
			r.sink.waitValue(t, 5*time.Second, dev, "T/"+c.name, drivers.Good, c.want)
		}
	}
	changed := source.Add(time.Minute)
	for _, c := range cases {
		ts.set("every."+c.name, c.v2, changed)
	}
	for _, dev := range []string{"Sub", "Poll"} {
		for _, c := range cases {
			want, err := toValue(ua.MustVariant(c.v2), c.sp)
			if err != nil {
				t.Fatal(err)
			}
			got := r.sink.waitValue(t, 5*time.Second, dev, "T/"+c.name, drivers.Good, want)
			if !got.Time.Equal(changed) {
				t.Errorf("%s %s: time %v, want the source timestamp %v", dev, c.name, got.Time, changed)
			}
		}
	}
}

// TestUntypedTagsLearnTheirType: tags without a type are published as Double (numbers) until
// their node's type is known; the driver keeps the learned types, and the next start
// describes and publishes each with its node's own type. A String node cannot be a Double:
// it is refused in the first run, with the line to add in the log.
func TestUntypedTagsLearnTheirType(t *testing.T) {
	ts := shared(t)
	dir := t.TempDir()
	tags := []TagOptions{
		{Name: "Count", NodeID: ts.add("untyped.count", ua.TypeIDInt16, int16(-7), false)},
		{Name: "Name", NodeID: ts.add("untyped.name", ua.TypeIDString, "pump", false), Where: "site.toml:12"},
	}
	opts := Options{StateDir: dir, Devices: []DeviceOptions{ts.device("Untyped", ModePoll, tags...)}}
	r := startDriver(t, opts)
	if got := r.d.Devices()[0].Tags; got[0].Type != drivers.Double || got[1].Type != drivers.Double {
		t.Fatalf("first start describes %v and %v, want Double (not known yet)", got[0].Type, got[1].Type)
	}
	r.sink.waitValue(t, 5*time.Second, "Untyped", "Count", drivers.Good, drivers.DoubleValue(-7))
	r.sink.waitFor(t, 5*time.Second, "the string refused", func() bool {
		return r.log.contains(`site.toml:12`) && r.log.contains(`type = \"String\"`)
	})
	if s, _ := r.sink.sample("Untyped", "Name"); s.Quality != drivers.Bad {
		t.Fatalf("a String node published as Double: %+v", s)
	}
	if err := r.d.Close(); err != nil {
		t.Fatal(err)
	}

	r2 := startDriver(t, opts)
	if got := r2.d.Devices()[0].Tags; got[0].Type != drivers.Int16 || got[1].Type != drivers.String {
		t.Fatalf("second start describes %v and %v, want Int16 and String", got[0].Type, got[1].Type)
	}
	r2.sink.waitValue(t, 5*time.Second, "Untyped", "Count", drivers.Good, drivers.IntValue(drivers.Int16, -7))
	r2.sink.waitValue(t, 5*time.Second, "Untyped", "Name", drivers.Good, drivers.StringValue("pump"))
}

// TestTypeConversions publishes nodes as the type the tag map asks for, and refuses at
// connect a node whose type cannot be converted, naming the tag's line.
func TestTypeConversions(t *testing.T) {
	ts := shared(t)
	r := startDriver(t, Options{Devices: []DeviceOptions{ts.device("Conv", ModeSubscribe,
		TagOptions{Name: "DoubleAsInt16", NodeID: ts.add("conv.d", ua.TypeIDDouble, 41.6, false), Type: "Int16"},
		TagOptions{Name: "Int32AsDouble", NodeID: ts.add("conv.i", ua.TypeIDInt32, int32(-5), false), Type: "double"},
		TagOptions{Name: "ByteAsBool", NodeID: ts.add("conv.b", ua.TypeIDByte, uint8(1), false), Type: "Boolean"},
		TagOptions{Name: "TooBig", NodeID: ts.add("conv.big", ua.TypeIDUint32, uint32(70000), false), Type: "UInt16"},
		TagOptions{Name: "StringAsFloat", NodeID: ts.add("conv.s", ua.TypeIDString, "1.5", false), Type: "Float", Where: "conv.toml:9"},
		TagOptions{Name: "Missing", NodeID: "nsu=urn:wellgate:test;s=conv.none", Type: "Float"},
		TagOptions{Name: "NoNamespace", NodeID: "nsu=urn:nowhere;i=5", Type: "Float"},
	)}})
	r.sink.waitValue(t, 5*time.Second, "Conv", "DoubleAsInt16", drivers.Good, drivers.IntValue(drivers.Int16, 42))
	r.sink.waitValue(t, 5*time.Second, "Conv", "Int32AsDouble", drivers.Good, drivers.DoubleValue(-5))
	r.sink.waitValue(t, 5*time.Second, "Conv", "ByteAsBool", drivers.Good, drivers.BoolValue(true))
	for _, tag := range []string{"TooBig", "StringAsFloat", "Missing", "NoNamespace"} {
		r.sink.waitFor(t, 5*time.Second, tag+" bad", func() bool {
			s, ok := r.sink.sample("Conv", tag)
			return ok && s.Quality == drivers.Bad && s.Value.IsNull()
		})
	}
	for _, want := range []string{"out of range for UInt16", "conv.toml:9", `set type = \"String\"`, "BadNodeIDUnknown", "urn:nowhere"} {
		if !r.log.contains(want) {
			t.Errorf("log lacks %q:\n%s", want, r.log)
		}
	}
	// Up follows the samples (samples first, then up): wait for it, do not read it once.
	r.sink.waitFor(t, 5*time.Second, "the device up despite its refused tags", func() bool { return r.d.Status()[0].Up })
}

// TestStatusCodesAndTimestamps: good → Good, uncertain → Stale with the value, bad → Bad
// with a null; the source timestamp is kept, in both modes.
func TestStatusCodesAndTimestamps(t *testing.T) {
	ts := shared(t)
	node := ts.add("status.level", ua.TypeIDFloat, float32(1), false)
	r := startDriver(t, Options{Devices: []DeviceOptions{
		ts.device("StSub", ModeSubscribe, TagOptions{Name: "Level", NodeID: node, Type: "Float"}),
		ts.device("StPoll", ModePoll, TagOptions{Name: "Level", NodeID: node, Type: "Float"}),
	}})
	waitSubscribed(t, ts, "status.level")
	for _, dev := range []string{"StSub", "StPoll"} {
		r.sink.waitValue(t, 5*time.Second, dev, "Level", drivers.Good, drivers.FloatValue(1))
	}
	ts.setStatus("status.level", float32(2), ua.StatusUncertainLastUsableValue)
	for _, dev := range []string{"StSub", "StPoll"} {
		r.sink.waitValue(t, 5*time.Second, dev, "Level", drivers.Stale, drivers.FloatValue(2))
	}
	ts.setStatus("status.level", nil, ua.StatusBadSensorFailure)
	for _, dev := range []string{"StSub", "StPoll"} {
		r.sink.waitValue(t, 5*time.Second, dev, "Level", drivers.Bad, drivers.Null(drivers.Float))
	}
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	ts.set("status.level", float32(3), at)
	for _, dev := range []string{"StSub", "StPoll"} {
		if s := r.sink.waitValue(t, 5*time.Second, dev, "Level", drivers.Good, drivers.FloatValue(3)); !s.Time.Equal(at) {
			t.Errorf("%s: time %v, want the source timestamp %v", dev, s.Time, at)
		}
	}
}

// TestMonitoredItemParameters checks what the driver asks the server for: sampling at the
// interval, queue size 1, the deadband as an absolute DataChangeFilter (none without one).
func TestMonitoredItemParameters(t *testing.T) {
	ts := shared(t)
	o := ts.device("Params", ModeSubscribe,
		TagOptions{Name: "Banded", NodeID: ts.add("params.banded", ua.TypeIDDouble, 1.0, false), Type: "Double", Deadband: 0.5},
		TagOptions{Name: "Plain", NodeID: ts.add("params.plain", ua.TypeIDDouble, 1.0, false), Type: "Double"})
	o.Interval = 250 * time.Millisecond
	r := startDriver(t, Options{Devices: []DeviceOptions{o}})
	waitSubscribed(t, ts, "params.banded")
	waitSubscribed(t, ts, "params.plain")
	if tags := r.d.Devices()[0].Tags; tags[0].Deadband != 0.5 {
		t.Fatalf("TagInfo deadband %v, want 0.5 (report by exception applies it too)", tags[0].Deadband)
	}
	for _, it := range ts.items() {
		name := it.ItemToMonitor.NodeID.StringID()
		if name != "params.banded" && name != "params.plain" {
			continue
		}
		p := it.RequestedParameters
		if p.QueueSize != 1 || p.SamplingInterval != 250 || !p.DiscardOldest {
			t.Errorf("%s: queue %d, sampling %v, discard oldest %v; want 1, 250, true", name, p.QueueSize, p.SamplingInterval, p.DiscardOldest)
		}
		f, _ := p.Filter.Value.(*ua.DataChangeFilter)
		switch name {
		case "params.banded":
			if f == nil || f.DeadbandType != uint32(ua.DeadbandTypeAbsolute) || f.DeadbandValue != 0.5 || f.Trigger != ua.DataChangeTriggerStatusValue {
				t.Errorf("banded filter %+v", p.Filter)
			}
		case "params.plain":
			if f != nil {
				t.Errorf("plain tag has a filter %+v", f)
			}
		}
	}
}

// TestOperationLimitsSplit: reads and monitored-item creation are split by the limits the
// server states; a limit it does not state but enforces (BadTooManyOperations) halves the
// requests until they pass.
func TestOperationLimitsSplit(t *testing.T) {
	ts := startServer(t, serverLimits{read: 3, monitoredPerCall: 2})
	var tags []TagOptions
	for i := range 7 {
		name := "lim." + string(rune('a'+i))
		tags = append(tags, TagOptions{Name: name, NodeID: ts.add(name, ua.TypeIDInt32, int32(i), false), Type: "Int32"})
	}
	check := func(what string, sizes []int, limit int) int {
		t.Helper()
		sum := 0
		for _, n := range sizes {
			if n > limit {
				t.Errorf("%s of %d operations, limit %d: %v", what, n, limit, sizes)
			}
			sum += n
		}
		return sum
	}
	r := startDriver(t, Options{Devices: []DeviceOptions{ts.device("Lim", ModeSubscribe, tags...)}})
	for i := range 7 {
		r.sink.waitValue(t, 5*time.Second, "Lim", "lim."+string(rune('a'+i)), drivers.Good, drivers.IntValue(drivers.Int32, int64(i)))
	}
	waitSubscribed(t, ts, "lim.g")
	reads, items := ts.sizes()
	check("read", reads, 3)
	if n := check("monitor", items, 2); n != 7 {
		t.Errorf("monitored items created %d, want 7: %v", n, items)
	}
	if err := r.d.Close(); err != nil {
		t.Fatal(err)
	}

	// A limit of 4 the server does not state.
	ts.setLimits(serverLimits{hiddenRead: 4})
	r2 := startDriver(t, Options{Devices: []DeviceOptions{ts.device("Hidden", ModePoll, tags...)}})
	for i := range 7 {
		r2.sink.waitValue(t, 5*time.Second, "Hidden", "lim."+string(rune('a'+i)), drivers.Good, drivers.IntValue(drivers.Int32, int64(i)))
	}
	reads, _ = ts.sizes()
	refused := 0
	for _, n := range reads {
		if n > 4 {
			refused++
		}
	}
	if refused == 0 || refused > 2 {
		t.Errorf("reads %v: want the first large read refused, then reads of at most 4", reads)
	}
	if last := reads[len(reads)-1]; last > 4 {
		t.Errorf("still reading %d nodes after BadTooManyOperations: %v", last, reads)
	}
}

// TestScanRatePoll: SetScanRate changes the poll interval at once, and 0 restores it.
func TestScanRatePoll(t *testing.T) {
	ts := shared(t)
	o := ts.device("Scan", ModePoll, TagOptions{Name: "Level", NodeID: ts.add("scan.level", ua.TypeIDDouble, 1.0, false), Type: "Double"})
	o.Interval = time.Hour
	r := startDriver(t, Options{Devices: []DeviceOptions{o}})
	r.sink.waitValue(t, 5*time.Second, "Scan", "Level", drivers.Good, drivers.DoubleValue(1))
	ts.set("scan.level", 2.0, time.Now())
	r.d.SetScanRate(20 * time.Millisecond)
	r.sink.waitValue(t, 5*time.Second, "Scan", "Level", drivers.Good, drivers.DoubleValue(2))
	ts.set("scan.level", 3.0, time.Now())
	r.sink.waitValue(t, 5*time.Second, "Scan", "Level", drivers.Good, drivers.DoubleValue(3))
}

// TestScanRateSubscribe: in subscribe mode SetScanRate creates the subscription again with the
// new publishing interval, without the device going down.
func TestScanRateSubscribe(t *testing.T) {
	ts := shared(t)
	r := startDriver(t, Options{Devices: []DeviceOptions{ts.device("ScanSub", ModeSubscribe,
		TagOptions{Name: "Level", NodeID: ts.add("scansub.level", ua.TypeIDDouble, 1.0, false), Type: "Double"})}})
	waitSubscribed(t, ts, "scansub.level")
	r.d.SetScanRate(120 * time.Millisecond)
	r.sink.waitFor(t, 5*time.Second, "resubscribed at 120ms", func() bool {
		for _, it := range ts.items() {
			if it.ItemToMonitor.NodeID.StringID() == "scansub.level" && it.RequestedParameters.SamplingInterval == 120 {
				return ts.itemsOn("scansub.level") == 1
			}
		}
		return false
	})
	ts.set("scansub.level", 2.0, time.Now())
	r.sink.waitValue(t, 5*time.Second, "ScanSub", "Level", drivers.Good, drivers.DoubleValue(2))
	for _, e := range r.sink.snapshot() {
		if e.state && !e.up {
			t.Fatal("the device went down for a scan rate change")
		}
	}
}

// TestCloseIsIdempotentAndBounded: Close before Run makes Run return at once; Close twice
// returns the same; a closed driver's Run returns nil.
func TestCloseIsIdempotentAndBounded(t *testing.T) {
	d, err := New(Options{Devices: []DeviceOptions{{Name: "X", Endpoint: "opc.tcp://127.0.0.1:1",
		Tags: []TagOptions{{Name: "a", NodeID: "i=1"}}}}}, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(t.Context(), newTestSink()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run after Close did not return")
	}
}
