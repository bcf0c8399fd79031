package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/wellgate/wellgate/drivers"
)

// SampleTag is the first byte of an encoded sample. Other record kinds kept in the same queue
// (the bridge's forwarded MQTT messages) start with another byte.
const SampleTag = 'S'

// Flag bits of an encoded sample.
const (
	flagNull     = 1 << 0
	flagZeroTime = 1 << 1
	flagSubMilli = 1 << 2
	qualShift    = 3 // two bits: 0 explicit varint follows, 1 good, 2 bad, 3 stale
	flagMask     = 0x1f
)

// ErrBadSample is returned (wrapped) by DecodeSample for bytes that are not a sample.
var ErrBadSample = errors.New("queue: bad sample record")

// EncodeSample appends the compact binary form of s to dst and returns the extended slice:
//
//	'S' | uvarint len, device | uvarint len, tag | uvarint type | flags
//	    | [varint quality] | [value] | [varint Unix ms] | [uvarint ns within the ms]
//
// The value is a uvarint (unsigned, Boolean, DateTime), a zigzag varint (signed), 4 or 8
// little-endian bytes (Float, Double) or a uvarint length and the bytes (String, Text, Bytes);
// it is absent for nulls.
func EncodeSample(dst []byte, s drivers.Sample) []byte {
	dst = append(dst, SampleTag)
	dst = binary.AppendUvarint(dst, uint64(len(s.Device)))
	dst = append(dst, s.Device...)
	dst = binary.AppendUvarint(dst, uint64(len(s.Tag)))
	dst = append(dst, s.Tag...)
	t := s.Value.Type()
	dst = binary.AppendUvarint(dst, uint64(t))
	var flags byte
	if s.Value.IsNull() {
		flags |= flagNull
	}
	var ms int64
	var sub int64
	if s.Time.IsZero() {
		flags |= flagZeroTime
	} else {
		ms = s.Time.UnixMilli()
		sub = int64(s.Time.Nanosecond()) % 1e6
		if sub != 0 {
			flags |= flagSubMilli
		}
	}
	q := qualityCode(s.Quality)
	flags |= q << qualShift
	dst = append(dst, flags)
	if q == 0 {
		dst = binary.AppendVarint(dst, int64(s.Quality))
	}
	if !s.Value.IsNull() {
		dst = appendValue(dst, s.Value)
	}
	if flags&flagZeroTime == 0 {
		dst = binary.AppendVarint(dst, ms)
		if sub != 0 {
			dst = binary.AppendUvarint(dst, uint64(sub))
		}
	}
	return dst
}

func qualityCode(q drivers.Quality) byte {
	switch q {
	case drivers.Good:
		return 1
	case drivers.Bad:
		return 2
	case drivers.Stale:
		return 3
	}
	return 0
}

func isStringType(t drivers.Type) bool {
	return t == drivers.String || t == drivers.Text || t == drivers.Bytes
}

func appendValue(dst []byte, v drivers.Value) []byte {
	t := v.Type()
	switch {
	case isStringType(t):
		dst = binary.AppendUvarint(dst, uint64(len(v.Str())))
		return append(dst, v.Str()...)
	case t == drivers.Float:
		return binary.LittleEndian.AppendUint32(dst, math.Float32bits(float32(v.Float64())))
	case t == drivers.Double:
		return binary.LittleEndian.AppendUint64(dst, math.Float64bits(v.Float64()))
	case t.IsSigned():
		return binary.AppendVarint(dst, v.Int())
	}
	return binary.AppendUvarint(dst, v.Uint())
}

// sampleReader consumes an encoded sample.
type sampleReader struct {
	b   []byte
	err error
}

func (r *sampleReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrBadSample, what)
	}
}

func (r *sampleReader) uvarint(what string) uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *sampleReader) varint(what string) int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *sampleReader) bytes(n uint64, what string) []byte {
	if n > uint64(len(r.b)) {
		r.fail(what)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *sampleReader) str(what string) string {
	return string(r.bytes(r.uvarint(what), what))
}

// DecodeSample decodes a record written by EncodeSample. It never panics; it returns an error
// wrapping ErrBadSample for anything else.
func DecodeSample(b []byte) (drivers.Sample, error) {
	if len(b) == 0 || b[0] != SampleTag {
		return drivers.Sample{}, fmt.Errorf("%w: not a sample", ErrBadSample)
	}
	r := &sampleReader{b: b[1:]}
	var s drivers.Sample
	s.Device = r.str("device")
	s.Tag = r.str("tag")
	typ := r.uvarint("type")
	flagsB := r.bytes(1, "flags")
	if r.err != nil {
		return drivers.Sample{}, r.err
	}
	if typ > math.MaxUint32 {
		return drivers.Sample{}, fmt.Errorf("%w: type %d", ErrBadSample, typ)
	}
	t, flags := drivers.Type(typ), flagsB[0]
	if flags&^flagMask != 0 {
		return drivers.Sample{}, fmt.Errorf("%w: flags %#x", ErrBadSample, flags)
	}
	s.Quality = [4]drivers.Quality{0, drivers.Good, drivers.Bad, drivers.Stale}[flags>>qualShift&3]
	if flags>>qualShift&3 == 0 {
		q := r.varint("quality")
		if q < math.MinInt32 || q > math.MaxInt32 {
			r.fail("quality out of range")
		}
		s.Quality = drivers.Quality(q)
	}
	s.Value = drivers.Null(t)
	if flags&flagNull == 0 {
		s.Value = r.value(t)
	}
	s.Time = r.time(flags)
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return drivers.Sample{}, r.err
	}
	return s, nil
}

func (r *sampleReader) value(t drivers.Type) drivers.Value {
	switch {
	case isStringType(t):
		s := r.str("value")
		switch t {
		case drivers.String:
			return drivers.StringValue(s)
		case drivers.Text:
			return drivers.TextValue(s)
		}
		return drivers.BytesValue([]byte(s))
	case t == drivers.Float:
		b := r.bytes(4, "float")
		if b == nil {
			return drivers.Value{}
		}
		return drivers.FloatValue(math.Float32frombits(binary.LittleEndian.Uint32(b)))
	case t == drivers.Double:
		b := r.bytes(8, "double")
		if b == nil {
			return drivers.Value{}
		}
		return drivers.DoubleValue(math.Float64frombits(binary.LittleEndian.Uint64(b)))
	case t.IsSigned():
		return drivers.IntValue(t, r.varint("int"))
	}
	return drivers.UintValue(t, r.uvarint("uint"))
}

func (r *sampleReader) time(flags byte) time.Time {
	if flags&flagZeroTime != 0 {
		if flags&flagSubMilli != 0 {
			r.fail("sub-millisecond part without a time")
		}
		return time.Time{}
	}
	ms := r.varint("time")
	var sub uint64
	if flags&flagSubMilli != 0 {
		sub = r.uvarint("time ns")
		if sub == 0 || sub >= 1e6 {
			r.fail("time ns out of range")
		}
	}
	return time.UnixMilli(ms).Add(time.Duration(sub))
}
