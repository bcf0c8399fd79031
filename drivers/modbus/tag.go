package modbus

import (
	"fmt"
	"math"
	"strings"

	"github.com/wellgate/wellgate/drivers"
)

// The protocol's limits.
const (
	maxReadRegisters  = 125  // registers in one read
	maxReadBits       = 2000 // coils or discrete inputs in one read
	maxWriteRegisters = 123  // registers in one write
)

// problem is one thing wrong with a device's or a tag's options: the configuration key it is
// about ("" when it is about the table as a whole) and what is wrong. New reports problems
// as errors; the configuration's validation reports the same problems at the key's line.
type problem struct{ key, msg string }

// problems collects the problems of one device or tag.
type problems []problem

func (ps *problems) add(key, format string, args ...any) {
	*ps = append(*ps, problem{key: key, msg: fmt.Sprintf(format, args...)})
}

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

	// A string tag's last string, as read (trimmed) and as published (valid UTF-8), so that
	// an unchanged string is not allocated again. Owned by the endpoint's goroutine.
	lastRaw, lastStr string
}

// end is one past the last register or bit the tag occupies.
func (t *tag) end() int { return int(t.start) + int(t.size) }

// newTag checks one tag's options against its device (byte order, read limit) and returns
// the tag, or nil when its address or type leaves nothing to build; it returns every problem
// it finds. Problems of the tag's layout (type against address, length, size) are about the
// tag as a whole.
func newTag(o *TagOptions, dev *device) (*tag, problems) {
	var ps problems
	t := &tag{name: o.Name, writable: o.Writable, min: o.Min, max: o.Max, bit: -1}
	a, err := parseAddress(o.Address, dev.zeroBased)
	if err != nil {
		ps.add("address", "%v", err)
		return nil, ps
	}
	t.table, t.start, t.bit = a.table, a.offset, a.bit
	if t.kind, err = tagKind(o.Type, a); err != nil {
		ps.add("", "%v", err)
		return nil, ps
	}
	t.order = dev.order
	if o.ByteOrder != "" {
		if t.order, err = parseOrder(o.ByteOrder); err != nil {
			ps.add("byte_order", "%v", err)
		}
	}
	ps = append(ps, t.layout(o.Length, dev.maxRegs)...)
	ps = append(ps, t.scaling(o)...)
	if o.Writable && !t.table.writable() {
		ps.add("", "%s cannot be written (only coils and holding registers can)", t.table)
	}
	if o.Writable && t.kind == kString && t.size > maxWriteRegisters {
		ps.add("", "a writable string may have at most %d registers (one write request)", maxWriteRegisters)
	}
	t.info = drivers.TagInfo{
		Name: o.Name, Type: t.typ, Units: o.Units, Description: o.Description, Writable: o.Writable,
		Deadband: o.Deadband, DeadbandPercent: o.DeadbandPercent, MaxInterval: o.MaxInterval,
	}
	return t, ps
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

// layout sets the tag's size and checks its length, and its size against the device's read
// limit (limit registers) and the end of the table.
func (t *tag) layout(length, limit int) problems {
	var ps problems
	switch {
	case length < 0:
		ps.add("length", "length must not be negative")
		length = 1
	case t.kind == kString && length == 0:
		ps.add("", "a string needs length = number of registers (two characters each)")
		length = 1
	case t.kind != kString && length != 0:
		ps.add("", "length applies to strings only, not %s", t.kind)
	}
	n := t.kind.registers()
	if t.kind == kString {
		n = length
	}
	if t.table.isBit() || t.bit >= 0 {
		n = 1
	}
	if !t.table.isBit() && n > limit {
		ps.add("", "%d registers do not fit one read (max_registers %d)", n, limit)
	}
	if int(t.start)+n > 65536 {
		ps.add("", "%d registers from offset %d run past the end of the table", n, t.start)
		n = 65536 - int(t.start)
	}
	t.size = uint16(min(n, math.MaxUint16))
	return ps
}

// scaling checks scale and offset and sets the published type.
func (t *tag) scaling(o *TagOptions) problems {
	t.typ = t.kind.sparkplug()
	if o.Scale == nil && o.Offset == nil {
		return nil
	}
	var ps problems
	if !t.kind.numeric() {
		ps.add("", "scale and offset apply to numbers, not %s", t.kind)
		return ps
	}
	t.scaled, t.scale, t.offset, t.typ = true, 1, 0, drivers.Double
	if o.Scale != nil {
		t.scale = *o.Scale
	}
	if o.Offset != nil {
		t.offset = *o.Offset
	}
	switch {
	case math.IsNaN(t.scale) || math.IsInf(t.scale, 0):
		ps.add("scale", "scale must be a finite number")
	case t.scale == 0:
		ps.add("scale", "scale 0 is not allowed: every value would read as the offset")
	}
	if math.IsNaN(t.offset) || math.IsInf(t.offset, 0) {
		ps.add("offset", "offset must be a finite number")
	}
	return ps
}
