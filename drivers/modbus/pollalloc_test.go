package modbus

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/wellgate/wellgate/drivers"
)

// The poll path's allocations, measured against a peer that allocates nothing per request,
// so that what is counted is the driver's own: one batch slice per poll (the sink keeps it),
// and nothing per tag or per request.

// zeroPeer is a Modbus TCP server on loopback that answers every read from fixed memory and
// allocates nothing per request. It serves any unit id; register bytes cycle through 'A'…'Z'
// (so string tags have text), bits alternate.
type zeroPeer struct {
	addr string
}

func newZeroPeer(t testing.TB) *zeroPeer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serveZero(c)
		}
	}()
	return &zeroPeer{addr: l.Addr().String()}
}

// serveZero answers reads on c until it closes.
func serveZero(c net.Conn) {
	defer c.Close()
	var in [260]byte
	var out [7 + 2 + 250]byte
	for {
		if _, err := io.ReadFull(c, in[:7]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(in[4:]))
		if n < 2 || n > 254 {
			return
		}
		if _, err := io.ReadFull(c, in[7:6+n]); err != nil {
			return
		}
		fc, count := in[7], int(binary.BigEndian.Uint16(in[10:]))
		size := 2 * count
		if fc == fcReadCoils || fc == fcReadDiscrete {
			size = (count + 7) / 8
		}
		copy(out[:4], in[:4])
		binary.BigEndian.PutUint16(out[4:], uint16(3+size))
		out[6], out[7], out[8] = in[6], fc, byte(size)
		for i := range size {
			if fc == fcReadCoils || fc == fcReadDiscrete {
				out[9+i] = 0x55
			} else {
				out[9+i] = 'A' + byte(i%26)
			}
		}
		if _, err := c.Write(out[:9+size]); err != nil {
			return
		}
	}
}

// countSink counts batches and keeps nothing.
type countSink struct{ batches, bad atomic.Int64 }

func (s *countSink) Samples(batch []drivers.Sample) {
	s.batches.Add(1)
	for i := range batch {
		if batch[i].Quality != drivers.Good {
			s.bad.Add(1)
		}
	}
}
func (s *countSink) DeviceState(string, bool, error) {}

// mixedTags returns n tags of every kind the driver decodes, ten at a time: uint16, int16,
// int32 CDAB, float32, float64, a scaled uint16, a bit in a register, a string of 8
// characters, a coil and a discrete input.
func mixedTags(n int) []TagOptions {
	var tags []TagOptions
	reg, bit := 0, 0
	add := func(name, table string, at int, typ, order string, length int) {
		tags = append(tags, TagOptions{Name: name, Address: table + ":" + strconv.Itoa(at), Type: typ, ByteOrder: order, Length: length})
	}
	for i := 0; len(tags) < n; i++ {
		p := "t" + strconv.Itoa(i) + "/"
		add(p+"u16", "hr", reg, "uint16", "", 0)
		add(p+"i16", "hr", reg+1, "int16", "", 0)
		add(p+"i32", "hr", reg+2, "int32", "CDAB", 0)
		add(p+"f32", "hr", reg+4, "float32", "", 0)
		add(p+"f64", "hr", reg+6, "float64", "", 0)
		add(p+"scaled", "hr", reg+10, "uint16", "", 0)
		tags[len(tags)-1].Scale = f64(0.1)
		tags = append(tags, TagOptions{Name: p + "bit", Address: "hr:" + strconv.Itoa(reg+11) + ".3"})
		add(p+"str", "hr", reg+12, "string", "", 4)
		add(p+"coil", "co", bit, "", "", 0)
		add(p+"di", "di", bit, "", "", 0)
		reg, bit = reg+16, bit+1
	}
	return tags[:n]
}

// pollDevice builds a driver of one device with the tags against the zero peer and returns
// its endpoint and device, for polls driven from the caller's goroutine.
func pollDevice(t testing.TB, tags []TagOptions) (*endpoint, *device) {
	t.Helper()
	peer := newZeroPeer(t)
	o := tcpOptions("plc", peer.addr, 1, tags...)
	d, err := New(Options{Devices: []DeviceOptions{o}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d.endpoints[0], d.devices[0]
}

// BenchmarkPollTags polls one device of 10, 200 and 1000 tags of mixed kinds whose values do
// not change, over loopback, against a peer that allocates nothing: allocs/op must not grow
// with the tags, and B/op only by the batch slice the sink keeps.
func BenchmarkPollTags(b *testing.B) {
	for _, n := range []int{10, 200, 1000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			e, d := pollDevice(b, mixedTags(n))
			sink := &countSink{}
			ctx := context.Background()
			e.poll(ctx, d, sink) // connects and plans
			if sink.bad.Load() != 0 {
				b.Fatalf("%d bad samples", sink.bad.Load())
			}
			b.ReportAllocs()
			for b.Loop() {
				e.poll(ctx, d, sink)
			}
			b.StopTimer()
			if sink.bad.Load() != 0 {
				b.Fatalf("%d bad samples", sink.bad.Load())
			}
			b.ReportMetric(float64(len(d.plan())), "requests/op")
		})
	}
}

// TestPollAllocations: a poll of unchanged values allocates its batch slice and nothing else,
// whatever the number of tags.
func TestPollAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("measures allocations")
	}
	for _, n := range []int{10, 1000} {
		e, d := pollDevice(t, mixedTags(n))
		sink := &countSink{}
		ctx := context.Background()
		e.poll(ctx, d, sink)
		// AllocsPerRun divides whole numbers: up to 99 allocations by goroutines other tests
		// left behind do not count against the 100 polls.
		allocs := testing.AllocsPerRun(100, func() { e.poll(ctx, d, sink) })
		if sink.bad.Load() != 0 {
			t.Fatalf("%d tags: %d bad samples", n, sink.bad.Load())
		}
		if allocs > 1 {
			t.Errorf("%d tags: %v allocations per poll, want 1 (the batch)", n, allocs)
		}
	}
}

// A string tag's reused last string never hides a change, in either byte order, and an
// invalid one stays sanitised when it repeats.
func TestDecodeStringReuse(t *testing.T) {
	for _, order := range []byteOrder{orderABCD, orderBADC} {
		tg := &tag{x: &tagExtra{}, kind: kString, order: order, size: 2, bit: -1}
		wire := func(s string) []byte {
			b := []byte(s)
			if order.byteSwap() {
				for i := 0; i+1 < len(b); i += 2 {
					b[i], b[i+1] = b[i+1], b[i]
				}
			}
			return b
		}
		for _, c := range []struct{ in, want string }{
			{"AB\x00\x00", "AB"}, {"AB  ", "AB"}, {"CD\x00\x00", "CD"}, {"AB\x00\x00", "AB"},
			{"A\xffB\x00", "A\uFFFDB"}, {"A\xffB\x00", "A\uFFFDB"}, {"\x00\x00\x00\x00", ""},
		} {
			if got := decodeRegisters(tg, wire(c.in)).Str(); got != c.want {
				t.Errorf("%v: %q decodes to %q, want %q", order, c.in, got, c.want)
			}
		}
	}
}
