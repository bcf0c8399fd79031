package modbus

import (
	"fmt"
	"strings"

	"github.com/wellgate/wellgate/drivers"
)

// kind is a tag's data layout in the device.
type kind uint8

const (
	kBool kind = iota + 1
	kInt16
	kUint16
	kInt32
	kUint32
	kInt64
	kUint64
	kFloat32
	kFloat64
	kString
)

var kindNames = map[string]kind{
	"bool": kBool, "int16": kInt16, "uint16": kUint16, "int32": kInt32, "uint32": kUint32,
	"int64": kInt64, "uint64": kUint64, "float32": kFloat32, "float64": kFloat64, "string": kString,
}

// kindText are kindNames' names by kind.
var kindText = [...]string{
	kBool: "bool", kInt16: "int16", kUint16: "uint16", kInt32: "int32", kUint32: "uint32",
	kInt64: "int64", kUint64: "uint64", kFloat32: "float32", kFloat64: "float64", kString: "string",
}

func (k kind) String() string {
	if int(k) < len(kindText) && kindText[k] != "" {
		return kindText[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// registers is the number of registers a value of the kind occupies (strings: see tag.size).
func (k kind) registers() int {
	switch k {
	case kInt32, kUint32, kFloat32:
		return 2
	case kInt64, kUint64, kFloat64:
		return 4
	}
	return 1
}

// numeric reports whether the kind is a number that can be scaled.
func (k kind) numeric() bool { return k != kBool && k != kString }

// sparkplug is the Sparkplug type of an unscaled value of the kind.
func (k kind) sparkplug() drivers.Type {
	return [...]drivers.Type{
		kBool: drivers.Boolean, kInt16: drivers.Int16, kUint16: drivers.UInt16,
		kInt32: drivers.Int32, kUint32: drivers.UInt32, kInt64: drivers.Int64,
		kUint64: drivers.UInt64, kFloat32: drivers.Float, kFloat64: drivers.Double,
		kString: drivers.String,
	}[k]
}

// byteOrder is the order of a value's bytes on the wire; see the package comment.
type byteOrder uint8

const (
	orderABCD byteOrder = iota
	orderCDAB
	orderBADC
	orderDCBA
)

var orderNames = [...]string{"ABCD", "CDAB", "BADC", "DCBA"}

func (o byteOrder) String() string { return orderNames[o] }

// wordSwap reports whether registers travel least significant first.
func (o byteOrder) wordSwap() bool { return o == orderCDAB || o == orderDCBA }

// byteSwap reports whether the bytes inside each register are swapped.
func (o byteOrder) byteSwap() bool { return o == orderBADC || o == orderDCBA }

// parseOrder parses a byte order name, in either case.
func parseOrder(s string) (byteOrder, error) {
	for i, n := range orderNames {
		if strings.EqualFold(s, n) {
			return byteOrder(i), nil
		}
	}
	return 0, fmt.Errorf("byte_order %q is not one of ABCD, CDAB, BADC, DCBA", s)
}
