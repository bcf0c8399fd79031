package modbus

import (
	"fmt"
	"testing"

	"github.com/wellgate/wellgate/drivers"
)

func TestParseAddress(t *testing.T) {
	cases := []struct {
		in     string
		table  table
		offset uint16
		bit    int
	}{
		{"40001", holdingRegisters, 0, -1},
		{"49999", holdingRegisters, 9998, -1},
		{"400001", holdingRegisters, 0, -1},
		{"465536", holdingRegisters, 65535, -1},
		{"30001", inputRegisters, 0, -1},
		{"300010", inputRegisters, 9, -1},
		{"10001", discreteInputs, 0, -1},
		{"100001", discreteInputs, 0, -1},
		{"00001", coils, 0, -1},
		{"000100", coils, 99, -1},
		{"hr:0", holdingRegisters, 0, -1},
		{"holding:65535", holdingRegisters, 65535, -1},
		{"ir:7", inputRegisters, 7, -1},
		{"input:7", inputRegisters, 7, -1},
		{"di:3", discreteInputs, 3, -1},
		{"discrete:3", discreteInputs, 3, -1},
		{"co:0", coils, 0, -1},
		{"coil:12", coils, 12, -1},
		{"HR:5", holdingRegisters, 5, -1},
		{"40001.3", holdingRegisters, 0, 3},
		{"hr:0.15", holdingRegisters, 0, 15},
		{"30002.0", inputRegisters, 1, 0},
	}
	for _, c := range cases {
		a, err := parseAddress(c.in, false)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if a.table != c.table || a.offset != c.offset || a.bit != c.bit {
			t.Errorf("%q = %v/%d/%d, want %v/%d/%d", c.in, a.table, a.offset, a.bit, c.table, c.offset, c.bit)
		}
	}
	for _, bad := range []string{"", "1", "40000", "400000", "465537", "20001", "50001", "4001", "4000001",
		"hr:", "hr:-1", "hr:65536", "xx:1", "40001.16", "40001.", "40001.-1", "00001.1", "co:1.0",
		"40001.03", "hr:+1", "4e001", " 40001"} {
		if a, err := parseAddress(bad, false); err == nil {
			t.Errorf("%q parsed as %+v, want an error", bad, a)
		}
	}
}

func TestDevicesTypes(t *testing.T) {
	s := func(v float64) *float64 { return &v }
	dev := tcpOptions("plc", "192.0.2.1", 1,
		[]TagOptions{
			{Name: "u16", Address: "40001"},
			{Name: "i16", Address: "40001", Type: "int16"},
			{Name: "u32", Address: "40001", Type: "uint32"},
			{Name: "i32", Address: "40001", Type: "int32"},
			{Name: "u64", Address: "40001", Type: "uint64"},
			{Name: "i64", Address: "40001", Type: "int64"},
			{Name: "f32", Address: "40001", Type: "float32", Units: "psi"},
			{Name: "f64", Address: "40001", Type: "float64"},
			{Name: "str", Address: "40001", Type: "string", Length: 3},
			{Name: "bit", Address: "40001.1"},
			{Name: "coil", Address: "00001", Writable: true},
			{Name: "di", Address: "10001"},
			{Name: "scaled", Address: "30001", Type: "int16", Scale: s(0.1)},
			{Name: "offset", Address: "30001", Type: "uint32", Offset: s(-40)},
			{Name: "f32scaled", Address: "30001", Type: "float32", Scale: s(2)},
		}...)
	d, err := New(Options{Devices: []DeviceOptions{dev}}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	want := []drivers.Type{drivers.UInt16, drivers.Int16, drivers.UInt32, drivers.Int32, drivers.UInt64,
		drivers.Int64, drivers.Float, drivers.Double, drivers.String, drivers.Boolean, drivers.Boolean,
		drivers.Boolean, drivers.Double, drivers.Double, drivers.Double}
	infos := d.Devices()
	if len(infos) != 1 || infos[0].Driver != "modbus-tcp" || len(infos[0].Tags) != len(want) {
		t.Fatalf("Devices() = %+v", infos)
	}
	for i, ti := range infos[0].Tags {
		if ti.Type != want[i] {
			t.Errorf("%s: type %v, want %v", ti.Name, ti.Type, want[i])
		}
	}
	if infos[0].Tags[6].Units != "psi" || !infos[0].Tags[10].Writable {
		t.Errorf("units or writable lost: %+v", infos[0].Tags)
	}
	if d.devices[0].addr != "192.0.2.1:502" {
		t.Errorf("address %q, want port 502 added", d.devices[0].addr)
	}
}

// String writes at least five digits after the table's, as "%c%05d" would, for every offset.
func TestAddressStringEveryOffset(t *testing.T) {
	for _, zero := range []bool{false, true} {
		for off := range 65536 {
			a := address{table: inputRegisters, offset: uint16(off), bit: off%17 - 1, zeroBased: zero}
			n := off + 1
			if zero {
				n--
			}
			want := fmt.Sprintf("3%05d", n)
			if a.bit >= 0 {
				want += fmt.Sprintf(".%d", a.bit)
			}
			if got := a.String(); got != want {
				t.Fatalf("offset %d (zero-based %v): %q, want %q", off, zero, got, want)
			}
		}
	}
}
