package sparkplug

import (
	"errors"
	"fmt"
	"math"

	"github.com/wellgate/wellgate/drivers"
)

// ErrType is wrapped by value conversion errors: a value field that does not fit the metric's
// data type, or a value out of the type's range.
var ErrType = errors.New("wrong value type")

// WireValueOf returns the wire form of a non-null value as docs/sparkplug.md maps it
// [metric-value-kind]: Int8/16/32 and UInt8/16/32 in int_value (negative values sign-extended
// to 32 bits), Int64, UInt64 and DateTime in long_value, Float, Double, Boolean, String/Text in
// string_value, Bytes.
func WireValueOf(v drivers.Value) WireValue {
	switch t := v.Type(); t {
	case drivers.Int8, drivers.Int16, drivers.Int32:
		return WireValue{Kind: KindInt, Bits: uint64(uint32(int32(v.Int())))}
	case drivers.UInt8, drivers.UInt16, drivers.UInt32:
		return WireValue{Kind: KindInt, Bits: uint64(uint32(v.Uint()))}
	case drivers.Int64, drivers.UInt64, drivers.DateTime:
		return WireValue{Kind: KindLong, Bits: v.Uint()}
	case drivers.Float:
		return WireValue{Kind: KindFloat, Bits: uint64(math.Float32bits(float32(v.Float64())))}
	case drivers.Double:
		return WireValue{Kind: KindDouble, Bits: math.Float64bits(v.Float64())}
	case drivers.Boolean:
		if v.Bool() {
			return WireValue{Kind: KindBool, Bits: 1}
		}
		return WireValue{Kind: KindBool}
	case drivers.String, drivers.Text:
		return WireValue{Kind: KindString, Str: v.Str()}
	case drivers.Bytes:
		return WireValue{Kind: KindBytes, Bytes: []byte(v.Str())}
	}
	return WireValue{}
}

// SetValue stores v in m: the value field, or IsNull for a null. It leaves Datatype alone
// (births set it; DATA messages leave it out).
func (m *Metric) SetValue(v drivers.Value) {
	if v.IsNull() {
		m.IsNull, m.Value = true, WireValue{}
		return
	}
	m.IsNull, m.Value = false, WireValueOf(v)
}

// DriverValue converts the metric's value to a drivers.Value of type t. It is lenient where
// docs/sparkplug.md says decoders must be [cmd-integer-forms]: every integer type is read from
// int_value or long_value, and small signed types accept both the 32-bit sign-extended and the
// narrow two's complement form (Int8 −5 as 4294967291 or 251). Float and Double accept
// float_value or double_value.
// A null metric gives a null of type t. Anything else wraps ErrType.
func (m *Metric) DriverValue(t drivers.Type) (drivers.Value, error) {
	if m.IsNull {
		return drivers.Null(t), nil
	}
	return m.Value.driverValue(t)
}

func (w WireValue) driverValue(t drivers.Type) (drivers.Value, error) {
	switch {
	case t.IsSigned():
		return w.signed(t)
	case t.IsUnsigned():
		return w.unsigned(t)
	case t == drivers.Float || t == drivers.Double:
		return w.float(t)
	case t == drivers.Boolean && w.Kind == KindBool:
		return drivers.BoolValue(w.Bits != 0), nil
	case t == drivers.String && w.Kind == KindString:
		return drivers.StringValue(w.Str), nil
	case t == drivers.Text && w.Kind == KindString:
		return drivers.TextValue(w.Str), nil
	case t == drivers.Bytes && w.Kind == KindBytes:
		return drivers.BytesValue(w.Bytes), nil
	}
	return drivers.Value{}, fmt.Errorf("%w: %s value for a %s metric", ErrType, w.Kind, t)
}

func typeBits(t drivers.Type) uint {
	switch t {
	case drivers.Int8, drivers.UInt8:
		return 8
	case drivers.Int16, drivers.UInt16:
		return 16
	case drivers.Int32, drivers.UInt32:
		return 32
	}
	return 64
}

func (w WireValue) signed(t drivers.Type) (drivers.Value, error) {
	if w.Kind != KindInt && w.Kind != KindLong {
		return drivers.Value{}, fmt.Errorf("%w: %s value for a %s metric", ErrType, w.Kind, t)
	}
	bits := typeBits(t)
	if bits == 64 {
		if w.Kind == KindInt { // a 64-bit signed value in int_value: sign-extended 32 bits
			return drivers.IntValue(t, int64(int32(uint32(w.Bits)))), nil
		}
		return drivers.IntValue(t, int64(w.Bits)), nil
	}
	lo, hi := -int64(1)<<(bits-1), int64(1)<<(bits-1)-1
	// The 32-bit sign-extended form (int_value), the 64-bit one (long_value), then the narrow
	// two's complement form (Int8 −5 as 251).
	candidates := []int64{int64(int32(uint32(w.Bits)))}
	if w.Kind == KindLong {
		candidates = []int64{int64(w.Bits), int64(int32(uint32(w.Bits)))}
		if w.Bits>>32 != 0 && w.Bits>>32 != 0xFFFFFFFF {
			candidates = candidates[:1]
		}
	}
	for _, c := range candidates {
		if c >= lo && c <= hi {
			return drivers.IntValue(t, c), nil
		}
	}
	if w.Bits < uint64(1)<<bits {
		shift := 64 - bits
		return drivers.IntValue(t, int64(w.Bits<<shift)>>shift), nil
	}
	return drivers.Value{}, fmt.Errorf("%w: %d out of range for %s", ErrType, w.Bits, t)
}

