package modbus

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"

	"github.com/wellgate/wellgate/drivers"
)

// kindRange is the smallest and largest raw value of each integer kind.
var kindRange = map[kind][2]*big.Int{
	kInt16:  {big.NewInt(math.MinInt16), big.NewInt(math.MaxInt16)},
	kUint16: {big.NewInt(0), big.NewInt(math.MaxUint16)},
	kInt32:  {big.NewInt(math.MinInt32), big.NewInt(math.MaxInt32)},
	kUint32: {big.NewInt(0), big.NewInt(math.MaxUint32)},
	kInt64:  {big.NewInt(math.MinInt64), big.NewInt(math.MaxInt64)},
	kUint64: {big.NewInt(0), new(big.Int).SetUint64(math.MaxUint64)},
}

// outOfRange wraps drivers.ErrOutOfRange with the reason.
func outOfRange(format string, args ...any) error {
	return fmt.Errorf("%w: %s", drivers.ErrOutOfRange, fmt.Sprintf(format, args...))
}

// encodeBool returns the bit to write to a coil or a bit in a register.
func encodeBool(v drivers.Value) (bool, error) {
	if v.IsNull() {
		return false, outOfRange("null value")
	}
	switch {
	case v.Type() == drivers.Boolean:
		return v.Bool(), nil
	case v.Type().IsFloat() || v.Type().IsSigned() || v.Type().IsUnsigned():
		if f := v.Float64(); f == 0 || f == 1 {
			return f == 1, nil
		}
	}
	return false, outOfRange("%s is not a bool (true/false or 0/1)", v)
}

// encodeRegisters returns the register bytes, as they travel, that write v to tag t. It
// checks v against the tag's type and its min and max (in engineering units).
func encodeRegisters(t *tag, v drivers.Value) ([]byte, error) {
	if v.IsNull() {
		return nil, outOfRange("null value")
	}
	if t.kind == kString {
		return encodeString(t, v)
	}
	if !v.Type().IsFloat() && !v.Type().IsSigned() && !v.Type().IsUnsigned() {
		return nil, outOfRange("%s value %q is not a number", v.Type(), v)
	}
	eng := v.Float64()
	if math.IsNaN(eng) || math.IsInf(eng, 0) {
		return nil, outOfRange("%v cannot be written", eng)
	}
	if lo, hi := t.limits(); lo != nil && eng < *lo || hi != nil && eng > *hi {
		return nil, outOfRange("%v is outside the tag's range %s", v, rangeText(t))
	}
	var be [8]byte
	n := 2 * t.kind.registers()
	switch t.kind {
	case kFloat32, kFloat64:
		f := eng
		if t.scaled {
			f = (eng - t.x.offset) / t.x.scale
		}
		if t.kind == kFloat32 {
			if math.Abs(f) > math.MaxFloat32 {
				return nil, outOfRange("%v does not fit a float32", f)
			}
			binary.BigEndian.PutUint32(be[:], math.Float32bits(float32(f)))
		} else {
			binary.BigEndian.PutUint64(be[:], math.Float64bits(f))
		}
	default:
		raw, err := rawInteger(t, v)
		if err != nil {
			return nil, err
		}
		putInteger(be[:n], raw)
	}
	return canonical(make([]byte, n), be[:n], t.order), nil
}

// rawInteger returns the integer to store for v in an integer tag, range checked.
func rawInteger(t *tag, v drivers.Value) (*big.Int, error) {
	var raw *big.Int
	switch {
	case t.scaled:
		f := math.Round((v.Float64() - t.x.offset) / t.x.scale)
		raw, _ = big.NewFloat(f).Int(nil)
	case v.Type().IsSigned():
		raw = big.NewInt(v.Int())
	case v.Type().IsUnsigned():
		raw = new(big.Int).SetUint64(v.Uint())
	default:
		f := v.Float64()
		if f != math.Trunc(f) {
			return nil, outOfRange("%v is not a whole number, and %s holds whole numbers", f, t.kind)
		}
		raw, _ = big.NewFloat(f).Int(nil)
	}
	r := kindRange[t.kind]
	if raw.Cmp(r[0]) < 0 || raw.Cmp(r[1]) > 0 {
		return nil, outOfRange("raw value %v does not fit %s (%v…%v)", raw, t.kind, r[0], r[1])
	}
	return raw, nil
}

// putInteger stores raw in two's complement, big endian, filling b.
func putInteger(b []byte, raw *big.Int) {
	u := raw.Uint64()
	if raw.Sign() < 0 {
		u = uint64(raw.Int64())
	}
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte(u)
		u >>= 8
	}
}

// encodeString pads the string with NULs to the tag's length.
func encodeString(t *tag, v drivers.Value) ([]byte, error) {
	if v.Type() != drivers.String && v.Type() != drivers.Text {
		return nil, outOfRange("%s value is not a string", v.Type())
	}
	s := v.Str()
	if len(s) > 2*int(t.size) {
		return nil, outOfRange("%d bytes do not fit %d registers", len(s), t.size)
	}
	b := make([]byte, 2*int(t.size))
	copy(b, s)
	if t.order.byteSwap() {
		for i := 0; i < len(b); i += 2 {
			b[i], b[i+1] = b[i+1], b[i]
		}
	}
	return b, nil
}

func rangeText(t *tag) string {
	lo, hi := "-inf", "+inf"
	least, most := t.limits()
	if least != nil {
		lo = fmt.Sprint(*least)
	}
	if most != nil {
		hi = fmt.Sprint(*most)
	}
	return lo + "…" + hi
}

// limits are the tag's min and max, nil where it has none.
func (t *tag) limits() (lo, hi *float64) {
	if t.x == nil {
		return nil, nil
	}
	return t.x.min, t.x.max
}
