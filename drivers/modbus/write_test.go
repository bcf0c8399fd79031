package modbus

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/wellgate/wellgate/drivers"
)

// TestWriteRoundTrip writes every numeric layout case in every byte order to a writable
// holding register tag and checks the registers on the server and the value read back.
func TestWriteRoundTrip(t *testing.T) {
	srv := newTestServer(t, 1)
	type wcase struct {
		name string
		at   int
		c    layoutCase
		o    string
	}
	var cases []wcase
	var tags []TagOptions
	at := 0
	for _, o := range []string{"ABCD", "CDAB", "BADC", "DCBA"} {
		for i, c := range layoutCases() {
			if c.typ == "string" {
				continue
			}
			name := fmt.Sprintf("%s/%d-%s", o, i, c.typ)
			tags = append(tags, TagOptions{Name: name, Address: fmt.Sprintf("hr:%d", at), Type: c.typ,
				ByteOrder: o, Scale: c.scale, Offset: c.offset, Writable: true})
			cases = append(cases, wcase{name, at, c, o})
			at += len(c.be) / 2
		}
	}
	d, sink := startDriver(t, Options{Devices: []DeviceOptions{tcpDevice("plc", srv, 1, tags...)}})
	eventually(t, 5*time.Second, "up", func() bool { return sink.lastState("plc") == 1 })
	for _, wc := range cases {
		got, err := d.Write(t.Context(), "plc", wc.name, wc.c.want)
		f := wc.c.want.Float64()
		if wc.c.want.Type().IsFloat() && (math.IsNaN(f) || math.IsInf(f, 0)) {
			if !errors.Is(err, drivers.ErrOutOfRange) {
				t.Errorf("%s: writing %v: %v, want ErrOutOfRange", wc.name, wc.c.want, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: write %v: %v", wc.name, wc.c.want, err)
			continue
		}
		if !got.Equal(wc.c.want) {
			t.Errorf("%s: read back %v, want %v", wc.name, got, wc.c.want)
		}
		var regs []uint16
		srv.with(1, func(b *bank) { regs = slices.Clone(b.holding[wc.at : wc.at+len(wc.c.be)/2]) })
		if want := wc.c.wire(wc.o); !slices.Equal(regs, want) {
			t.Errorf("%s: registers %04x, want %04x", wc.name, regs, want)
		}
	}
}

func TestWriteKinds(t *testing.T) {
	srv := newTestServer(t, 1)
	srv.with(1, func(b *bank) { b.holding[100] = 0x00F0 })
	tags := []TagOptions{
		{Name: "coil", Address: "00010", Writable: true},
		{Name: "bit0", Address: "40101.0", Writable: true},
		{Name: "bit4", Address: "hr:100.4", Writable: true},
		{Name: "name", Address: "hr:200", Type: "string", Length: 3, Writable: true},
		{Name: "swapped", Address: "hr:210", Type: "string", Length: 2, ByteOrder: "BADC", Writable: true},
	}
	d, sink := startDriver(t, Options{Devices: []DeviceOptions{tcpDevice("plc", srv, 1, tags...)}})
	eventually(t, 5*time.Second, "up", func() bool { return sink.lastState("plc") == 1 })
	write := func(tag string, v drivers.Value, want drivers.Value) {
		t.Helper()
		got, err := d.Write(t.Context(), "plc", tag, v)
		if err != nil || !got.Equal(want) {
			t.Fatalf("write %s = %v: got %v, %v; want %v", tag, v, got, err, want)
		}
	}
	reg := func(i int) (v uint16) {
		srv.with(1, func(b *bank) { v = b.holding[i] })
		return v
	}
	write("coil", drivers.BoolValue(true), drivers.BoolValue(true))
	srv.with(1, func(b *bank) {
		if !b.coils[9] {
			t.Error("coil not set")
		}
	})
	write("coil", drivers.IntValue(drivers.Int32, 0), drivers.BoolValue(false))
	write("bit0", drivers.BoolValue(true), drivers.BoolValue(true))
	if r := reg(100); r != 0x00F1 {
		t.Errorf("after setting bit 0: %#04x, want 0x00f1", r)
	}
	write("bit4", drivers.BoolValue(false), drivers.BoolValue(false))
	if r := reg(100); r != 0x00E1 {
		t.Errorf("after clearing bit 4: %#04x, want 0x00e1", r)
	}
	write("name", drivers.StringValue("WELL1"), drivers.StringValue("WELL1"))
	if r := []uint16{reg(200), reg(201), reg(202)}; !slices.Equal(r, []uint16{0x5745, 0x4C4C, 0x3100}) {
		t.Errorf("string registers %04x", r)
	}
	write("swapped", drivers.StringValue("abc"), drivers.StringValue("abc"))
	if r := []uint16{reg(210), reg(211)}; !slices.Equal(r, []uint16{0x6261, 0x0063}) {
		t.Errorf("swapped string registers %04x", r)
	}
}

// TestWriteRefused: writes to tags that are not writable, and values out of range, are
// refused before anything reaches the device.
func TestWriteRefused(t *testing.T) {
	srv := newTestServer(t, 1)
	tags := []TagOptions{
		{Name: "ro", Address: "40001"},
		{Name: "u16", Address: "40002", Writable: true},
		{Name: "i16", Address: "40003", Type: "int16", Writable: true},
		{Name: "choke", Address: "40004", Writable: true, Min: f64(0), Max: f64(100)},
		{Name: "f32", Address: "40005", Type: "float32", Writable: true},
		{Name: "bool", Address: "00001", Writable: true},
		{Name: "str", Address: "40010", Type: "string", Length: 2, Writable: true},
		{Name: "scaled", Address: "40020", Type: "int16", Scale: f64(0.1), Writable: true},
		{Name: "u64", Address: "40030", Type: "uint64", Writable: true},
	}
	srv.with(1, func(b *bank) {
		for i := range 40 {
			b.holding[i] = 0x5A5A
		}
	})
	d, sink := startDriver(t, Options{Devices: []DeviceOptions{tcpDevice("plc", srv, 1, tags...)}})
	eventually(t, 5*time.Second, "up", func() bool { return sink.lastState("plc") == 1 })
	cases := []struct {
		tag  string
		v    drivers.Value
		want error
	}{
		{"ro", drivers.UintValue(drivers.UInt16, 1), drivers.ErrNotWritable},
		{"u16", drivers.IntValue(drivers.Int64, 70000), drivers.ErrOutOfRange},
		{"u16", drivers.IntValue(drivers.Int32, -1), drivers.ErrOutOfRange},
		{"u16", drivers.DoubleValue(2.5), drivers.ErrOutOfRange},
		{"i16", drivers.IntValue(drivers.Int32, -40000), drivers.ErrOutOfRange},
		{"choke", drivers.DoubleValue(100.5), drivers.ErrOutOfRange},
		{"choke", drivers.IntValue(drivers.Int16, -1), drivers.ErrOutOfRange},
		{"f32", drivers.DoubleValue(1e39), drivers.ErrOutOfRange},
		{"f32", drivers.DoubleValue(math.NaN()), drivers.ErrOutOfRange},
		{"bool", drivers.IntValue(drivers.Int32, 2), drivers.ErrOutOfRange},
		{"str", drivers.StringValue("too long"), drivers.ErrOutOfRange},
		{"str", drivers.IntValue(drivers.Int32, 2), drivers.ErrOutOfRange},
		{"scaled", drivers.DoubleValue(3276.8), drivers.ErrOutOfRange},
		{"u64", drivers.IntValue(drivers.Int64, -1), drivers.ErrOutOfRange},
		{"u16", drivers.Null(drivers.UInt16), drivers.ErrOutOfRange},
		{"nosuch", drivers.BoolValue(true), drivers.ErrUnknownTag},
	}
	for _, c := range cases {
		if _, err := d.Write(t.Context(), "plc", c.tag, c.v); !errors.Is(err, c.want) {
			t.Errorf("write %s = %v: %v, want %v", c.tag, c.v, err, c.want)
		}
	}
	if _, err := d.Write(t.Context(), "nodev", "x", drivers.BoolValue(true)); !errors.Is(err, drivers.ErrUnknownTag) {
		t.Errorf("unknown device: %v", err)
	}
	srv.with(1, func(b *bank) {
		for i := range 40 {
			if b.holding[i] != 0x5A5A {
				t.Errorf("register %d changed to %#04x", i, b.holding[i])
			}
		}
		if b.coils[0] {
			t.Error("coil changed")
		}
	})
	// A value just inside the range is written.
	if v, err := d.Write(t.Context(), "plc", "scaled", drivers.DoubleValue(-3276.8)); err != nil || v.Float64() != -32768*0.1 {
		t.Errorf("scaled write at the edge: %v, %v", v, err)
	}
}
