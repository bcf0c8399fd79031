package modbus

import (
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/wellgate/wellgate/config"
	"github.com/wellgate/wellgate/drivers"
)

// Defaults applied when a device leaves a key at its zero value.
const (
	defaultInterval     = time.Second
	defaultTimeout      = time.Second
	defaultMaxRegisters = 125  // the protocol's limit for a read
	defaultMaxBits      = 2000 // likewise for coils and discrete inputs
	defaultBaud         = 9600
	defaultTCPPort      = "502"
	maxWriteRegisters   = 123 // the protocol's limit for a write
)

// tag is one validated tag.
type tag struct {
	name     string
	index    int // position in device.tags and in a poll's samples
	table    table
	start    uint16 // zero-based offset of the first register or bit
	size     uint16 // registers (or bits) the tag occupies
	bit      int    // bit in register, -1 for none
	kind     kind
	order    byteOrder
	scaled   bool
	scale    float64
	offset   float64
	typ      drivers.Type // published type
	writable bool
	min, max *float64
	info     drivers.TagInfo

	// alone is set when the device refused a merged read and this tag alone was to blame.
	alone bool
}

// end is one past the last register or bit the tag occupies.
func (t *tag) end() int { return int(t.start) + int(t.size) }

// parseTag validates one tag's configuration. It returns every problem it finds.
func parseTag(cfg *config.Config, cd *config.Device, ct *config.Tag, devOrder byteOrder) (*tag, config.Errors) {
	var errs config.Errors
	bad := func(format string, args ...any) { errs = append(errs, cfg.TagError(cd, ct, format, args...)) }
	t := &tag{name: ct.Name, writable: ct.Writable, min: ct.Min, max: ct.Max, bit: -1}
	if ct.Name == "" {
		bad("tag has no name")
	}
	a, err := parseAddress(string(ct.Address))
	if err != nil {
		bad("%v", err)
		return nil, errs
	}
	t.table, t.start, t.bit = a.table, a.offset, a.bit
	if t.kind, err = tagKind(ct.Type, a); err != nil {
		bad("%v", err)
		return nil, errs
	}
	if t.order, err = parseOrder(ct.ByteOrder, devOrder); err != nil {
		bad("%v", err)
	}
	for _, msg := range t.layout(ct.Length, cd) {
		bad("%s", msg)
	}
	for _, msg := range t.scaling(ct) {
		bad("%s", msg)
	}
	if ct.Writable && !t.table.writable() {
		bad("%s cannot be written (only coils and holding registers can)", t.table)
	}
	if ct.Writable && t.kind == kString && t.size > maxWriteRegisters {
		bad("a writable string may have at most %d registers (one write request)", maxWriteRegisters)
	}
	if ct.Min != nil && ct.Max != nil && *ct.Min > *ct.Max {
		bad("min %g is greater than max %g", *ct.Min, *ct.Max)
	}
	t.info = drivers.TagInfo{
		Name: ct.Name, Type: t.typ, Units: ct.Units, Description: ct.Description, Writable: ct.Writable,
		Deadband: ct.Deadband, DeadbandPercent: ct.DeadbandPercent, MaxInterval: ct.MaxInterval.D(),
	}
	return t, errs
}

// tagKind resolves the tag's type, defaulting by table, and checks it fits the address.
func tagKind(s string, a address) (kind, error) {
	if s == "" {
		if a.table.isBit() || a.bit >= 0 {
			return kBool, nil
		}
		return kUint16, nil
	}
	k, ok := kindNames[strings.ToLower(s)]
	if !ok {
		return 0, fmt.Errorf("type %q is not one of bool, int16, uint16, int32, uint32, int64, uint64, float32, float64, string", s)
	}
	switch {
	case a.table.isBit() && k != kBool:
		return 0, fmt.Errorf("%s hold bits: type must be bool, not %s", a.table, k)
	case a.bit >= 0 && k != kBool:
		return 0, fmt.Errorf("a bit in a register is a bool, not %s", k)
	case !a.table.isBit() && a.bit < 0 && k == kBool:
		return 0, fmt.Errorf("a bool in %s needs a bit index such as %q", a.table, a.String()[:6]+".0")
	}
	return k, nil
}

// layout sets the tag's size and checks it against the device's read limits and the table.
func (t *tag) layout(length int, cd *config.Device) []string {
	var msgs []string
	switch {
	case t.kind == kString && length <= 0:
		msgs = append(msgs, "a string needs length = number of registers (two characters each)")
		length = 1
	case t.kind != kString && length != 0:
		msgs = append(msgs, fmt.Sprintf("length applies to strings only, not %s", t.kind))
	}
	n := t.kind.registers()
	if t.kind == kString {
		n = length
	}
	if t.table.isBit() || t.bit >= 0 {
		n = 1
	}
	limit := cd.MaxRegisters
	if limit <= 0 || limit > defaultMaxRegisters {
		limit = defaultMaxRegisters
	}
	if !t.table.isBit() && n > limit {
		msgs = append(msgs, fmt.Sprintf("%d registers do not fit one read (max_registers %d)", n, limit))
	}
	if int(t.start)+n > 65536 {
		msgs = append(msgs, fmt.Sprintf("%d registers from offset %d run past the end of the table", n, t.start))
		n = 65536 - int(t.start)
	}
	t.size = uint16(min(n, math.MaxUint16))
	return msgs
}

// scaling validates scale and offset and sets the published type.
func (t *tag) scaling(ct *config.Tag) []string {
	t.typ = t.kind.sparkplug()
	if ct.Scale == nil && ct.Offset == nil {
		return nil
	}
	if !t.kind.numeric() {
		return []string{fmt.Sprintf("scale and offset apply to numbers, not %s", t.kind)}
	}
	t.scaled, t.scale, t.offset, t.typ = true, 1, 0, drivers.Double
	if ct.Scale != nil {
		t.scale = *ct.Scale
	}
	if ct.Offset != nil {
		t.offset = *ct.Offset
	}
	if t.scale == 0 || math.IsNaN(t.scale) || math.IsInf(t.scale, 0) {
		return []string{fmt.Sprintf("scale %g must be a finite number other than 0", t.scale)}
	}
	if math.IsNaN(t.offset) || math.IsInf(t.offset, 0) {
		return []string{fmt.Sprintf("offset %g must be a finite number", t.offset)}
	}
	return nil
}

// tcpEndpoint normalises a Modbus TCP address to host:port.
func tcpEndpoint(addr string) (string, error) {
	if addr == "" {
		return "", fmt.Errorf("modbus-tcp needs address = \"host:port\"")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		if strings.Contains(err.Error(), "missing port") {
			return net.JoinHostPort(strings.Trim(addr, "[]"), defaultTCPPort), nil
		}
		return "", fmt.Errorf("address %q: %w", addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("address %q: port must be 1…65535", addr)
	}
	if host == "" {
		return "", fmt.Errorf("address %q has no host", addr)
	}
	return addr, nil
}
