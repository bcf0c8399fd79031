package modbus

import (
	"testing"
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
