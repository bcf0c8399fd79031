package opcua

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"

	"github.com/wellgate/wellgate/drivers"
)

// typeNames are the names `type` accepts (lower case): the Sparkplug names, and the OPC UA
// names of the built-in types where they differ.
var typeNames = map[string]drivers.Type{
	"boolean": drivers.Boolean, "bool": drivers.Boolean,
	"int8": drivers.Int8, "sbyte": drivers.Int8,
	"uint8": drivers.UInt8, "byte": drivers.UInt8,
	"int16": drivers.Int16, "uint16": drivers.UInt16,
	"int32": drivers.Int32, "uint32": drivers.UInt32,
	"int64": drivers.Int64, "uint64": drivers.UInt64,
	"float": drivers.Float, "double": drivers.Double,
	"string":   drivers.String,
	"datetime": drivers.DateTime,
	"bytes":    drivers.Bytes, "bytestring": drivers.Bytes,
}

// ParseType parses a tag's type. "" gives drivers.Unknown: the type comes from the node.
func ParseType(s string) (drivers.Type, error) {
	if s == "" {
		return drivers.Unknown, nil
	}
	if t, ok := typeNames[strings.ToLower(s)]; ok {
		return t, nil
	}
	return drivers.Unknown, fmt.Errorf("type %q is not one of Boolean, Int8, UInt8, Int16, UInt16, Int32, UInt32, Int64, UInt64, Float, Double, String, DateTime, Bytes", s)
}

// builtinTypes maps the OPC UA built-in types a tag can have to the tightest Sparkplug type.
var builtinTypes = map[ua.TypeID]drivers.Type{
	ua.TypeIDBoolean: drivers.Boolean,
	ua.TypeIDSByte:   drivers.Int8, ua.TypeIDByte: drivers.UInt8,
	ua.TypeIDInt16: drivers.Int16, ua.TypeIDUint16: drivers.UInt16,
	ua.TypeIDInt32: drivers.Int32, ua.TypeIDUint32: drivers.UInt32,
	ua.TypeIDInt64: drivers.Int64, ua.TypeIDUint64: drivers.UInt64,
	ua.TypeIDFloat: drivers.Float, ua.TypeIDDouble: drivers.Double,
	ua.TypeIDString:     drivers.String,
	ua.TypeIDDateTime:   drivers.DateTime,
	ua.TypeIDByteString: drivers.Bytes,
}

// sparkplugType is the tightest Sparkplug type of an OPC UA built-in type.
func sparkplugType(t ua.TypeID) (drivers.Type, bool) {
	st, ok := builtinTypes[t]
	return st, ok
}

// dataTypeAliases are the standard DataTypes (namespace 0) that are subtypes of a built-in
// type a tag can have, with that type: their values travel as the built-in type.
var dataTypeAliases = map[uint32]ua.TypeID{
	id.UtcTime:  ua.TypeIDDateTime,
	id.Duration: ua.TypeIDDouble,
	id.LocaleID: ua.TypeIDString,
}

// builtinOfDataType returns the built-in type of a node's DataType attribute when it is known
// without looking at a value: a built-in type, or a standard alias of one. ok is false for
// abstract types (Number, Integer, BaseDataType), enumerations and structures: the value's
// own type decides then.
func builtinOfDataType(dt *ua.NodeID) (ua.TypeID, bool) {
	if dt == nil || dt.Namespace() != 0 || dt.Type() > ua.NodeIDTypeNumeric {
		return 0, false
	}
	n := dt.IntID()
	if n >= uint32(ua.TypeIDBoolean) && n <= uint32(ua.TypeIDDiagnosticInfo) {
		return ua.TypeID(n), true
	}
	t, ok := dataTypeAliases[n]
	return t, ok
}

// typeName is the OPC UA name of a built-in type (the name of its DataType node), for
// messages.
func typeName(t ua.TypeID) string {
	if n := id.Name(uint32(t)); n != "" {
		return n
	}
	return strings.TrimPrefix(t.String(), "TypeID")
}

// convertible reports whether values of the built-in type from can be published as to: the
// numbers and Boolean convert among themselves, the other types only to themselves.
func convertible(from ua.TypeID, to drivers.Type) bool {
	st, ok := sparkplugType(from)
	if !ok {
		return false
	}
	if numeric(st) || st == drivers.Boolean {
		return numeric(to) || to == drivers.Boolean
	}
	return st == to
}

// numeric reports whether t is a number type.
func numeric(t drivers.Type) bool {
	return t.IsSigned() || (t.IsUnsigned() && t != drivers.DateTime) || t.IsFloat()
}

