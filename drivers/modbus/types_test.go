package modbus

import (
	"encoding/binary"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/wellgate/wellgate/drivers"
)

// layoutCase is one value in its canonical big-endian bytes and the value the driver must give.
type layoutCase struct {
	typ    string
	be     []byte // the value, most significant byte first (A B C D …)
	want   drivers.Value
	length int      // strings
	scale  *float64 // scaled integers
	offset *float64
}

// wirePositions says, per order and value size, which canonical byte travels at each wire
// position: written out by hand from the package documentation, independent of the decoder.
var wirePositions = map[string]map[int]string{
	"ABCD": {2: "AB", 4: "ABCD", 8: "ABCDEFGH"},
	"CDAB": {2: "AB", 4: "CDAB", 8: "GHEFCDAB"},
	"BADC": {2: "BA", 4: "BADC", 8: "BADCFEHG"},
	"DCBA": {2: "BA", 4: "DCBA", 8: "HGFEDCBA"},
}

// wire returns the registers that carry c in byte order o.
func (c layoutCase) wire(o string) []uint16 {
	b := c.be
	if c.typ != "string" {
		pos := wirePositions[o][len(b)]
		w := make([]byte, len(b))
		for i := range w {
			w[i] = b[pos[i]-'A']
		}
		b = w
	} else if o == "BADC" || o == "DCBA" { // strings: low byte first
		b = append([]byte(nil), b...)
		for i := 0; i+1 < len(b); i += 2 {
			b[i], b[i+1] = b[i+1], b[i]
		}
	}
	regs := make([]uint16, len(b)/2)
	for i := range regs {
		regs[i] = binary.BigEndian.Uint16(b[2*i:])
	}
	return regs
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func layoutCases() []layoutCase {
	i16 := func(v int16) layoutCase {
		return layoutCase{"int16", be16(uint16(v)), drivers.IntValue(drivers.Int16, int64(v)), 0, nil, nil}
	}
	u16 := func(v uint16) layoutCase {
		return layoutCase{"uint16", be16(v), drivers.UintValue(drivers.UInt16, uint64(v)), 0, nil, nil}
	}
	i32 := func(v int32) layoutCase {
		return layoutCase{"int32", be32(uint32(v)), drivers.IntValue(drivers.Int32, int64(v)), 0, nil, nil}
	}
	u32 := func(v uint32) layoutCase {
		return layoutCase{"uint32", be32(v), drivers.UintValue(drivers.UInt32, uint64(v)), 0, nil, nil}
	}
	i64 := func(v int64) layoutCase {
		return layoutCase{"int64", be64(uint64(v)), drivers.IntValue(drivers.Int64, v), 0, nil, nil}
	}
	u64 := func(v uint64) layoutCase {
		return layoutCase{"uint64", be64(v), drivers.UintValue(drivers.UInt64, v), 0, nil, nil}
	}
	f32 := func(bits uint32) layoutCase {
		return layoutCase{"float32", be32(bits), drivers.FloatValue(math.Float32frombits(bits)), 0, nil, nil}
	}
	f64 := func(bits uint64) layoutCase {
		return layoutCase{"float64", be64(bits), drivers.DoubleValue(math.Float64frombits(bits)), 0, nil, nil}
	}
	str := func(regs int, raw, want string) layoutCase {
		b := make([]byte, 2*regs)
		copy(b, raw)
		return layoutCase{"string", b, drivers.StringValue(want), regs, nil, nil}
	}
	scaled := func(typ string, be []byte, raw float64, scale, offset float64) layoutCase {
		return layoutCase{typ, be, drivers.DoubleValue(raw*scale + offset), 0, &scale, &offset}
	}
	return []layoutCase{
		i16(-1), i16(math.MinInt16), i16(math.MaxInt16), i16(0x1234),
		u16(math.MaxUint16), u16(0xABCD), u16(0),
		i32(-2), i32(math.MinInt32), i32(math.MaxInt32), i32(0x12345678),
		u32(math.MaxUint32), u32(0x89ABCDEF),
		i64(math.MinInt64), i64(math.MaxInt64), i64(-1), i64(0x0123456789ABCDEF),
		u64(math.MaxUint64), u64(0xFEDCBA9876543210),
		f32(math.Float32bits(-1.5)), f32(0x7FC00000), f32(0x7F800000), f32(0xFF800000),
		f32(math.Float32bits(math.MaxFloat32)), f32(1), f32(0x3F800000),
		f64(0x7FF8000000000001), f64(0xFFF0000000000000), f64(math.Float64bits(math.MaxFloat64)),
		f64(0x8000000000000000), f64(math.Float64bits(1)), f64(math.Float64bits(-123456.789)),
		str(2, "ABC", "ABC"), str(3, "WELL1", "WELL1"), str(2, "Hi  ", "Hi"), str(4, "Pad 7\x00\x00 ", "Pad 7"),
		str(1, "\xff\xfe", "\uFFFD") /* a run of invalid bytes becomes one U+FFFD */, str(2, "", ""),
		scaled("int16", be16(0xFF9C), -100, 0.1, 5), scaled("uint32", be32(4000000000), 4e9, 0.001, -40),
		scaled("float32", be32(math.Float32bits(2.5)), 2.5, 4, 1), scaled("int64", be64(1<<62), 1<<62, 2, 0),
	}
}

// TestLayouts reads every type in every byte order from both register tables of a real
// Modbus TCP server, merged into as few reads as the planner makes, and checks each value
// exactly. Half the tags take the device's byte order, half override it.
func TestLayouts(t *testing.T) {
	srv := newTestServer(t, 1)
	var tags []TagOptions
	want := map[string]drivers.Value{}
	at := 0
	for _, tb := range []string{"hr", "ir"} {
		for _, o := range []string{"ABCD", "CDAB", "BADC", "DCBA"} {
			for i, c := range layoutCases() {
				regs := c.wire(o)
				srv.with(1, func(b *bank) {
					if tb == "hr" {
						copy(b.holding[at:], regs)
					} else {
						copy(b.input[at:], regs)
					}
				})
				name := fmt.Sprintf("%s/%s/%d-%s", tb, o, i, c.typ)
				ct := TagOptions{Name: name, Address: fmt.Sprintf("%s:%d", tb, at), Type: c.typ,
					Length: c.length, Scale: c.scale, Offset: c.offset}
				if o != "DCBA" || i%2 == 0 { // odd DCBA cases take it from the device
					ct.ByteOrder = o
				}
				tags = append(tags, ct)
				want[name] = c.want
				at += len(regs)
			}
		}
	}
	tags = append(tags, bitTags(srv, want)...)
	dev := tcpDevice("plc", srv, 1, tags...)
	dev.ByteOrder = "DCBA"
	_, sink := startDriver(t, Options{Devices: []DeviceOptions{dev}})
	eventually(t, 10*time.Second, "device up", func() bool { return sink.lastState("plc") == 1 })
	for name, w := range want {
		s, ok := sink.sample("plc", name)
		switch {
		case !ok:
			t.Errorf("%s: no sample", name)
		case s.Quality != drivers.Good:
			t.Errorf("%s: quality %v", name, s.Quality)
		case !s.Value.Equal(w):
			t.Errorf("%s = %v (%v %#x), want %v (%v %#x)", name, s.Value, s.Value.Type(), s.Value.Uint(), w, w.Type(), w.Uint())
		}
	}
}

// bitTags adds coils, discrete inputs and bits in registers to the server and returns tags.
func bitTags(srv *testServer, want map[string]drivers.Value) []TagOptions {
	srv.with(1, func(b *bank) {
		b.coils[0], b.coils[7], b.coils[8], b.coils[1999] = true, true, false, true
		b.discrete[3], b.discrete[100] = true, true
		b.holding[5000], b.input[5000] = 0x8001, 0x0100
	})
	var tags []TagOptions
	add := func(name, addr string, v bool) {
		tags = append(tags, TagOptions{Name: name, Address: addr})
		want[name] = drivers.BoolValue(v)
	}
	add("c0", "00001", true)
	add("c7", "00008", true)
	add("c8", "co:8", false)
	add("c1999", "co:1999", true)
	add("d3", "di:3", true)
	add("d4", "di:4", false)
	add("d100", "100101", true)
	add("hr.0", "hr:5000.0", true)
	add("hr.1", "hr:5000.1", false)
	add("hr.15", "hr:5000.15", true)
	add("ir.8", "ir:5000.8", true)
	add("ir.0", "ir:5000.0", false)
	return tags
}
