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

// tag is one validated tag, kept small: a driver holds one per configured tag (issue 14), in
// its device's tags slice. What the rest of the gateway sees of the tag (name, published type,
// writability, units, address) is its drivers.TagInfo in the device's info slice, which the
// tag points to; what few tags need (scaling, write limits, a string's last value) is in x.
type tag struct {
	info  *drivers.TagInfo // &device.info[index]: read only
	x     *tagExtra        // nil unless the tag is scaled, has a min or max, or is a string
	index int32            // position in device.tags and in a poll's samples
	start uint16           // zero-based offset of the first register or bit
	size  uint16           // registers (or bits) the tag occupies
	table table
	kind  kind
	order byteOrder
	bit   int8 // bit in register, -1 for none

	scaled bool // x.scale and x.offset apply

	// alone is set when the device refused a merged read and this tag alone was to blame.
	alone bool
}

// tagExtra is what only some tags need.
type tagExtra struct {
	scale, offset float64
	min, max      *float64 // writes outside are refused

	// A string tag's last string, as read (trimmed) and as published (valid UTF-8), so that
	// an unchanged string is not allocated again. Owned by the endpoint's goroutine.
	lastRaw, lastStr string
}

// name is the tag's name as configured.
func (t *tag) name() string { return t.info.Name }

// typ is the tag's published type.
func (t *tag) typ() drivers.Type { return t.info.Type }

// end is one past the last register or bit the tag occupies.
func (t *tag) end() int { return int(t.start) + int(t.size) }

// newTag checks one tag's options against its device (byte order, read limit) and fills t,
// *t.info (all but Address) and *x (scale and offset), which the caller provides: checking a
// tag allocates nothing, and the caller keeps x only when the tag needs it (see
// tag.needsExtra). It returns every problem it finds, and false when the tag's address or type
// leaves nothing to build. Problems of the tag's layout (type against address, length, size)
// are about the tag as a whole.
func newTag(o *TagOptions, dev *device, t *tag, x *tagExtra) (problems, bool) {
	var ps problems
	*t = tag{info: t.info, index: t.index, bit: -1}
	*x = tagExtra{min: o.Min, max: o.Max}
	a, err := parseAddress(o.Address, dev.zeroBased)
	if err != nil {
		ps.add("address", "%v", err)
		return ps, false
	}
	t.table, t.start, t.bit = a.table, a.offset, int8(a.bit)
	if t.kind, err = tagKind(o.Type, a); err != nil {
		ps.add("", "%v", err)
		return ps, false
	}
	t.order = dev.order
	if o.ByteOrder != "" {
		if t.order, err = parseOrder(o.ByteOrder); err != nil {
			ps.add("byte_order", "%v", err)
		}
	}
	ps = append(ps, t.layout(o.Length, dev.maxRegs)...)
	typ, sps := t.scaling(o, x)
	ps = append(ps, sps...)
	if o.Writable && !t.table.writable() {
		ps.add("", "%s cannot be written (only coils and holding registers can)", t.table)
	}
	if o.Writable && t.kind == kString && t.size > maxWriteRegisters {
		ps.add("", "a writable string may have at most %d registers (one write request)", maxWriteRegisters)
	}
	*t.info = drivers.TagInfo{
		Name: o.Name, Type: typ, Units: o.Units, Description: o.Description, Writable: o.Writable,
		Deadband: o.Deadband, DeadbandPercent: o.DeadbandPercent, MaxInterval: o.MaxInterval,
	}
	return ps, true
}

// needsExtra reports whether a tag that newTag filled needs its tagExtra kept.
func (t *tag) needsExtra(x *tagExtra) bool {
	return t.scaled || x.min != nil || x.max != nil || t.kind == kString
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

// scaling checks scale and offset, sets them in x, and returns the published type.
func (t *tag) scaling(o *TagOptions, x *tagExtra) (drivers.Type, problems) {
	typ := t.kind.sparkplug()
	if o.Scale == nil && o.Offset == nil {
		return typ, nil
	}
	var ps problems
	if !t.kind.numeric() {
		ps.add("", "scale and offset apply to numbers, not %s", t.kind)
		return typ, ps
	}
	t.scaled, x.scale, x.offset, typ = true, 1, 0, drivers.Double
	if o.Scale != nil {
		x.scale = *o.Scale
	}
	if o.Offset != nil {
		x.offset = *o.Offset
	}
	switch {
	case math.IsNaN(x.scale) || math.IsInf(x.scale, 0):
		ps.add("scale", "scale must be a finite number")
	case x.scale == 0:
		ps.add("scale", "scale 0 is not allowed: every value would read as the offset")
	}
	if math.IsNaN(x.offset) || math.IsInf(x.offset, 0) {
		ps.add("offset", "offset must be a finite number")
	}
	return typ, ps
}
