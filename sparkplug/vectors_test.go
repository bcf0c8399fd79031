package sparkplug

import (
	"math"

	"github.com/wellgate/wellgate/drivers"
)

// vector is one shared payload test vector: a tag value and the wire form docs/sparkplug.md
// prescribes for it [metric-value-kind]. Codec, session and Tahu interop tests all run over vectors.
type vector struct {
	name  string // metric name (also used as the tag name)
	value drivers.Value
	wire  WireValue // want; ignored when value is null
}

var vectors = []vector{
	{"int8/neg", drivers.IntValue(drivers.Int8, -5), WireValue{Kind: KindInt, Bits: 4294967291}},
	{"int8/min", drivers.IntValue(drivers.Int8, math.MinInt8), WireValue{Kind: KindInt, Bits: 0xFFFFFF80}},
	{"int8/max", drivers.IntValue(drivers.Int8, math.MaxInt8), WireValue{Kind: KindInt, Bits: 127}},
	{"int16/neg", drivers.IntValue(drivers.Int16, -300), WireValue{Kind: KindInt, Bits: uint64(uint32(0xFFFFFED4))}},
	{"int16/min", drivers.IntValue(drivers.Int16, math.MinInt16), WireValue{Kind: KindInt, Bits: 0xFFFF8000}},
	{"int32/neg", drivers.IntValue(drivers.Int32, -1), WireValue{Kind: KindInt, Bits: 0xFFFFFFFF}},
	{"int32/min", drivers.IntValue(drivers.Int32, math.MinInt32), WireValue{Kind: KindInt, Bits: 0x80000000}},
	{"int32/max", drivers.IntValue(drivers.Int32, math.MaxInt32), WireValue{Kind: KindInt, Bits: 0x7FFFFFFF}},
	{"int64/min", drivers.IntValue(drivers.Int64, math.MinInt64), WireValue{Kind: KindLong, Bits: 1 << 63}},
	{"int64/max", drivers.IntValue(drivers.Int64, math.MaxInt64), WireValue{Kind: KindLong, Bits: 1<<63 - 1}},
	{"int64/neg", drivers.IntValue(drivers.Int64, -2), WireValue{Kind: KindLong, Bits: math.MaxUint64 - 1}},
	{"uint8/max", drivers.UintValue(drivers.UInt8, math.MaxUint8), WireValue{Kind: KindInt, Bits: 255}},
	{"uint16/max", drivers.UintValue(drivers.UInt16, math.MaxUint16), WireValue{Kind: KindInt, Bits: 65535}},
	{"uint32/max", drivers.UintValue(drivers.UInt32, math.MaxUint32), WireValue{Kind: KindInt, Bits: math.MaxUint32}},
	{"uint32/zero", drivers.UintValue(drivers.UInt32, 0), WireValue{Kind: KindInt, Bits: 0}},
	{"uint64/max", drivers.UintValue(drivers.UInt64, math.MaxUint64), WireValue{Kind: KindLong, Bits: math.MaxUint64}},
	{"datetime", drivers.UintValue(drivers.DateTime, 1700000000123), WireValue{Kind: KindLong, Bits: 1700000000123}},
	{"float/pi", drivers.FloatValue(3.25), WireValue{Kind: KindFloat, Bits: uint64(math.Float32bits(3.25))}},
	{"float/nan", drivers.FloatValue(float32(math.NaN())), WireValue{Kind: KindFloat, Bits: uint64(math.Float32bits(float32(math.NaN())))}},
	{"float/-inf", drivers.FloatValue(float32(math.Inf(-1))), WireValue{Kind: KindFloat, Bits: uint64(math.Float32bits(float32(math.Inf(-1))))}},
	{"double/e", drivers.DoubleValue(math.E), WireValue{Kind: KindDouble, Bits: math.Float64bits(math.E)}},
	{"double/+inf", drivers.DoubleValue(math.Inf(1)), WireValue{Kind: KindDouble, Bits: math.Float64bits(math.Inf(1))}},
	{"double/nan", drivers.DoubleValue(math.NaN()), WireValue{Kind: KindDouble, Bits: math.Float64bits(math.NaN())}},
	{"double/-0", drivers.DoubleValue(math.Copysign(0, -1)), WireValue{Kind: KindDouble, Bits: 1 << 63}},
	{"bool/true", drivers.BoolValue(true), WireValue{Kind: KindBool, Bits: 1}},
	{"bool/false", drivers.BoolValue(false), WireValue{Kind: KindBool, Bits: 0}},
	{"string/empty", drivers.StringValue(""), WireValue{Kind: KindString, Str: ""}},
	{"string/unicode", drivers.StringValue("débit ⛽ 流量"), WireValue{Kind: KindString, Str: "débit ⛽ 流量"}},
	{"text", drivers.TextValue("line1\nline2"), WireValue{Kind: KindString, Str: "line1\nline2"}},
	{"bytes", drivers.BytesValue([]byte{0, 1, 0xFE, 0xFF}), WireValue{Kind: KindBytes, Bytes: []byte{0, 1, 0xFE, 0xFF}}},
	{"bytes/empty", drivers.BytesValue(nil), WireValue{Kind: KindBytes, Bytes: []byte{}}},
	{"Pression tête/ΔP 井口", drivers.DoubleValue(12.5), WireValue{Kind: KindDouble, Bits: math.Float64bits(12.5)}},
	{"null/int16", drivers.Null(drivers.Int16), WireValue{}},
	{"null/uint32", drivers.Null(drivers.UInt32), WireValue{}},
	{"null/string", drivers.Null(drivers.String), WireValue{}},
	{"null/double", drivers.Null(drivers.Double), WireValue{}},
}

