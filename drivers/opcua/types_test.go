package opcua

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/wellgate/wellgate/drivers"
)

func TestToValue(t *testing.T) {
	for _, c := range []struct {
		in   any
		want drivers.Type
		out  drivers.Value
		bad  bool
	}{
		{int16(-3), drivers.Int16, drivers.IntValue(drivers.Int16, -3), false},
		{int16(-3), drivers.UInt8, drivers.Value{}, true},
		{uint64(math.MaxUint64), drivers.Int64, drivers.Value{}, true},
		{uint64(math.MaxUint64), drivers.UInt64, drivers.UintValue(drivers.UInt64, math.MaxUint64), false},
		{2.5, drivers.Int32, drivers.IntValue(drivers.Int32, 3), false},
		{math.NaN(), drivers.Int32, drivers.Value{}, true},
		{math.Inf(1), drivers.Double, drivers.DoubleValue(math.Inf(1)), false},
		{1e300, drivers.Float, drivers.Value{}, true},
		{true, drivers.Double, drivers.DoubleValue(1), false},
		{int32(0), drivers.Boolean, drivers.BoolValue(false), false},
		{"x", drivers.Double, drivers.Value{}, true},
		{1.0, drivers.String, drivers.Value{}, true},
		{time.Time{}, drivers.DateTime, drivers.UintValue(drivers.DateTime, 0), false},
		{[]byte{1}, drivers.Bytes, drivers.BytesValue([]byte{1}), false},
		{[]float64{1, 2}, drivers.Double, drivers.Value{}, true},
		{&ua.LocalizedText{Text: "x"}, drivers.String, drivers.Value{}, true},
	} {
		got, err := toValue(ua.MustVariant(c.in), c.want)
		if c.bad {
			if err == nil {
				t.Errorf("toValue(%#v, %v) = %v, want an error", c.in, c.want, got)
			}
			continue
		}
		if err != nil || !got.Equal(c.out) {
			t.Errorf("toValue(%#v, %v) = %v, %v; want %v", c.in, c.want, got, err, c.out)
		}
	}
	if _, err := toValue(nil, drivers.Double); !errors.Is(err, errNoValue) {
		t.Errorf("nil variant: %v", err)
	}
}

func TestToVariant(t *testing.T) {
	for _, c := range []struct {
		v    drivers.Value
		node ua.TypeID
		want any
	}{
		{drivers.DoubleValue(42), ua.TypeIDInt16, int16(42)},
		{drivers.IntValue(drivers.Int64, -1), ua.TypeIDSByte, int8(-1)},
		{drivers.UintValue(drivers.UInt64, math.MaxUint64), ua.TypeIDUint64, uint64(math.MaxUint64)},
		{drivers.BoolValue(true), ua.TypeIDDouble, 1.0},
		{drivers.DoubleValue(1), ua.TypeIDBoolean, true},
		{drivers.DoubleValue(0.1), ua.TypeIDFloat, float32(0.1)},
		{drivers.StringValue("s"), ua.TypeIDString, "s"},
		{drivers.TextValue("t"), ua.TypeIDString, "t"},
		{drivers.BytesValue([]byte{7}), ua.TypeIDByteString, []byte{7}},
	} {
		got, err := toVariant(c.v, c.node)
		if err != nil {
			t.Errorf("toVariant(%v, %v): %v", c.v, c.node, err)
			continue
		}
		if got.Type() != c.node {
			t.Errorf("toVariant(%v, %v) has type %v", c.v, c.node, got.Type())
		}
		if b, ok := c.want.([]byte); ok {
			if string(got.Value().([]byte)) != string(b) {
				t.Errorf("toVariant(%v) = %v", c.v, got.Value())
			}
		} else if got.Value() != c.want {
			t.Errorf("toVariant(%v, %v) = %#v, want %#v", c.v, c.node, got.Value(), c.want)
		}
	}
	for _, c := range []struct {
		v    drivers.Value
		node ua.TypeID
	}{
		{drivers.DoubleValue(1.5), ua.TypeIDInt32},
		{drivers.DoubleValue(70000), ua.TypeIDUint16},
		{drivers.IntValue(drivers.Int32, -1), ua.TypeIDUint32},
		{drivers.DoubleValue(2), ua.TypeIDBoolean},
		{drivers.DoubleValue(1e40), ua.TypeIDFloat},
		{drivers.DoubleValue(math.NaN()), ua.TypeIDInt64},
		{drivers.StringValue("1"), ua.TypeIDDouble},
		{drivers.DoubleValue(1), ua.TypeIDString},
		{drivers.Null(drivers.Double), ua.TypeIDDouble},
		{drivers.DoubleValue(1), ua.TypeIDGUID},
	} {
		if got, err := toVariant(c.v, c.node); !errors.Is(err, drivers.ErrOutOfRange) {
			t.Errorf("toVariant(%v, %v) = %v, %v; want ErrOutOfRange", c.v, c.node, got, err)
		}
	}
}

func TestQuality(t *testing.T) {
	for s, q := range map[ua.StatusCode]drivers.Quality{
		ua.StatusOK: drivers.Good, ua.StatusGoodClamped: drivers.Good,
		ua.StatusUncertainLastUsableValue: drivers.Stale, ua.StatusUncertain: drivers.Stale,
		ua.StatusBadSensorFailure: drivers.Bad, ua.StatusBad: drivers.Bad, 0xC0000000: drivers.Bad,
	} {
		if got := quality(s); got != q {
			t.Errorf("quality(%s) = %v, want %v", statusText(s), got, q)
		}
	}
}

func TestBuiltinOfDataType(t *testing.T) {
	for _, c := range []struct {
		id   *ua.NodeID
		want ua.TypeID
		ok   bool
	}{
		{ua.NewNumericNodeID(0, 11), ua.TypeIDDouble, true},
		{ua.NewNumericNodeID(0, 294), ua.TypeIDDateTime, true}, // UtcTime
		{ua.NewNumericNodeID(0, 26), 0, false},                 // Number
		{ua.NewNumericNodeID(2, 11), 0, false},
		{ua.NewStringNodeID(0, "x"), 0, false},
		{nil, 0, false},
	} {
		got, ok := builtinOfDataType(c.id)
		if got != c.want || ok != c.ok {
			t.Errorf("builtinOfDataType(%v) = %v, %v", c.id, got, ok)
		}
	}
}
