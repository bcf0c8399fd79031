package config

import (
	"math"
	"slices"
	"strings"
	"unicode/utf8"
)

// Keys of a [[device]] table, and the drivers they apply to.
var (
	commonDeviceKeys = []string{"name", "driver", "disabled", "poll_interval", "timeout", "tag"}
	modbusKeys       = []string{"unit_id", "byte_order", "max_registers", "max_bits", "max_gap"}
	driverKeys       = map[string][]string{
		DriverModbusTCP: append([]string{"address"}, modbusKeys...),
		DriverModbusRTU: append([]string{"port", "baud", "data_bits", "parity", "stop_bits"}, modbusKeys...),
	}
	byteOrders = []string{"ABCD", "CDAB", "BADC", "DCBA"}
)

func (v *validator) allDevices() {
	seen := map[string]int{} // lower-cased name → index of the first device with it
	for i := range v.c.Devices {
		d := &v.c.Devices[i]
		p := path{"device", index(i)}
		if msg := checkID(d.Name); msg != "" {
			v.add(p.with("name"), d, nil, "device name %s", msg)
		} else if first, dup := seen[strings.ToLower(d.Name)]; dup {
			v.add(p.with("name"), d, nil, "duplicate device name (first at line %d; Ignition ignores case)", v.c.Devices[first].Line)
		} else {
			seen[strings.ToLower(d.Name)] = i
		}
		var m map[string]any
		if i < len(v.devices) {
			m = v.devices[i]
		}
		v.device(d, p, m)
		v.tags(d, p)
	}
}

// device checks one device's own keys; m is its table as written.
func (v *validator) device(d *Device, p path, m map[string]any) {
	if d.PollInterval <= 0 {
		v.add(p.with("poll_interval"), d, nil, "poll_interval must be greater than 0")
	}
	if d.Timeout <= 0 {
		v.add(p.with("timeout"), d, nil, "timeout must be greater than 0")
	}
	switch d.Driver {
	case DriverModbusTCP, DriverModbusRTU:
	case "":
		v.add(p.with("driver"), d, nil, "driver is required: modbus-tcp or modbus-rtu")
		return
	case DriverOPCUA:
		v.add(p.with("driver"), d, nil, "driver %q is not available yet", d.Driver)
		return
	default:
		v.add(p.with("driver"), d, nil, "unknown driver %q: want modbus-tcp or modbus-rtu", d.Driver)
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(commonDeviceKeys, k) && !slices.Contains(driverKeys[d.Driver], k) {
			v.add(p.with(k), d, nil, "key %q does not apply to driver %s", k, d.Driver)
		}
	}
	v.modbus(d, p)
	if d.Driver == DriverModbusTCP {
		v.modbusTCP(d, p)
	} else {
		_, hasUnit := m["unit_id"]
		v.modbusRTU(d, p, hasUnit)
	}
}

// modbus checks the keys Modbus TCP and RTU share.
func (v *validator) modbus(d *Device, p path) {
	if bo, ok := byteOrder(d.ByteOrder); ok {
		d.ByteOrder = bo
	} else {
		v.add(p.with("byte_order"), d, nil, "byte_order %q is not one of %s", d.ByteOrder, strings.Join(byteOrders, ", "))
	}
	if d.MaxRegisters < 1 || d.MaxRegisters > 125 {
		v.add(p.with("max_registers"), d, nil, "max_registers must be from 1 to 125, not %d", d.MaxRegisters)
	}
	if d.MaxBits < 1 || d.MaxBits > 2000 {
		v.add(p.with("max_bits"), d, nil, "max_bits must be from 1 to 2000, not %d", d.MaxBits)
	}
	if d.MaxGap < 0 {
		v.add(p.with("max_gap"), d, nil, "max_gap must not be negative")
	}
}

// byteOrder returns the canonical (upper-case) spelling of a byte order.
func byteOrder(s string) (string, bool) {
	s = strings.ToUpper(s)
	return s, slices.Contains(byteOrders, s)
}

func (v *validator) modbusTCP(d *Device, p path) {
	if d.Address == "" {
		v.add(p.with("address"), d, nil, "address is required for modbus-tcp (host or host:port)")
	} else if addr, msg := modbusTCPAddress(d.Address); msg != "" {
		v.add(p.with("address"), d, nil, "address %q: %s", d.Address, msg)
	} else {
		d.Address = addr
	}
	if d.UnitID < 0 || d.UnitID > 247 {
		v.add(p.with("unit_id"), d, nil, "unit_id must be from 0 to 247, not %d", d.UnitID)
	}
}

