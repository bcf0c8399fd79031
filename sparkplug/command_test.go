package sparkplug

import (
	"errors"
	"math"
	"testing"

	"github.com/wellgate/wellgate/drivers"
)

func dcmd(ms ...Metric) []byte {
	p := Payload{Timestamp: 1, HasTimestamp: true, Metrics: ms}
	return p.Marshal()
}

func TestDCMDWrites(t *testing.T) {
	c := &clock{t: t0}
	opts := testOptions(c)
	opts.Aliases = true
	s, r := started(t, opts, 1)
	const topic = "spBv1.0/wellsite/DCMD/gw1/plc1"
	cases := []struct {
		name string
		m    Metric
		want drivers.Value
	}{
		{"by name, int_value sign-extended", Metric{Name: "Mode", Datatype: TypeInt8, Value: WireValue{Kind: KindInt, Bits: 4294967291}}, drivers.IntValue(drivers.Int8, -5)},
		{"by name, long_value", Metric{Name: "Mode", Value: WireValue{Kind: KindLong, Bits: math.MaxUint64 - 4}}, drivers.IntValue(drivers.Int8, -5)},
		{"by name, narrow form", Metric{Name: "Mode", Value: WireValue{Kind: KindInt, Bits: 251}}, drivers.IntValue(drivers.Int8, -5)},
		{"by alias", Metric{Alias: 5, HasAlias: true, Value: WireValue{Kind: KindInt, Bits: 7}}, drivers.IntValue(drivers.Int8, 7)},
		{"float from double_value", Metric{Name: "Flow", Value: WireValue{Kind: KindDouble, Bits: math.Float64bits(1.5)}}, drivers.FloatValue(1.5)},
	}
	for _, c := range cases {
		writes, err := s.HandleCommand(topic, dcmd(c.m))
		if err != nil || len(writes) != 1 || writes[0].Device != "plc1" || !writes[0].Value.Equal(c.want) {
			t.Errorf("%s: %v, %v; want %v (%s)", c.name, writes, err, c.want, ruleDCMD)
		}
	}
	writes, err := s.HandleCommand("spBv1.0/wellsite/DCMD/gw1/rtu2", dcmd(Metric{Alias: 7, HasAlias: true, Value: WireValue{Kind: KindInt, Bits: math.MaxUint32}}))
	if err != nil || len(writes) != 1 || writes[0].Tag != "Level" || writes[0].Value.Uint() != math.MaxUint32 {
		t.Errorf("UInt32 max by alias on rtu2: %v, %v", writes, err)
	}
	if n := len(r.take()); n != 0 {
		t.Errorf("writes published %d messages; the caller reports read-backs", n)
	}
}