// quality maps an OPC UA status code to a quality: Good, Uncertain → Stale, Bad.
func quality(s ua.StatusCode) drivers.Quality {
	switch uint32(s) & 0xC0000000 {
	case 0:
		return drivers.Good
	case 0x40000000:
		return drivers.Stale
	}
	return drivers.Bad
}

// statusText formats a status code for logs: its name and number.
func statusText(s ua.StatusCode) string {
	num := fmt.Sprintf("0x%08X", uint32(s))
	if d, ok := ua.StatusCodes[s]; ok {
		return strings.TrimPrefix(d.Name, "Status") + " (" + num + ")"
	}
	return num
}

var (
	errNoValue = errors.New("the server sent no value")
	errArray   = errors.New("the value is an array; only scalars are supported")
)

// toValue converts an OPC UA value to a value of type want.
func toValue(v *ua.Variant, want drivers.Type) (drivers.Value, error) {
	if v == nil || v.Type() == ua.TypeIDNull {
		return drivers.Null(want), errNoValue
	}
	if v.Has(ua.VariantArrayValues) {
		return drivers.Null(want), errArray
	}
	switch x := v.Value().(type) {
	case string:
		if want == drivers.String {
			return drivers.StringValue(x), nil
		}
	case time.Time:
		if want == drivers.DateTime {
			if x.Before(time.Unix(0, 0)) { // OPC UA's "no time" (1601) and anything before 1970
				return drivers.UintValue(drivers.DateTime, 0), nil
			}
			return drivers.DateTimeValue(x), nil
		}
	case []byte:
		if want == drivers.Bytes {
			return drivers.BytesValue(x), nil
		}
	default:
		n, ok := numberOf(x)
		if ok && (numeric(want) || want == drivers.Boolean) {
			return n.to(want)
		}
	}
	return drivers.Null(want), fmt.Errorf("a %s value cannot be published as %s", typeName(v.Type()), want)
}

// number is a numeric or boolean value on its way between types.
type number struct {
	kind byte // 'i' signed, 'u' unsigned, 'f' float
	i    int64
	u    uint64
	f    float64
}

// numberOf reads a Go value that holds a number or a bool.
func numberOf(x any) (number, bool) {
	switch v := x.(type) {
	case bool:
		if v {
			return number{kind: 'u', u: 1}, true
		}
		return number{kind: 'u'}, true
	case int8:
		return number{kind: 'i', i: int64(v)}, true
	case int16:
		return number{kind: 'i', i: int64(v)}, true
	case int32:
		return number{kind: 'i', i: int64(v)}, true
	case int64:
		return number{kind: 'i', i: v}, true
	case uint8:
		return number{kind: 'u', u: uint64(v)}, true
	case uint16:
		return number{kind: 'u', u: uint64(v)}, true
	case uint32:
		return number{kind: 'u', u: uint64(v)}, true
	case uint64:
		return number{kind: 'u', u: v}, true
	case float32:
		return number{kind: 'f', f: float64(v)}, true
	case float64:
		return number{kind: 'f', f: v}, true
	}
	return number{}, false
}

// numberOfValue reads a tag value that holds a number or a bool.
func numberOfValue(v drivers.Value) (number, bool) {
	switch t := v.Type(); {
	case t.IsSigned():
		return number{kind: 'i', i: v.Int()}, true
	case t == drivers.Boolean:
		return number{kind: 'u', u: v.Uint()}, true
	case t.IsFloat():
		return number{kind: 'f', f: v.Float64()}, true
	case t.IsUnsigned() && t != drivers.DateTime:
		return number{kind: 'u', u: v.Uint()}, true
	}
	return number{}, false
}

// float returns the number as a float64.
func (n number) float() float64 {
	switch n.kind {
	case 'i':
		return float64(n.i)
	case 'u':
		return float64(n.u)
	}
	return n.f
}

// integer returns the number as a whole number, refusing fractions, NaN and infinities when
// exact is set (writes) and rounding otherwise (readings published as an integer type).
func (n number) integer(exact bool) (i int64, u uint64, neg bool, err error) {
	switch n.kind {
	case 'i':
		return n.i, uint64(n.i), n.i < 0, nil
	case 'u':
		return int64(n.u), n.u, false, nil
	}
	f := n.f
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, 0, false, fmt.Errorf("%g is not a whole number", f)
	}
	if exact && f != math.Trunc(f) {
		return 0, 0, false, fmt.Errorf("%g is not a whole number", f)
	}
	f = math.Round(f)
	switch {
	case f < -(1<<63) || f >= 1<<64:
		return 0, 0, false, fmt.Errorf("%g is out of range", n.f)
	case f < 0:
		return int64(f), 0, true, nil
	case f >= 1<<63:
		return math.MaxInt64, uint64(f), false, nil
	}
	return int64(f), uint64(f), false, nil
}