func (w WireValue) unsigned(t drivers.Type) (drivers.Value, error) {
	if w.Kind != KindInt && w.Kind != KindLong {
		return drivers.Value{}, fmt.Errorf("%w: %s value for a %s metric", ErrType, w.Kind, t)
	}
	if bits := typeBits(t); bits < 64 && w.Bits >= uint64(1)<<bits {
		return drivers.Value{}, fmt.Errorf("%w: %d out of range for %s", ErrType, w.Bits, t)
	}
	return drivers.UintValue(t, w.Bits), nil
}

func (w WireValue) float(t drivers.Type) (drivers.Value, error) {
	var f float64
	switch w.Kind {
	case KindFloat:
		f = float64(math.Float32frombits(uint32(w.Bits)))
	case KindDouble:
		f = math.Float64frombits(w.Bits)
	default:
		return drivers.Value{}, fmt.Errorf("%w: %s value for a %s metric", ErrType, w.Kind, t)
	}
	if t == drivers.Double {
		return drivers.DoubleValue(f), nil
	}
	if !math.IsInf(f, 0) && !math.IsNaN(f) && math.Abs(f) > math.MaxFloat32 {
		return drivers.Value{}, fmt.Errorf("%w: %g out of range for Float", ErrType, f)
	}
	return drivers.FloatValue(float32(f)), nil
}

// String names the wire field.
func (k Kind) String() string {
	switch k {
	case KindNone:
		return "no"
	case KindInt:
		return "int_value"
	case KindLong:
		return "long_value"
	case KindFloat:
		return "float_value"
	case KindDouble:
		return "double_value"
	case KindBool:
		return "boolean_value"
	case KindString:
		return "string_value"
	case KindBytes:
		return "bytes_value"
	}
	return "unsupported"
}

// coerce converts a driver's value to the tag's declared type, so that every DATA message
// carries the field its birth announced. It reports false when no sensible conversion exists.
func coerce(v drivers.Value, t drivers.Type) (drivers.Value, bool) {
	if v.Type() == t {
		return v, true
	}
	if v.IsNull() {
		return drivers.Null(t), true
	}
	src := v.Type()
	numeric := func(x drivers.Type) bool {
		return x.IsSigned() || x.IsUnsigned() || x.IsFloat() || x == drivers.Boolean
	}
	switch {
	case (src == drivers.String || src == drivers.Text) && (t == drivers.String || t == drivers.Text):
		if t == drivers.Text {
			return drivers.TextValue(v.Str()), true
		}
		return drivers.StringValue(v.Str()), true
	case !numeric(src) || !numeric(t):
		return drivers.Value{}, false
	case t.IsFloat():
		if t == drivers.Float {
			return drivers.FloatValue(float32(v.Float64())), true
		}
		return drivers.DoubleValue(v.Float64()), true
	case t == drivers.Boolean:
		return drivers.BoolValue(v.Bool()), true
	}
	return coerceInt(v, t)
}

// coerceInt converts a numeric value to an integer type, refusing values out of range.
func coerceInt(v drivers.Value, t drivers.Type) (drivers.Value, bool) {
	f := v.Float64()
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return drivers.Value{}, false
	}
	var w WireValue
	switch {
	case v.Type().IsFloat():
		if f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxUint64 {
			return drivers.Value{}, false
		}
		if f < 0 {
			w = WireValue{Kind: KindLong, Bits: uint64(int64(f))}
		} else {
			w = WireValue{Kind: KindLong, Bits: uint64(f)}
		}
	case v.Type().IsSigned() && v.Int() < 0:
		if t.IsUnsigned() {
			return drivers.Value{}, false
		}
		w = WireValue{Kind: KindLong, Bits: uint64(v.Int())}
	default:
		if t.IsSigned() && v.Uint() > math.MaxInt64 {
			return drivers.Value{}, false
		}
		w = WireValue{Kind: KindLong, Bits: v.Uint()}
	}
	if t.IsSigned() && typeBits(t) < 64 { // no narrow two's complement reinterpretation here
		x := int64(w.Bits)
		if bits := typeBits(t); x < -int64(1)<<(bits-1) || x > int64(1)<<(bits-1)-1 {
			return drivers.Value{}, false
		}
	}
	out, err := w.driverValue(t)
	return out, err == nil
}
