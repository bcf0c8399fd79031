package modbus

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wellgate/wellgate/config"
)

// loadText writes text to a file and loads it with the registered drivers (this package's).
func loadText(t *testing.T, text string) (*config.Config, string, error) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "site.toml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(file)
	return c, file, err
}

// tagCase is one tag of TestValidationLines: its keys (TOML values as written) and the problem
// expected, at the line of wantKey ("" for the tag's header).
type tagCase struct {
	name    string
	keys    [][2]string
	wantKey string
	want    string
}

// TestValidationLines checks that loading reports every problem of the Modbus part at once,
// with file, line, device and tag, and does no I/O (the addresses point nowhere). Disabled
// devices are checked too.
func TestValidationLines(t *testing.T) {
	cases := []tagCase{
		{"ok", [][2]string{{"address", `"40001"`}, {"type", `"float32"`}}, "", ""},
		{"badaddr", [][2]string{{"address", `"50001"`}}, "address", `address "50001"`},
		{"badtype", [][2]string{{"address", `"40001"`}, {"type", `"float16"`}}, "", `type "float16"`},
		{"coilint", [][2]string{{"address", `"00001"`}, {"type", `"int16"`}}, "", "coils hold bits"},
		{"bitint", [][2]string{{"address", `"40001.2"`}, {"type", `"int32"`}}, "", "a bit in a register is a bool"},
		{"roinput", [][2]string{{"address", `"30001"`}, {"writable", "true"}}, "", "input registers cannot be written"},
		{"strnolen", [][2]string{{"address", `"40010"`}, {"type", `"string"`}}, "", "a string needs length"},
		{"lenint", [][2]string{{"address", `"40010"`}, {"type", `"int16"`}, {"length", "2"}}, "", "length applies to strings only"},
		{"scalestr", [][2]string{{"address", `"40010"`}, {"type", `"string"`}, {"length", "2"}, {"scale", "2"}}, "", "scale and offset apply to numbers"},
		{"zero scale", [][2]string{{"address", `"40010"`}, {"type", `"int16"`}, {"scale", "0"}}, "scale", "scale 0"},
		{"regbool", [][2]string{{"address", `"40010"`}, {"type", `"bool"`}}, "", `a bool in holding registers needs a bit index such as "400010.0"`},
		{"toolong", [][2]string{{"address", `"40010"`}, {"type", `"string"`}, {"length", "126"}}, "", "126 registers do not fit one read"},
		{"pastend", [][2]string{{"address", `"465536"`}, {"type", `"uint32"`}}, "", "2 registers from offset 65535 run past the end"},
		{"badorder", [][2]string{{"address", `"40001"`}, {"type", `"int32"`}, {"byte_order", `"ABDC"`}}, "byte_order", `byte_order "ABDC"`},
	}
	var b strings.Builder
	line := 0
	w := func(s string) int { // writes lines, returns the line of the first
		b.WriteString(s + "\n")
		line += strings.Count(s, "\n") + 1
		return line - strings.Count(s, "\n")
	}
	w("[sparkplug]\ngroup_id = \"G\"\nedge_node_id = \"E\"")
	w(`[[device]]`)
	w(`name = "plc"`)
	w(`driver = "modbus-tcp"`)
	w(`address = "192.0.2.1:502"`)
	var want []string
	for _, c := range cases {
		at := w("[[device.tag]]")
		w(fmt.Sprintf("name = %q", c.name))
		for _, kv := range c.keys {
			if l := w(kv[0] + " = " + kv[1]); kv[0] == c.wantKey {
				at = l
			}
		}
		if c.want != "" {
			want = append(want, fmt.Sprintf(`:%d: device "plc": tag %q: %s`, at, c.name, c.want))
		}
	}
	rtu := w("[[device]]\nname = \"rtu\"\ndriver = \"modbus-rtu\"\nport = \"/dev/nonexistent\"")
	unit := w("unit_id = 0")
	w("[[device]]\nname = \"off\"\ndriver = \"modbus-tcp\"\ndisabled = true\naddress = \"192.0.2.2\"")
	w("[[device.tag]]\nname = \"ignored\"")
	addr := w(`address = "nonsense"`)
	want = append(want,
		fmt.Sprintf(`:%d: device "rtu": unit_id must be from 1 to 247 for modbus-rtu, not 0`, unit),
		fmt.Sprintf(`:%d: device "rtu": parity is required for modbus-rtu: N, E or O`, rtu),
		fmt.Sprintf(`:%d: device "off": tag "ignored": address "nonsense"`, addr))

	_, file, err := loadText(t, b.String())
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Load: %v, want config.Errors", err)
	}
	text := err.Error()
	for _, s := range want {
		if !strings.Contains(text, file+s) {
			t.Errorf("missing %q in:\n%s", file+s, text)
		}
	}
	if strings.Contains(text, `"ok"`) {
		t.Errorf("valid tag reported:\n%s", text)
	}
	if len(errs) != 16 {
		t.Errorf("%d errors, want 16:\n%s", len(errs), text)
	}
}