// intRanges are the ranges of the integer types.
var intRanges = map[drivers.Type]struct {
	min int64
	max uint64
}{
	drivers.Int8: {math.MinInt8, math.MaxInt8}, drivers.Int16: {math.MinInt16, math.MaxInt16},
	drivers.Int32: {math.MinInt32, math.MaxInt32}, drivers.Int64: {math.MinInt64, math.MaxInt64},
	drivers.UInt8: {0, math.MaxUint8}, drivers.UInt16: {0, math.MaxUint16},
	drivers.UInt32: {0, math.MaxUint32}, drivers.UInt64: {0, math.MaxUint64},
}

// to converts the number to a tag value of type t.
func (n number) to(t drivers.Type) (drivers.Value, error) {
	switch {
	case t == drivers.Boolean:
		return drivers.BoolValue(n.float() != 0), nil
	case t == drivers.Double:
		return drivers.DoubleValue(n.float()), nil
	case t == drivers.Float:
		f := n.float()
		if math.Abs(f) > math.MaxFloat32 && !math.IsInf(f, 0) {
			return drivers.Null(t), fmt.Errorf("%g is out of range for Float", f)
		}
		return drivers.FloatValue(float32(f)), nil
	}
	i, u, neg, err := n.integer(false)
	if err != nil {
		return drivers.Null(t), err
	}
	r, ok := intRanges[t]
	if !ok {
		return drivers.Null(t), fmt.Errorf("cannot publish a number as %s", t)
	}
	if (neg && i < r.min) || (!neg && u > r.max) {
		return drivers.Null(t), fmt.Errorf("%s is out of range for %s", n, t)
	}
	if t.IsSigned() {
		return drivers.IntValue(t, i), nil
	}
	return drivers.UintValue(t, u), nil
}

func (n number) String() string {
	switch n.kind {
	case 'i':
		return fmt.Sprint(n.i)
	case 'u':
		return fmt.Sprint(n.u)
	}
	return fmt.Sprint(n.f)
}

// toVariant converts a value to be written to a node whose built-in type is node. Values that
// do not fit the node's type, and fractions for integer nodes, give drivers.ErrOutOfRange.
func toVariant(v drivers.Value, node ua.TypeID) (*ua.Variant, error) {
	if v.IsNull() {
		return nil, fmt.Errorf("%w: cannot write a null value", drivers.ErrOutOfRange)
	}
	switch node {
	case ua.TypeIDString:
		if v.Type() == drivers.String || v.Type() == drivers.Text {
			return ua.NewVariant(v.Str())
		}
	case ua.TypeIDDateTime:
		if v.Type() == drivers.DateTime {
			return ua.NewVariant(time.UnixMilli(int64(v.Uint())).UTC())
		}
	case ua.TypeIDByteString:
		if v.Type() == drivers.Bytes {
			return ua.NewVariant([]byte(v.Str()))
		}
	default:
		st, ok := sparkplugType(node)
		n, isNum := numberOfValue(v)
		if !ok || !isNum {
			break
		}
		return numberVariant(n, st)
	}
	return nil, fmt.Errorf("%w: a %s value cannot be written to a %s node", drivers.ErrOutOfRange, v.Type(), typeName(node))
}

// numberVariant builds the variant of a number for a node of Sparkplug type st, exactly.
func numberVariant(n number, st drivers.Type) (*ua.Variant, error) {
	switch st {
	case drivers.Boolean:
		f := n.float()
		if f != 0 && f != 1 {
			return nil, fmt.Errorf("%w: %s is not 0 or 1 (a Boolean node)", drivers.ErrOutOfRange, n)
		}
		return ua.NewVariant(f == 1)
	case drivers.Double:
		return ua.NewVariant(n.float())
	case drivers.Float:
		f := n.float()
		if math.Abs(f) > math.MaxFloat32 && !math.IsInf(f, 0) {
			return nil, fmt.Errorf("%w: %g does not fit a Float node", drivers.ErrOutOfRange, f)
		}
		return ua.NewVariant(float32(f))
	}
	i, u, neg, err := n.integer(true)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", drivers.ErrOutOfRange, err)
	}
	r := intRanges[st]
	if (neg && i < r.min) || (!neg && u > r.max) {
		return nil, fmt.Errorf("%w: %s does not fit a %s node", drivers.ErrOutOfRange, n, st)
	}
	var x any
	switch st {
	case drivers.Int8:
		x = int8(i)
	case drivers.Int16:
		x = int16(i)
	case drivers.Int32:
		x = int32(i)
	case drivers.Int64:
		x = i
	case drivers.UInt8:
		x = uint8(u)
	case drivers.UInt16:
		x = uint16(u)
	case drivers.UInt32:
		x = uint32(u)
	default:
		x = u
	}
	return ua.NewVariant(x)
}
