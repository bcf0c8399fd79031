package modbus

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wellgate/wellgate/drivers"
)

// decodeResponse decodes the data of a read response (register bytes as they travel, or
// packed bits) into one good sample per tag of r, stored at out[t.index]. It checks the data's
// length first: a response of the wrong size is garbage and sets nothing.
func decodeResponse(r *request, data []byte, at time.Time, out []drivers.Sample) error {
	want := 2 * int(r.count)
	if r.table.isBit() {
		want = (int(r.count) + 7) / 8
	}
	if len(data) != want {
		return fmt.Errorf("%d data bytes for %d %s, want %d", len(data), r.count, r.table, want)
	}
	for _, t := range r.tags {
		s := &out[t.index]
		s.Value, s.Quality, s.Time = decodeTag(t, r, data), drivers.Good, at
	}
	return nil
}

// decodeTag decodes tag t from the data of request r (whose length has been checked).
func decodeTag(t *tag, r *request, data []byte) drivers.Value {
	rel := int(t.start) - int(r.start)
	if r.table.isBit() {
		return drivers.BoolValue(data[rel/8]>>(rel%8)&1 == 1)
	}
	return decodeRegisters(t, data[2*rel:2*(rel+int(t.size))])
}

// decodeRegisters decodes a tag from its own registers' bytes (2 × t.size of them).
func decodeRegisters(t *tag, b []byte) drivers.Value {
	if t.kind == kString {
		return drivers.StringValue(t.decodeString(b))
	}
	if t.kind == kBool {
		return drivers.BoolValue(binary.BigEndian.Uint16(b)>>t.bit&1 == 1)
	}
	var buf [8]byte
	raw := canonical(buf[:len(b)], b, t.order)
	var v drivers.Value
	switch t.kind {
	case kInt16:
		v = drivers.IntValue(drivers.Int16, int64(int16(binary.BigEndian.Uint16(raw))))
	case kUint16:
		v = drivers.UintValue(drivers.UInt16, uint64(binary.BigEndian.Uint16(raw)))
	case kInt32:
		v = drivers.IntValue(drivers.Int32, int64(int32(binary.BigEndian.Uint32(raw))))
	case kUint32:
		v = drivers.UintValue(drivers.UInt32, uint64(binary.BigEndian.Uint32(raw)))
	case kInt64:
		v = drivers.IntValue(drivers.Int64, int64(binary.BigEndian.Uint64(raw)))
	case kUint64:
		v = drivers.UintValue(drivers.UInt64, binary.BigEndian.Uint64(raw))
	case kFloat32:
		v = drivers.FloatValue(math.Float32frombits(binary.BigEndian.Uint32(raw)))
	case kFloat64:
		v = drivers.DoubleValue(math.Float64frombits(binary.BigEndian.Uint64(raw)))
	}
	if t.scaled {
		return drivers.DoubleValue(scaleRaw(v.Float64(), t.x.scale, t.x.offset))
	}
	return v
}

// scaleRaw is raw·scale + offset, computed as raw / (1/scale) when 1/scale is a whole number:
// 1128 × 0.1 is 112.80000000000001 in binary floating point, 1128 / 10 is 112.8, which is what
// the technician who wrote scale = 0.1 expects to see in Ignition.
func scaleRaw(raw, scale, offset float64) float64 {
	if scale != 0 && math.Abs(scale) < 1 {
		inv := 1 / scale
		if r := math.Round(inv); r != 0 && math.Abs(inv-r) <= 1e-9*math.Abs(r) {
			return raw/r + offset
		}
	}
	return raw*scale + offset
}

// canonical copies wire bytes src into dst (same length, a whole number of registers) in
// big-endian (ABCD…) order, undoing the byte order o. A single register takes the byte swap only.
func canonical(dst, src []byte, o byteOrder) []byte {
	n := len(src) / 2
	for i := 0; i < n; i++ {
		w := i
		if o.wordSwap() {
			w = n - 1 - i
		}
		hi, lo := src[2*w], src[2*w+1]
		if o.byteSwap() {
			hi, lo = lo, hi
		}
		dst[2*i], dst[2*i+1] = hi, lo
	}
	return dst
}

// decodeString reads the tag's string from its registers' bytes b: two characters per
// register (high byte first unless the tag's byte order swaps bytes), trailing NULs and spaces
// trimmed, made valid UTF-8. A string whose bytes did not change since the tag's last one is
// that string again: an unchanged string tag allocates nothing. Only the endpoint's goroutine
// decodes (polls and a write's read-back), so the tag's last string needs no lock.
func (t *tag) decodeString(b []byte) string {
	var buf [2 * maxReadRegisters]byte // a tag fits in one read
	raw := b
	if t.order.byteSwap() {
		raw = buf[:0]
		if len(b) > len(buf) {
			raw = make([]byte, 0, len(b))
		}
		for i := 0; i+1 < len(b); i += 2 {
			raw = append(raw, b[i+1], b[i])
		}
	}
	end := len(raw)
	for end > 0 && (raw[end-1] == 0 || raw[end-1] == ' ') {
		end--
	}
	x := t.x // a string tag has one

	if string(raw[:end]) == x.lastRaw { // compared without a copy
		return x.lastStr
	}
	s := string(raw[:end])
	x.lastRaw, x.lastStr = s, s
	if !utf8.ValidString(s) {
		x.lastStr = strings.ToValidUTF8(s, "\uFFFD")
	}
	return x.lastStr
}
