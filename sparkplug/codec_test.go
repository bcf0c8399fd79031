package sparkplug

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/wellgate/wellgate/drivers"
	"google.golang.org/protobuf/encoding/protowire"
)

func TestVectorsWireForm(t *testing.T) {
	for _, v := range vectors {
		if v.value.IsNull() {
			continue
		}
		if got := WireValueOf(v.value); !reflect.DeepEqual(got, v.wire) {
			t.Errorf("%s: wire form %+v, want %+v (docs/sparkplug.md [metric-value-kind])", v.name, got, v.wire)
		}
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	p := vectorPayload()
	b := p.Marshal()
	got, err := Unmarshal(b)
	if err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	if !reflect.DeepEqual(got, p) {
		t.Fatalf("round trip differs:\n got %+v\nwant %+v", got, p)
	}
	for i, m := range got.Metrics {
		v := vectors[i]
		dv, err := m.DriverValue(v.value.Type())
		if err != nil {
			t.Errorf("%s: DriverValue: %v", v.name, err)
			continue
		}
		if !dv.Equal(v.value) {
			t.Errorf("%s: DriverValue %v, want %v", v.name, dv, v.value)
		}
		if v.value.IsNull() && (!m.IsNull || m.Value.Kind != KindNone || m.Datatype != DataType(v.value.Type())) {
			t.Errorf("%s: null metric is_null=%v kind=%v datatype=%d, want is_null, no value, datatype kept", v.name, m.IsNull, m.Value.Kind, m.Datatype)
		}
	}
}

func TestGoldenBytes(t *testing.T) {
	cases := []struct {
		name string
		p    Payload
		hex  string
	}{
		{"seq 0 is on the wire", Payload{HasSeq: true}, "1800"},
		{"no seq when absent (NDEATH)", Payload{Timestamp: 1, HasTimestamp: true}, "0801"},
		// metric{name "a", datatype Int8, int_value 4294967291}
		{"Int8 -5 sign-extended", Payload{Metrics: []Metric{{Name: "a", Datatype: TypeInt8,
			Value: WireValue{Kind: KindInt, Bits: 4294967291}}}}, "120b" + "0a0161" + "2001" + "50fbffffff0f"},
		{"null has no value field", Payload{Metrics: []Metric{{Name: "n", Datatype: TypeDouble, IsNull: true,
			Value: WireValue{Kind: KindDouble}}}}, "12070a016e200a3801"},
		{"bool false is on the wire", Payload{Metrics: []Metric{{Alias: 0, HasAlias: true,
			Value: WireValue{Kind: KindBool}}}}, "120410007000"},
	}
	for _, c := range cases {
		if got := hex.EncodeToString(c.p.Marshal()); got != c.hex {
			t.Errorf("%s: %s, want %s", c.name, got, c.hex)
		}
	}
}

func TestAppendMarshalAppends(t *testing.T) {
	p := vectorPayload()
	prefix := []byte("prefix")
	b := p.AppendMarshal(append([]byte{}, prefix...))
	if !bytes.HasPrefix(b, prefix) || !bytes.Equal(b[len(prefix):], p.Marshal()) {
		t.Fatal("AppendMarshal does not append the same encoding as Marshal")
	}
	// A large metric needs a multi-byte length: the insertion must move it correctly.
	big := Payload{Metrics: []Metric{{Name: string(bytes.Repeat([]byte("x"), 300)), Datatype: TypeString,
		Value: WireValue{Kind: KindString, Str: string(bytes.Repeat([]byte("y"), 20000))}}}}
	got, err := Unmarshal(big.Marshal())
	if err != nil || !reflect.DeepEqual(got, &big) {
		t.Fatalf("large metric round trip: err %v", err)
	}
}

func TestDecodeIntegerForms(t *testing.T) {
	cases := []struct {
		typ  drivers.Type
		wire WireValue
		want drivers.Value
	}{
		{drivers.Int8, WireValue{Kind: KindInt, Bits: 4294967291}, drivers.IntValue(drivers.Int8, -5)},
		{drivers.Int8, WireValue{Kind: KindInt, Bits: 251}, drivers.IntValue(drivers.Int8, -5)},
		{drivers.Int8, WireValue{Kind: KindLong, Bits: 251}, drivers.IntValue(drivers.Int8, -5)},
		{drivers.Int8, WireValue{Kind: KindLong, Bits: math.MaxUint64 - 4}, drivers.IntValue(drivers.Int8, -5)},
		{drivers.Int8, WireValue{Kind: KindLong, Bits: 4294967291}, drivers.IntValue(drivers.Int8, -5)},
		{drivers.Int8, WireValue{Kind: KindInt, Bits: 100}, drivers.IntValue(drivers.Int8, 100)},
		{drivers.Int16, WireValue{Kind: KindInt, Bits: 65535}, drivers.IntValue(drivers.Int16, -1)},
		{drivers.Int16, WireValue{Kind: KindLong, Bits: 1234}, drivers.IntValue(drivers.Int16, 1234)},
		{drivers.Int32, WireValue{Kind: KindLong, Bits: math.MaxUint64}, drivers.IntValue(drivers.Int32, -1)},
		{drivers.Int32, WireValue{Kind: KindInt, Bits: 0x80000000}, drivers.IntValue(drivers.Int32, math.MinInt32)},
		{drivers.Int64, WireValue{Kind: KindInt, Bits: 0xFFFFFFFE}, drivers.IntValue(drivers.Int64, -2)},
		{drivers.Int64, WireValue{Kind: KindLong, Bits: 1 << 63}, drivers.IntValue(drivers.Int64, math.MinInt64)},
		{drivers.UInt8, WireValue{Kind: KindLong, Bits: 200}, drivers.UintValue(drivers.UInt8, 200)},
		{drivers.UInt16, WireValue{Kind: KindInt, Bits: 65535}, drivers.UintValue(drivers.UInt16, 65535)},
		{drivers.UInt32, WireValue{Kind: KindInt, Bits: math.MaxUint32}, drivers.UintValue(drivers.UInt32, math.MaxUint32)},
		{drivers.UInt32, WireValue{Kind: KindLong, Bits: math.MaxUint32}, drivers.UintValue(drivers.UInt32, math.MaxUint32)},
		{drivers.UInt64, WireValue{Kind: KindInt, Bits: 7}, drivers.UintValue(drivers.UInt64, 7)},
		{drivers.DateTime, WireValue{Kind: KindLong, Bits: 1700000000000}, drivers.UintValue(drivers.DateTime, 1700000000000)},
		{drivers.Float, WireValue{Kind: KindDouble, Bits: math.Float64bits(2.5)}, drivers.FloatValue(2.5)},
		{drivers.Double, WireValue{Kind: KindFloat, Bits: uint64(math.Float32bits(2.5))}, drivers.DoubleValue(2.5)},
	}
	for _, c := range cases {
		m := Metric{Value: c.wire}
		got, err := m.DriverValue(c.typ)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("%s from %s %d: got %v, %v; want %v (docs/sparkplug.md [cmd-integer-forms]: decoders accept either field and sign form)", c.typ, c.wire.Kind, c.wire.Bits, got, err, c.want)
		}
	}
	bad := []struct {
		typ  drivers.Type
		wire WireValue
	}{
		{drivers.Int8, WireValue{Kind: KindInt, Bits: 300}},
		{drivers.Int16, WireValue{Kind: KindLong, Bits: 1 << 40}},
		{drivers.UInt8, WireValue{Kind: KindInt, Bits: 256}},
		{drivers.UInt32, WireValue{Kind: KindLong, Bits: 1 << 32}},
		{drivers.Int32, WireValue{Kind: KindString, Str: "1"}},
		{drivers.Boolean, WireValue{Kind: KindInt, Bits: 1}},
		{drivers.String, WireValue{Kind: KindBytes}},
		{drivers.Float, WireValue{Kind: KindDouble, Bits: math.Float64bits(1e300)}},
		{drivers.Double, WireValue{Kind: KindNone}},
	}
	for _, c := range bad {
		m := Metric{Value: c.wire}
		if v, err := m.DriverValue(c.typ); !errors.Is(err, ErrType) {
			t.Errorf("%s from %s %d: got %v, %v; want ErrType", c.typ, c.wire.Kind, c.wire.Bits, v, err)
		}
	}
}

