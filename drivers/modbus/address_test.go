package modbus

import (
	"errors"
	"strings"
	"testing"

	"github.com/wellgate/wellgate/config"
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
		a, err := parseAddress(c.in)
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
		if a, err := parseAddress(bad); err == nil {
			t.Errorf("%q parsed as %+v, want an error", bad, a)
		}
	}
}

// TestNewValidation checks that New reports every problem at once, with file, line, device
// and tag, and does no I/O (the addresses point nowhere).
func TestNewValidation(t *testing.T) {
	tag := func(line int, name, addr, typ string, mod ...func(*config.Tag)) config.Tag {
		t := config.Tag{Name: name, Address: config.Address(addr), Type: typ, Line: line}
		for _, m := range mod {
			m(&t)
		}
		return t
	}
	writable := func(t *config.Tag) { t.Writable = true }
	length := func(n int) func(*config.Tag) { return func(t *config.Tag) { t.Length = n } }
	scale := func(s float64) func(*config.Tag) { return func(t *config.Tag) { t.Scale = &s } }
	cfg := &config.Config{File: "site.toml", Devices: []config.Device{{
		Name: "plc", Driver: config.DriverModbusTCP, Address: "192.0.2.1:502", UnitID: 1, Line: 10,
		Tags: []config.Tag{
			tag(11, "ok", "40001", "float32"),
			tag(12, "badaddr", "50001", ""),
			tag(13, "badtype", "40001", "float16"),
			tag(14, "coilint", "00001", "int16"),
			tag(15, "bitint", "40001.2", "int32"),
			tag(16, "roinput", "30001", "", writable),
			tag(17, "strnolen", "40010", "string"),
			tag(18, "lenint", "40010", "int16", length(2)),
			tag(19, "scalestr", "40010", "string", length(2), scale(2)),
			tag(20, "zero scale", "40010", "int16", scale(0)),
			tag(21, "regbool", "40010", "bool"),
			tag(22, "toolong", "40010", "string", length(126)),
			tag(23, "pastend", "465536", "uint32"),
			tag(24, "badorder", "40001", "int32", func(t *config.Tag) { t.ByteOrder = "ABDC" }),
		},
	}, {
		Name: "rtu", Driver: config.DriverModbusRTU, Port: "/dev/nonexistent", UnitID: 0, Line: 30,
	}, {
		Name: "off", Driver: config.DriverModbusTCP, Disabled: true, Line: 40,
		Tags: []config.Tag{tag(41, "ignored", "nonsense", "")},
	}}}
	_, err := New(cfg, testLogger())
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("New: %v, want config.Errors", err)
	}
	text := err.Error()
	for _, want := range []string{
		`site.toml:12: device "plc": tag "badaddr": address "50001"`,
		`site.toml:13: device "plc": tag "badtype": type "float16"`,
		`site.toml:14: device "plc": tag "coilint": coils hold bits`,
		`site.toml:15: device "plc": tag "bitint": a bit in a register is a bool`,
		`site.toml:16: device "plc": tag "roinput": input registers cannot be written`,
		`site.toml:17: device "plc": tag "strnolen": a string needs length`,
		`site.toml:18: device "plc": tag "lenint": length applies to strings only`,
		`site.toml:19: device "plc": tag "scalestr": scale and offset apply to numbers`,
		`site.toml:20: device "plc": tag "zero scale": scale 0`,
		`site.toml:21: device "plc": tag "regbool": a bool in holding registers needs a bit index such as "400010.0"`,
		`site.toml:22: device "plc": tag "toolong": 126 registers do not fit one read`,
		`site.toml:23: device "plc": tag "pastend": 2 registers from offset 65535 run past the end`,
		`site.toml:24: device "plc": tag "badorder": byte order "ABDC"`,
		`site.toml:30: device "rtu": unit_id 0 must be 1…247`,
		`site.toml:30: device "rtu": parity must be set`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in:\n%s", want, text)
		}
	}
	if strings.Contains(text, `"ok"`) || strings.Contains(text, "ignored") {
		t.Errorf("valid or disabled tags reported:\n%s", text)
	}
	if len(errs) != 15 {
		t.Errorf("%d errors, want 15:\n%s", len(errs), text)
	}
}

func TestDevicesTypes(t *testing.T) {
	s := func(v float64) *float64 { return &v }
	cfg := &config.Config{Devices: []config.Device{{
		Name: "plc", Driver: config.DriverModbusTCP, Address: "192.0.2.1", UnitID: 1,
		Tags: []config.Tag{
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
		},
	}}}
	d, err := New(cfg, testLogger())
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