// vectorTags returns a tag per vector (writable, no deadband).
func vectorTags() []drivers.TagInfo {
	tags := make([]drivers.TagInfo, len(vectors))
	for i, v := range vectors {
		tags[i] = drivers.TagInfo{Name: v.name, Type: v.value.Type(), Writable: true}
	}
	return tags
}

// vectorMetric returns the vector as a birth-style metric (name, datatype, value, timestamp).
func vectorMetric(v vector, ts uint64) Metric {
	m := Metric{Name: v.name, Datatype: DataType(v.value.Type()), Timestamp: ts, HasTimestamp: true}
	m.SetValue(v.value)
	return m
}

// vectorPayload is a payload with every vector, historical flags on odd metrics and
// properties on the first one.
func vectorPayload() *Payload {
	p := &Payload{Timestamp: 1700000000000, HasTimestamp: true, Seq: 0, HasSeq: true}
	for i, v := range vectors {
		m := vectorMetric(v, 1700000000000+uint64(i))
		m.IsHistorical = i%2 == 1
		if i == 0 {
			m.Properties = &PropertySet{}
			m.Properties.Add(PropQuality, qualityValue(drivers.Stale))
			m.Properties.Add(PropEngUnit, PropertyValue{Type: TypeString, Value: WireValue{Kind: KindString, Str: "m³/h"}})
			m.Properties.Add("nullprop", PropertyValue{Type: TypeDouble, IsNull: true})
			m.Properties.Add("long", PropertyValue{Type: TypeInt64, Value: WireValue{Kind: KindLong, Bits: math.MaxUint64}})
			m.Properties.Add("float", PropertyValue{Type: TypeFloat, Value: WireValue{Kind: KindFloat, Bits: uint64(math.Float32bits(1.5))}})
			m.Properties.Add("double", PropertyValue{Type: TypeDouble, Value: WireValue{Kind: KindDouble, Bits: math.Float64bits(-2.5)}})
			m.Properties.Add("bool", PropertyValue{Type: TypeBoolean, Value: WireValue{Kind: KindBool, Bits: 1}})
		}
		p.Metrics = append(p.Metrics, m)
	}
	return p
}
