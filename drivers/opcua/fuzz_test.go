package opcua

import (
	"math"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/wellgate/wellgate/drivers"
)

// FuzzToValue converts every value a server can send in a scalar variant of a built-in type
// with a Sparkplug type (and arrays) to every tag type: the conversion never panics, what it
// accepts has the type asked for, and a value published with its node's own type writes back
// to that type. (The variants are built from fuzzed Go values rather than decoded from fuzzed
// bytes: gopcua v0.8.0's decoder itself panics on an array length below -1, upstream
// gopcua/opcua#892.)
func FuzzToValue(f *testing.F) {
	f.Add(uint8(0), int64(-1), uint64(1), 1.5, "s", []byte{1})
	f.Add(uint8(7), int64(math.MinInt64), uint64(math.MaxUint64), math.NaN(), "", []byte(nil))
	f.Add(uint8(9), int64(1<<40), uint64(1<<63), math.Inf(-1), "x", []byte{0})
	types := []drivers.Type{drivers.Boolean, drivers.Int8, drivers.UInt8, drivers.Int16, drivers.UInt16, drivers.Int32,
		drivers.UInt32, drivers.Int64, drivers.UInt64, drivers.Float, drivers.Double, drivers.String, drivers.DateTime, drivers.Bytes}
	f.Fuzz(func(t *testing.T, kind uint8, i int64, u uint64, fl float64, s string, b []byte) {
		values := []any{i != 0, int8(i), uint8(u), int16(i), uint16(u), int32(i), uint32(u), i, u, float32(fl), fl, s,
			time.Unix(0, i).UTC(), b, []float64{fl}}
		v, err := ua.NewVariant(values[int(kind)%len(values)])
		if err != nil {
			return
		}
		for _, want := range types {
			got, err := toValue(v, want)
			if err != nil {
				if !got.IsNull() || got.Type() != want {
					t.Fatalf("failed conversion to %v gave %v", want, got)
				}
				continue
			}
			if got.Type() != want || got.IsNull() {
				t.Fatalf("toValue(%v, %v) = %v", v.Value(), want, got)
			}
			if st, ok := sparkplugType(v.Type()); ok && st == want {
				if back, err := toVariant(got, v.Type()); err != nil || back.Type() != v.Type() {
					t.Fatalf("%#v as %v does not write back: %v, %v", v.Value(), want, back, err)
				}
			}
		}
	})
}

// FuzzParseFingerprint: a fingerprint the parser accepts is 32 bytes and pins the same
// certificate in the form Fingerprint prints.
func FuzzParseFingerprint(f *testing.F) {
	f.Add("SHA256:" + "3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f")
	f.Add("sha256:3F:3F")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseFingerprint(s)
		if err != nil {
			return
		}
		if len(b) != 32 {
			t.Fatalf("%q parsed to %d bytes", s, len(b))
		}
		again, err := ParseFingerprint("SHA256:" + hexOf(b))
		if err != nil || string(again) != string(b) {
			t.Fatalf("%q does not round-trip: %v", s, err)
		}
	})
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}