func (v *validator) modbusRTU(d *Device, p path, hasUnit bool) {
	if d.Port == "" {
		v.add(p.with("port"), d, nil, "port is required for modbus-rtu (a serial device such as \"/dev/ttyUSB0\")")
	}
	switch par := strings.ToUpper(d.Parity); {
	case d.Parity == "":
		v.add(p.with("parity"), d, nil, "parity is required for modbus-rtu: N, E or O")
	case par == "N" || par == "E" || par == "O":
		d.Parity = par
	default:
		v.add(p.with("parity"), d, nil, "parity %q is not one of N, E, O", d.Parity)
	}
	if d.Baud <= 0 {
		v.add(p.with("baud"), d, nil, "baud must be greater than 0")
	}
	if d.DataBits != 7 && d.DataBits != 8 {
		v.add(p.with("data_bits"), d, nil, "data_bits must be 7 or 8, not %d", d.DataBits)
	}
	if d.StopBits != 1 && d.StopBits != 2 {
		v.add(p.with("stop_bits"), d, nil, "stop_bits must be 1 or 2, not %d", d.StopBits)
	}
	if !hasUnit {
		v.add(p.with("unit_id"), d, nil, "unit_id is required for modbus-rtu: 1 to 247")
	} else if d.UnitID < 1 || d.UnitID > 247 {
		v.add(p.with("unit_id"), d, nil, "unit_id must be from 1 to 247 for modbus-rtu, not %d", d.UnitID)
	}
}

// tags checks the generic keys of a device's tags; addresses and types are the driver's.
func (v *validator) tags(d *Device, p path) {
	seen := map[string]int{}
	for j := range d.Tags {
		t := &d.Tags[j]
		tp := p.with("tag", index(j))
		if msg := checkTagName(t.Name); msg != "" {
			v.add(tp.with("name"), d, t, "tag name %s", msg)
		} else if first, dup := seen[strings.ToLower(t.Name)]; dup {
			v.add(tp.with("name"), d, t, "duplicate tag name in this device (first at line %d; Ignition ignores case)", d.Tags[first].Line)
		} else {
			seen[strings.ToLower(t.Name)] = j
		}
		if t.ByteOrder != "" {
			if bo, ok := byteOrder(t.ByteOrder); ok {
				t.ByteOrder = bo
			} else {
				v.add(tp.with("byte_order"), d, t, "byte_order %q is not one of %s", t.ByteOrder, strings.Join(byteOrders, ", "))
			}
		}
		v.tagNumbers(d, t, tp)
	}
}

func (v *validator) tagNumbers(d *Device, t *Tag, tp path) {
	if !(t.Deadband >= 0) { // also refuses NaN
		v.add(tp.with("deadband"), d, t, "deadband must be 0 or more, not %v", t.Deadband)
	}
	if !(t.DeadbandPercent >= 0) {
		v.add(tp.with("deadband_percent"), d, t, "deadband_percent must be 0 or more, not %v", t.DeadbandPercent)
	}
	if t.Length < 0 {
		v.add(tp.with("length"), d, t, "length must not be negative")
	}
	for _, f := range []struct {
		key string
		v   *float64
	}{{"scale", t.Scale}, {"offset", t.Offset}, {"min", t.Min}, {"max", t.Max}} {
		if f.v != nil && (math.IsNaN(*f.v) || math.IsInf(*f.v, 0)) {
			v.add(tp.with(f.key), d, t, "%s must be a finite number", f.key)
		}
	}
	if t.Min != nil && t.Max != nil && *t.Min > *t.Max {
		v.add(tp.with("min"), d, t, "min %v is greater than max %v", *t.Min, *t.Max)
	}
}

// checkTagName checks a tag (Sparkplug metric) name; it returns what is wrong, or "".
func checkTagName(name string) string {
	switch {
	case name == "":
		return "is required"
	case !utf8.ValidString(name):
		return "is not valid UTF-8"
	case strings.ContainsAny(name, "+#"):
		return "must not contain '+' or '#'"
	case strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/"):
		return "must not start or end with '/'"
	case strings.Contains(name, "//"):
		return "must not have an empty folder (\"//\")"
	}
	return ""
}
