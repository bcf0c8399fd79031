// Package drivers holds the contract between the gateway and its field drivers (Modbus, OPC UA):
// the tag model (typed value, quality, timestamp), the samples a driver produces and the
// optional abilities (writing) a driver may offer.
package drivers

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// Type is a tag's data type. The numbers are the Sparkplug B DataType numbers, so that the
// sparkplug package converts with a plain cast.
type Type uint32

// The data types a tag may have.
const (
	Unknown Type = 0
	Int8    Type = 1
	Int16   Type = 2
	Int32   Type = 3
	Int64   Type = 4
	UInt8   Type = 5
	UInt16  Type = 6
	UInt32  Type = 7
	UInt64  Type = 8
	Float   Type = 9
	Double  Type = 10
	Boolean Type = 11
	String  Type = 12
	// DateTime is milliseconds since the Unix epoch, UTC.
	DateTime Type = 13
	Text     Type = 14
	Bytes    Type = 17
)

var typeNames = map[Type]string{
	Int8: "Int8", Int16: "Int16", Int32: "Int32", Int64: "Int64",
	UInt8: "UInt8", UInt16: "UInt16", UInt32: "UInt32", UInt64: "UInt64",
	Float: "Float", Double: "Double", Boolean: "Boolean", String: "String",
	DateTime: "DateTime", Text: "Text", Bytes: "Bytes",
}

func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// IsSigned reports whether t is a signed integer type.
func (t Type) IsSigned() bool { return t == Int8 || t == Int16 || t == Int32 || t == Int64 }

// IsUnsigned reports whether t is an unsigned integer type (DateTime counts as one).
func (t Type) IsUnsigned() bool {
	return t == UInt8 || t == UInt16 || t == UInt32 || t == UInt64 || t == DateTime
}

// IsFloat reports whether t is Float or Double.
func (t Type) IsFloat() bool { return t == Float || t == Double }

// Value is a typed tag value. The zero Value is a null of Unknown type. Values are small and
// are passed by value; building one never allocates except for strings and bytes.
type Value struct {
	typ  Type
	null bool
	bits uint64 // integers (two's complement), bool (0/1), float64 bits (Float and Double)
	str  string // String, Text, and Bytes (as raw bytes)
}

// Null returns a null value that still carries its type (Sparkplug births need it).
func Null(t Type) Value { return Value{typ: t, null: true} }

// IntValue returns a signed integer value of type t (Int8 … Int64).
func IntValue(t Type, v int64) Value { return Value{typ: t, bits: uint64(v)} }

// UintValue returns an unsigned integer value of type t (UInt8 … UInt64, DateTime).
func UintValue(t Type, v uint64) Value { return Value{typ: t, bits: v} }

// FloatValue returns a Float (float32) value.
func FloatValue(v float32) Value { return Value{typ: Float, bits: math.Float64bits(float64(v))} }

// DoubleValue returns a Double (float64) value.
func DoubleValue(v float64) Value { return Value{typ: Double, bits: math.Float64bits(v)} }

// BoolValue returns a Boolean value.
func BoolValue(v bool) Value {
	if v {
		return Value{typ: Boolean, bits: 1}
	}
	return Value{typ: Boolean}
}

// StringValue returns a String value.
func StringValue(v string) Value { return Value{typ: String, str: v} }

// TextValue returns a Text value.
func TextValue(v string) Value { return Value{typ: Text, str: v} }

// BytesValue returns a Bytes value (the slice is copied).
func BytesValue(v []byte) Value { return Value{typ: Bytes, str: string(v)} }

// DateTimeValue returns a DateTime value.
func DateTimeValue(t time.Time) Value { return Value{typ: DateTime, bits: uint64(t.UnixMilli())} }

// Type returns the value's data type.
func (v Value) Type() Type { return v.typ }

// IsNull reports whether the value is null (no value, for example after a read error).
func (v Value) IsNull() bool { return v.null }

// Int returns a signed integer value; for other kinds it converts as Go would.
func (v Value) Int() int64 {
	switch {
	case v.typ.IsFloat():
		return int64(v.Float64())
	}
	return int64(v.bits)
}

// Uint returns an unsigned integer value (bool as 0/1).
func (v Value) Uint() uint64 {
	if v.typ.IsFloat() {
		return uint64(v.Float64())
	}
	return v.bits
}

// Float64 returns the value as a float64 (integers converted; bool as 0/1).
func (v Value) Float64() float64 {
	switch {
	case v.typ.IsFloat():
		return math.Float64frombits(v.bits)
	case v.typ.IsSigned():
		return float64(int64(v.bits))
	}
	return float64(v.bits)
}

// Bool returns a Boolean value (non-zero numbers are true).
func (v Value) Bool() bool {
	if v.typ.IsFloat() {
		return v.Float64() != 0
	}
	return v.bits != 0
}

// Str returns a String, Text or Bytes value's content.
func (v Value) Str() string { return v.str }

// Equal reports whether two values are the same: same type, same nullness and same content.
// Two NaN floats with the same bits are equal (an unchanged NaN is not a change).
func (v Value) Equal(w Value) bool {
	return v.typ == w.typ && v.null == w.null && v.bits == w.bits && v.str == w.str
}

// Any returns the value as a plain Go value (nil when null), for JSON and templates.
func (v Value) Any() any {
	if v.null {
		return nil
	}
	switch {
	case v.typ.IsSigned():
		return v.Int()
	case v.typ.IsUnsigned():
		return v.Uint()
	case v.typ == Float:
		return float32(v.Float64())
	case v.typ == Double:
		return v.Float64()
	case v.typ == Boolean:
		return v.Bool()
	case v.typ == Bytes:
		return []byte(v.str)
	}
	return v.str
}

// String formats the value for people (status page, logs).
func (v Value) String() string {
	if v.null {
		return "null"
	}
	switch {
	case v.typ.IsSigned():
		return strconv.FormatInt(v.Int(), 10)
	case v.typ.IsUnsigned():
		return strconv.FormatUint(v.Uint(), 10)
	case v.typ == Float:
		return strconv.FormatFloat(v.Float64(), 'g', -1, 32)
	case v.typ == Double:
		return strconv.FormatFloat(v.Float64(), 'g', -1, 64)
	case v.typ == Boolean:
		return strconv.FormatBool(v.Bool())
	case v.typ == Bytes:
		return fmt.Sprintf("%x", v.str)
	}
	return v.str
}
