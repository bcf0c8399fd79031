package modbus

import (
	"testing"
	"unsafe"
)

// The page shows how each device is reached and where each tag's value comes from.
func TestDescribeEndpointAndAddress(t *testing.T) {
	tcp := &device{driver: NameTCP, addr: "10.0.0.5:502", unit: 1}
	if got := describeEndpoint(tcp); got != "10.0.0.5:502 unit 1" {
		t.Errorf("TCP endpoint = %q", got)
	}
	rtu := &device{driver: NameRTU, unit: 3, serial: SerialOptions{Port: "/dev/ttyUSB0", Baud: 9600, DataBits: 8, Parity: "E", StopBits: 1}}
	if got := describeEndpoint(rtu); got != "/dev/ttyUSB0 9600 8E1 unit 3" {
		t.Errorf("RTU endpoint = %q", got)
	}
	cases := []struct {
		tag  tag
		want string
	}{
		{tag{table: holdingRegisters, start: 10, size: 2, bit: -1, kind: kFloat32, order: orderCDAB}, "400011 (hr:10, 2 registers, float32 CDAB)"},
		{tag{table: inputRegisters, start: 0, size: 1, bit: -1, kind: kUint16}, "300001 (ir:0, 1 register, uint16)"},
		{tag{table: coils, start: 0, size: 1, bit: -1, kind: kBool}, "000001 (co:0, bool)"},
		{tag{table: holdingRegisters, start: 4, size: 1, bit: 3, kind: kBool}, "400005.3 (hr:4, bool)"},
	}
	for _, c := range cases {
		if got := describeAddress(tcp, &c.tag); got != c.want {
			t.Errorf("address = %q, want %q", got, c.want)
		}
	}
	zero := &device{zeroBased: true}
	if got := describeAddress(zero, &cases[1].tag); got != "300000 (ir:0, 1 register, uint16)" {
		t.Errorf("zero-based address = %q", got)
	}
}

// The driver describes each tag once: Devices hands out the same TagInfo slice at every call,
// with the Address built when the driver was, and a tag stays small (issue 14).
func TestTagInfoBuiltOnce(t *testing.T) {
	d, err := New(Options{Devices: []DeviceOptions{tcpOptions("plc", "127.0.0.1:502", 1,
		TagOptions{Name: "a", Address: "40001", Type: "float32", ByteOrder: "CDAB"},
		TagOptions{Name: "b", Address: "hr:4.3"},
		TagOptions{Name: "a", Address: "co:0"}, // the last "a" is the one written
		TagOptions{Name: "s", Address: "hr:10", Type: "string", Length: 2},
		TagOptions{Name: "k", Address: "hr:20", Scale: f64(0.1)},
		TagOptions{Name: "m", Address: "hr:21", Max: f64(5), Writable: true},
	)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	first, again := d.Devices()[0].Tags, d.Devices()[0].Tags
	if &first[0] != &again[0] || len(first) != 6 {
		t.Fatalf("Devices built the tags again (%d tags)", len(first))
	}
	dev := d.devices[0]
	for i, want := range []string{"400001 (hr:0, 2 registers, float32 CDAB)", "400005.3 (hr:4, bool)", "000001 (co:0, bool)",
		"400011 (hr:10, 2 registers, string)", "400021 (hr:20, 1 register, uint16)", "400022 (hr:21, 1 register, uint16)"} {
		if got := first[i].Address; got != want || describeAddress(dev, &dev.tags[i]) != want {
			t.Errorf("tag %d: address %q, want %q", i, got, want)
		}
		if dev.tags[i].info != &first[i] {
			t.Errorf("tag %d does not point to its description", i)
		}
		if hasExtra := dev.tags[i].x != nil; hasExtra != (i >= 3) {
			t.Errorf("tag %d: extra %v", i, hasExtra)
		}
	}
	for name, want := range map[string]int{"a": 2, "b": 1, "s": 3, "k": 4, "m": 5} {
		if got := dev.tag(name); got != &dev.tags[want] {
			t.Errorf("tag(%q) is not tag %d", name, want)
		}
	}
	if dev.tag("zz") != nil || dev.tag("") != nil {
		t.Error("tag found for an unknown name")
	}
	if size := unsafe.Sizeof(tag{}); size > 32 {
		t.Errorf("a tag takes %d bytes, more than 32", size)
	}
}
