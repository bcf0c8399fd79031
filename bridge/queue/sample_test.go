package queue

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/wellgate/wellgate/drivers"
)

func sampleVectors() []drivers.Sample {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	return []drivers.Sample{
		{Device: "wellpad-3", Tag: "Casing/Pressure", Value: drivers.DoubleValue(1234.5), Quality: drivers.Good, Time: t0},
		{Device: "plc", Tag: "run", Value: drivers.BoolValue(true), Quality: drivers.Good, Time: t0.Truncate(time.Millisecond)},
		{Device: "plc", Tag: "i8", Value: drivers.IntValue(drivers.Int8, -5), Quality: drivers.Stale, Time: t0},
		{Device: "plc", Tag: "i64", Value: drivers.IntValue(drivers.Int64, math.MinInt64), Quality: drivers.Bad, Time: t0},
		{Device: "plc", Tag: "u64", Value: drivers.UintValue(drivers.UInt64, math.MaxUint64), Quality: 42, Time: t0},
		{Device: "plc", Tag: "u32", Value: drivers.UintValue(drivers.UInt32, 4000000000), Quality: -7, Time: t0},
		{Device: "plc", Tag: "f", Value: drivers.FloatValue(float32(math.NaN())), Quality: drivers.Good, Time: t0},
		{Device: "plc", Tag: "f2", Value: drivers.FloatValue(-0.25), Quality: drivers.Good, Time: t0},
		{Device: "plc", Tag: "dt", Value: drivers.DateTimeValue(t0), Quality: drivers.Good, Time: t0},
		{Device: "plc", Tag: "s", Value: drivers.StringValue("héllo"), Quality: drivers.Good, Time: t0},
		{Device: "plc", Tag: "txt", Value: drivers.TextValue(""), Quality: drivers.Good, Time: t0},
		{Device: "plc", Tag: "b", Value: drivers.BytesValue([]byte{0, 1, 255}), Quality: drivers.Good, Time: t0},
		{Device: "plc", Tag: "null", Value: drivers.Null(drivers.Float), Quality: drivers.Bad, Time: t0},
		{Device: "", Tag: "", Value: drivers.Value{}, Quality: drivers.Bad},
		{Device: "old", Tag: "t", Value: drivers.UintValue(drivers.UInt16, 7), Quality: drivers.Good, Time: time.Unix(-1, 5)},
	}
}

func sameSample(a, b drivers.Sample) bool {
	return a.Device == b.Device && a.Tag == b.Tag && a.Value.Equal(b.Value) && a.Quality == b.Quality && a.Time.Equal(b.Time)
}

func TestSampleRoundTrip(t *testing.T) {
	for _, s := range sampleVectors() {
		b := EncodeSample(nil, s)
		got, err := DecodeSample(b)
		if err != nil {
			t.Fatalf("%s/%s: %v", s.Device, s.Tag, err)
		}
		if !sameSample(got, s) {
			t.Errorf("round trip: got %+v, want %+v", got, s)
		}
		for i := 0; i < len(b); i++ { // every truncation is an error, never a panic
			if _, err := DecodeSample(b[:i]); !errors.Is(err, ErrBadSample) {
				t.Errorf("%s/%s truncated to %d: %v", s.Device, s.Tag, i, err)
			}
		}
	}
}

func TestSampleSize(t *testing.T) {
	s := sampleVectors()[0]
	if n := len(EncodeSample(nil, s)); n > 48 {
		t.Errorf("a typical Double sample takes %d bytes, want at most 48", n)
	}
}

func FuzzDecodeSample(f *testing.F) {
	for _, s := range sampleVectors() {
		f.Add(EncodeSample(nil, s))
	}
	f.Add([]byte{SampleTag, 0, 0, 200, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeSample(b)
		if err != nil {
			if !errors.Is(err, ErrBadSample) {
				t.Fatalf("error not wrapping ErrBadSample: %v", err)
			}
			return
		}
		again, err := DecodeSample(EncodeSample(nil, s))
		if err != nil || !sameSample(again, s) {
			t.Fatalf("re-encoding %+v gave %+v, %v", s, again, err)
		}
	})
}