func TestUnmarshalRejectsWrongWireTypes(t *testing.T) {
	tag := func(n protowire.Number, typ protowire.Type) []byte { return protowire.AppendTag(nil, n, typ) }
	metric := func(body []byte) []byte {
		b := tag(fPayloadMetrics, protowire.BytesType)
		return protowire.AppendBytes(b, body)
	}
	cases := map[string][]byte{
		"seq as bytes":          append(tag(fPayloadSeq, protowire.BytesType), 0),
		"timestamp fixed64":     append(tag(fPayloadTimestamp, protowire.Fixed64Type), make([]byte, 8)...),
		"metrics as varint":     append(tag(fPayloadMetrics, protowire.VarintType), 1),
		"truncated varint":      append(tag(fPayloadSeq, protowire.VarintType), 0x80),
		"truncated bytes":       append(tag(fPayloadUUID, protowire.BytesType), 5, 'a'),
		"bad tag":               {0x00},
		"float as varint":       metric(append(tag(12, protowire.VarintType), 1)),
		"double as fixed32":     metric(append(tag(13, protowire.Fixed32Type), 0, 0, 0, 0)),
		"name as varint":        metric(append(tag(fMetricName, protowire.VarintType), 1)),
		"properties as varint":  metric(append(tag(fMetricProperties, protowire.VarintType), 1)),
		"keys without values":   metric(protowire.AppendBytes(tag(fMetricProperties, protowire.BytesType), protowire.AppendString(tag(fPropKeys, protowire.BytesType), "k"))),
		"end group unmatched":   tag(20, protowire.EndGroupType),
		"truncated fixed64 val": metric(append(tag(13, protowire.Fixed64Type), 1, 2)),
	}
	for name, b := range cases {
		if p, err := Unmarshal(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %+v, %v; want ErrMalformed", name, p, err)
		}
	}
}