func TestBadCommands(t *testing.T) {
	c := &clock{t: t0}
	opts := testOptions(c)
	opts.Aliases = true
	s, _ := started(t, opts, 1)
	const topic = "spBv1.0/wellsite/DCMD/gw1/plc1"
	cases := []struct {
		name    string
		topic   string
		payload []byte
		want    error
	}{
		{"unknown name", topic, dcmd(Metric{Name: "Nope", Value: WireValue{Kind: KindInt}}), ErrUnknownMetric},
		{"unknown alias", topic, dcmd(Metric{Alias: 999, HasAlias: true, Value: WireValue{Kind: KindInt}}), ErrUnknownMetric},
		{"alias of another device", topic, dcmd(Metric{Alias: 7, HasAlias: true, Value: WireValue{Kind: KindInt}}), ErrUnknownMetric},
		{"no name, no alias", topic, dcmd(Metric{Value: WireValue{Kind: KindInt}}), ErrUnknownMetric},
		{"read-only", topic, dcmd(Metric{Name: "State", Value: WireValue{Kind: KindString, Str: "x"}}), drivers.ErrNotWritable},
		{"null write", topic, dcmd(Metric{Name: "Mode", IsNull: true}), ErrType},
		{"out of range", topic, dcmd(Metric{Name: "Mode", Value: WireValue{Kind: KindInt, Bits: 1000}}), ErrType},
		{"wrong field", topic, dcmd(Metric{Name: "Mode", Value: WireValue{Kind: KindString, Str: "1"}}), ErrType},
		{"no value", topic, dcmd(Metric{Name: "Mode"}), ErrType},
		{"malformed", topic, []byte{0x12, 0x05, 0x0a}, ErrMalformed},
		{"unknown device", "spBv1.0/wellsite/DCMD/gw1/plc9", dcmd(), ErrUnknownDevice},
		{"other node", "spBv1.0/wellsite/DCMD/gw2/plc1", dcmd(), ErrNotCommand},
		{"not a command", "spBv1.0/wellsite/DDATA/gw1/plc1", dcmd(), ErrNotCommand},
		{"bad topic", "spBv1.0/wellsite/DCMD/gw1", dcmd(), ErrTopic},
		{"rebirth not bool", "spBv1.0/wellsite/NCMD/gw1", dcmd(Metric{Name: MetricRebirth, Value: WireValue{Kind: KindInt, Bits: 1}}), ErrType},
		{"rebirth on a device", topic, dcmd(Metric{Name: MetricRebirth, Value: WireValue{Kind: KindBool, Bits: 1}}), ErrUnknownMetric},
		{"node control unknown", "spBv1.0/wellsite/NCMD/gw1", dcmd(Metric{Name: "Node Control/Next Server", Value: WireValue{Kind: KindBool, Bits: 1}}), ErrUnknownMetric},
	}
	for _, c := range cases {
		writes, err := s.HandleCommand(c.topic, c.payload)
		if !errors.Is(err, c.want) || len(writes) != 0 {
			t.Errorf("%s: %v, %v; want %v (%s)", c.name, writes, err, c.want, ruleBadCmd)
		}
	}
	// Valid writes survive an invalid neighbour.
	writes, err := s.HandleCommand(topic, dcmd(Metric{Name: "Nope"}, Metric{Name: "Mode", Value: WireValue{Kind: KindInt, Bits: 1}}))
	if !errors.Is(err, ErrUnknownMetric) || len(writes) != 1 || writes[0].Tag != "Mode" {
		t.Errorf("mixed command: %v, %v", writes, err)
	}
	if err := s.SetDeviceState("plc1", false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.HandleCommand(topic, dcmd(Metric{Name: "Mode", Value: WireValue{Kind: KindInt, Bits: 1}})); !errors.Is(err, ErrOffline) {
		t.Errorf("write to a dead device: %v", err)
	}
}

func TestReportWrittenBypassesDeadband(t *testing.T) {
	c := &clock{t: t0}
	s, r := started(t, testOptions(c), 1)
	mustUpdate(t, s, good("plc1", "Flow", drivers.FloatValue(100)))
	r.take()
	rep, err := s.ReportWritten([]drivers.Sample{good("plc1", "Flow", drivers.FloatValue(101))})
	if err != nil || len(rep) != 1 || len(r.take()) != 1 {
		t.Errorf("written value within deadband not published: %v, %v (docs/sparkplug.md [cmd-readback])", rep, err)
	}
}

func TestStaleQualityStaysOnTheWire(t *testing.T) {
	c := &clock{t: t0}
	s, r := started(t, testOptions(c), 1)
	mustUpdate(t, s, sample("plc1", "State", drivers.StringValue("a"), drivers.Stale, t0))
	r.take()
	mustUpdate(t, s, sample("plc1", "State", drivers.StringValue("b"), drivers.Stale, t0))
	msgs := r.take()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	if q, ok := quality(msgs[0].p.Metrics[0]); !ok || q != 500 {
		t.Errorf("stale value without Quality 500 (MQTT Engine reads no Quality as Good) (%s)", ruleQuality)
	}
}