// TestNewRefuses: New applies the same rules to options made in code, without lines.
func TestNewRefuses(t *testing.T) {
	dev := tcpOptions("plc", "192.0.2.1", 248, TagOptions{Name: "badaddr", Address: "50001"},
		TagOptions{Name: "badorder", Address: "40001", Type: "int32", ByteOrder: "ABDC"})
	rtu := tcpOptions("rtu", "", 0)
	rtu.Serial = &SerialOptions{Port: "/dev/nonexistent", Baud: 9600, DataBits: 8, StopBits: 1}
	_, err := New(Options{Devices: []DeviceOptions{dev, rtu}}, testLogger())
	if err == nil {
		t.Fatal("New accepted bad options")
	}
	for _, want := range []string{
		`device "plc": unit_id must be from 0 to 247, not 248`,
		`device "plc": tag "badaddr": address "50001"`,
		`device "plc": tag "badorder": byte_order "ABDC"`,
		`device "rtu": parity is required`,
		`device "rtu": unit_id must be from 1 to 247 for modbus-rtu, not 0`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

// TestLoadDefaults checks the defaults of both drivers' keys and the options a loaded file
// builds the driver from.
func TestLoadDefaults(t *testing.T) {
	c, _, err := loadText(t, `
[sparkplug]
group_id = "G"
edge_node_id = "E"
[[device]]
name = "TCP"
driver = "modbus-tcp"
address = "plc.local"
[[device.tag]]
name = "A/B"
address = 40001
[[device]]
name = "RTU"
driver = "modbus-rtu"
port = "/dev/ttyS0"
parity = "e"
unit_id = 3
`)
	if err != nil {
		t.Fatal(err)
	}
	tcp, _ := deviceOptions(&c.Devices[0])
	want := tcpOptions("TCP", "plc.local", 1, TagOptions{Name: "A/B", Address: "40001"})
	if !reflect.DeepEqual(tcp, want) {
		t.Errorf("tcp\n got %+v\nwant %+v", tcp, want)
	}
	rtu, _ := deviceOptions(&c.Devices[1])
	want = tcpOptions("RTU", "", 3)
	want.Serial, want.Tags = &SerialOptions{Port: "/dev/ttyS0", Baud: 9600, DataBits: 8, Parity: "e", StopBits: 1}, nil
	if !reflect.DeepEqual(rtu, want) {
		t.Errorf("rtu\n got %+v\nwant %+v", rtu, want)
	}
	d, err := build(c.Enabled(NameTCP), testLogger())
	if err != nil {
		t.Fatal(err)
	}
	if got := d.(*Driver).devices[0]; got.addr != "plc.local:502" || got.order != orderABCD {
		t.Errorf("built device: address %q, order %v", got.addr, got.order)
	}
	if d, err := build(c.Enabled(NameRTU), testLogger()); err != nil || d.(*Driver).devices[0].serial.Parity != "E" {
		t.Errorf("rtu: %v, parity not made upper case", err)
	}
}

func TestLoadExplicitValues(t *testing.T) {
	c, _, err := loadText(t, `
[sparkplug]
group_id = "G"
edge_node_id = "E"
[[device]]
name = "TCP"
driver = "modbus-tcp"
address = "[fe80::1]"
unit_id = 0
disabled = true
poll_interval = "250ms"
poll_schedule = "start"
timeout = "2s"
byte_order = "cdab"
max_registers = 60
max_bits = 16
max_gap = 4
zero_based = true
write_single_register = "fc16"
write_coil = "fc15"
max_backoff = "3s"
tag = [
  { name = "T", address = "hr:0", type = "float32", byte_order = "dcba", length = 0, scale = 2, offset = -1.5,
    units = "psi", description = "d", writable = true, min = 0, max = 10.5, deadband = 1, deadband_percent = 2.5,
    max_interval = "1m" },
]
`)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := deviceOptions(&c.Devices[0])
	want := DeviceOptions{Name: "TCP", Address: "[fe80::1]", UnitID: 0, PollInterval: 250 * time.Millisecond,
		PollSchedule: "start", Timeout: 2 * time.Second, ByteOrder: "cdab", MaxRegisters: 60, MaxBits: 16, MaxGap: 4,
		ZeroBased: true, WriteSingleRegister: "fc16", WriteCoil: "fc15", MaxBackoff: 3 * time.Second,
		Tags: []TagOptions{{Name: "T", Address: "hr:0", Type: "float32", ByteOrder: "dcba", Scale: f64(2), Offset: f64(-1.5),
			Units: "psi", Description: "d", Writable: true, Min: f64(0), Max: f64(10.5), Deadband: 1,
			DeadbandPercent: 2.5, MaxInterval: time.Minute}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("\n got %+v\nwant %+v", got, want)
	}
	if c.Devices[0].Line != 5 || c.Devices[0].Tags[0].Line != 22 { // the "tag = [" line
		t.Errorf("lines %d, %d", c.Devices[0].Line, c.Devices[0].Tags[0].Line)
	}
	if len(c.Enabled(NameTCP)) != 0 {
		t.Error("a disabled device is to be built")
	}
}

func TestTagAddress(t *testing.T) {
	for in, want := range map[any]tagAddress{"hr:0": "hr:0", int64(40001): "40001"} {
		var a tagAddress
		if err := a.UnmarshalTOML(in); err != nil || a != want {
			t.Errorf("%v: got %q, %v", in, a, err)
		}
	}
	var a tagAddress
	if err := a.UnmarshalTOML(1.5); err == nil {
		t.Error("float address: no error")
	}
}