func TestUnmarshalSkipsUnknownFields(t *testing.T) {
	p := vectorPayload()
	b := p.Marshal()
	// Unknown fields of every wire type, at payload level.
	b = protowire.AppendTag(b, 99, protowire.VarintType)
	b = protowire.AppendVarint(b, 12345)
	b = protowire.AppendTag(b, 100, protowire.Fixed32Type)
	b = protowire.AppendFixed32(b, 1)
	b = protowire.AppendTag(b, 101, protowire.BytesType)
	b = protowire.AppendString(b, "ignored")
	b = protowire.AppendTag(b, 102, protowire.StartGroupType)
	b = protowire.AppendTag(b, 102, protowire.EndGroupType)
	got, err := Unmarshal(b)
	if err != nil || !reflect.DeepEqual(got, p) {
		t.Fatalf("unknown fields not skipped: %v", err)
	}
	// A DataSet value and metadata inside a metric are skipped (KindOther / ignored).
	mb := protowire.AppendTag(nil, fMetricName, protowire.BytesType)
	mb = protowire.AppendString(mb, "ds")
	mb = protowire.AppendTag(mb, fMetricMetadata, protowire.BytesType)
	mb = protowire.AppendBytes(mb, []byte{0x08, 0x01})
	mb = protowire.AppendTag(mb, fMetricDataSet, protowire.BytesType)
	mb = protowire.AppendBytes(mb, []byte{0x08, 0x02})
	pb := protowire.AppendBytes(protowire.AppendTag(nil, fPayloadMetrics, protowire.BytesType), mb)
	got, err = Unmarshal(pb)
	if err != nil || len(got.Metrics) != 1 || got.Metrics[0].Value.Kind != KindOther || got.Metrics[0].Name != "ds" {
		t.Fatalf("dataset metric: %+v, %v", got, err)
	}
}

func TestCoerce(t *testing.T) {
	cases := []struct {
		in   drivers.Value
		to   drivers.Type
		want drivers.Value
		ok   bool
	}{
		{drivers.IntValue(drivers.Int32, -5), drivers.Int16, drivers.IntValue(drivers.Int16, -5), true},
		{drivers.IntValue(drivers.Int32, 70000), drivers.Int16, drivers.Value{}, false},
		{drivers.IntValue(drivers.Int32, -1), drivers.UInt32, drivers.Value{}, false},
		{drivers.UintValue(drivers.UInt64, math.MaxUint64), drivers.Int64, drivers.Value{}, false},
		{drivers.DoubleValue(3), drivers.UInt16, drivers.UintValue(drivers.UInt16, 3), true},
		{drivers.DoubleValue(3.5), drivers.UInt16, drivers.Value{}, false},
		{drivers.DoubleValue(-3), drivers.Int8, drivers.IntValue(drivers.Int8, -3), true},
		{drivers.DoubleValue(1.5), drivers.Float, drivers.FloatValue(1.5), true},
		{drivers.IntValue(drivers.Int16, 2), drivers.Double, drivers.DoubleValue(2), true},
		{drivers.IntValue(drivers.Int16, 2), drivers.Boolean, drivers.BoolValue(true), true},
		{drivers.StringValue("x"), drivers.Text, drivers.TextValue("x"), true},
		{drivers.StringValue("1"), drivers.Int32, drivers.Value{}, false},
		{drivers.Null(drivers.Int32), drivers.Double, drivers.Null(drivers.Double), true},
	}
	for _, c := range cases {
		got, ok := coerce(c.in, c.to)
		if ok != c.ok || (ok && !got.Equal(c.want)) {
			t.Errorf("coerce(%s %v, %s) = %v, %v; want %v, %v", c.in.Type(), c.in, c.to, got, ok, c.want, c.ok)
		}
	}
}
