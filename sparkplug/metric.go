package sparkplug

import (
	"math"
	"time"

	"github.com/wellgate/wellgate/drivers"
)

// Per-tag state is kept small and flat (issue 14: two sessions × 40,000 tags on a 256 MB box).
// A device holds one []metricState, one entry per tag in configuration order, next to the
// caller's []drivers.TagInfo (never copied: metrics[i] is tags[i]). Values are kept packed,
// without their type (always the tag's), times as integers. Aliases are not stored: the
// metrics of a device are numbered consecutively (alias0+i+1), so an alias is found by range.

// slot names one of the three values a metric keeps.
type slot uint8

const (
	cur    slot = iota // the latest value recorded: births carry it
	rep                // the last value reported (in a birth or DATA): the RBE baseline
	brn                // the value the last birth carried, for PublishHistorical
	nSlots             // number of slots
)

// metricState.meta: the low bits are the nanoseconds past tMs of the latest sample's time
// (under 10⁶), the high bits flags: nullFlag(s) (slot s holds a null) and these.
const (
	subMask      uint32 = 1<<20 - 1
	nullShift           = 24
	flagReported uint32 = 1 << (nullShift + nSlots + iota) // rep is set
	flagBorn                                               // brn is set: the last birth carried a sample
)

// nullFlag is the flag of a null in slot s.
func nullFlag(s slot) uint32 { return 1 << (nullShift + s) }

// metricState is one tag's state: 64 bytes, one cache line.
type metricState struct {
	// bits are the values by slot, packed (see pack). For String, Text and Bytes tags,
	// bits[cur] is instead the index k of their values in deviceState.strs[3k:3k+3], and
	// the null flags are unused.
	bits   [nSlots]uint64
	tMs    int64 // the latest sample's time, ms since the Unix epoch (zeroMs and sub 0: none)
	repAt  int64 // when rep was reported: session clock, ns since Session.epoch
	bornMs int64 // the time brn carried, ms
	q      [nSlots]drivers.Quality
	meta   uint32 // sub-ms nanoseconds of the latest sample's time (subMask) and flags
}

// zeroMs is the time.Time zero value in Unix ms: with a sub-ms part of 0, the "no sample"
// time. Sample times are kept as ms and sub-ms nanoseconds, not Unix nanoseconds, whose range
// (1678–2262) misses times a device may report, such as OPC UA's 1601 "no time".
var zeroMs = time.Time{}.UnixMilli()

// deviceState is one device's state, or the node's (name "").
type deviceState struct {
	name    string
	tags    []drivers.TagInfo // the caller's slice, never changed (Options.Devices)
	metrics []metricState     // metrics[i] is tags[i]
	strs    []drivers.Value   // values of String, Text and Bytes tags, nSlots per tag
	byName  drivers.TagIndex  // tags by name, for lookups the hint misses
	alias0  uint64            // metric i has alias alias0+i+1 (when aliases are on)
	pos     int               // -1 for the node, else the index in Session.devices
	next    int               // the metric the next sample most likely names (hint)

	up       bool
	reported bool // a sample or a state came in (Polled)
	pend     []pending
	dataTop  string
	birthTop string
}

type pending struct {
	i         int32 // metric index
	qualityOn bool  // send the Quality property
	q         drivers.Quality
	val       drivers.Value
	t         time.Time
}

// makeDevice builds the state of a device (or, name "", the node) with every metric null and
// Bad, its aliases following alias0.
func makeDevice(name string, tags []drivers.TagInfo, alias0 uint64, pos int) *deviceState {
	d := &deviceState{name: name, tags: tags, alias0: alias0, pos: pos, up: true,
		metrics: make([]metricState, len(tags)), byName: drivers.NewTagIndex(tags)}
	nstr := 0
	for i := range tags {
		if isStr(tags[i].Type) {
			nstr++
		}
	}
	if nstr > 0 {
		d.strs = make([]drivers.Value, 0, nstr*int(nSlots))
	}
	for i := range tags {
		m := &d.metrics[i]
		m.tMs = zeroMs
		if isStr(tags[i].Type) {
			m.bits[cur] = uint64(len(d.strs) / int(nSlots))
			d.strs = append(d.strs, make([]drivers.Value, nSlots)...)
		}
		d.store(i, cur, drivers.Null(tags[i].Type))
	}
	return d
}

// isStr reports whether values of type t are kept in deviceState.strs.
func isStr(t drivers.Type) bool {
	return t == drivers.String || t == drivers.Text || t == drivers.Bytes
}

// pack is a non-string value's content as one word: the float64 bits of a Float or Double,
// the raw bits of any other type (drivers.Value.Uint). unpack(v.Type(), pack(v)) == v.
func pack(v drivers.Value) uint64 {
	if v.Type().IsFloat() {
		return math.Float64bits(v.Float64())
	}
	return v.Uint()
}

// load returns metric i's value in slot s.
func (d *deviceState) load(i int, s slot) drivers.Value {
	m, t := &d.metrics[i], d.tags[i].Type
	switch {
	case isStr(t):
		return d.strs[int(m.bits[cur])*int(nSlots)+int(s)]
	case m.meta&nullFlag(s) != 0:
		return drivers.Null(t)
	}
	return drivers.UintValue(t, m.bits[s]) // the raw bits back, whatever the type
}

// store sets metric i's value in slot s; v has the tag's type.
func (d *deviceState) store(i int, s slot, v drivers.Value) {
	m := &d.metrics[i]
	if isStr(d.tags[i].Type) {
		d.strs[int(m.bits[cur])*int(nSlots)+int(s)] = v
		return
	}
	m.bits[s] = pack(v)
	if v.IsNull() {
		m.meta |= nullFlag(s)
	} else {
		m.meta &^= nullFlag(s)
	}
}

// same reports whether metric i's value in slot s equals v (drivers.Value.Equal; v has the
// tag's type).
func (d *deviceState) same(i int, s slot, v drivers.Value) bool {
	m := &d.metrics[i]
	if isStr(d.tags[i].Type) {
		return d.strs[int(m.bits[cur])*int(nSlots)+int(s)].Equal(v)
	}
	return (m.meta&nullFlag(s) != 0) == v.IsNull() && m.bits[s] == pack(v)
}

// sameSlots reports whether metric i holds equal values in slots a and b, and whether they
// are both null or both not.
func (d *deviceState) sameSlots(i int, a, b slot) (equal, sameNull bool) {
	m := &d.metrics[i]
	if isStr(d.tags[i].Type) {
		k := int(m.bits[cur]) * int(nSlots)
		va, vb := &d.strs[k+int(a)], &d.strs[k+int(b)]
		return va.Equal(*vb), va.IsNull() == vb.IsNull()
	}
	sameNull = (m.meta>>(nullShift+a))&1 == (m.meta>>(nullShift+b))&1
	return sameNull && m.bits[a] == m.bits[b], sameNull
}

// copySlot copies metric i's value and quality from slot from to slot to.
func (d *deviceState) copySlot(i int, from, to slot) {
	m := &d.metrics[i]
	m.q[to] = m.q[from]
	if isStr(d.tags[i].Type) {
		k := int(m.bits[cur]) * int(nSlots)
		d.strs[k+int(to)] = d.strs[k+int(from)]
		return
	}
	m.bits[to] = m.bits[from]
	m.meta = m.meta&^nullFlag(to) | (m.meta>>(nullShift+from)&1)<<(nullShift+to)
}

// isNull reports whether metric i's value in slot s is null.
func (d *deviceState) isNull(i int, s slot) bool {
	if isStr(d.tags[i].Type) {
		return d.load(i, s).IsNull()
	}
	return d.metrics[i].meta&nullFlag(s) != 0
}

// record makes v (quality q, time at) metric i's latest value.
func (d *deviceState) record(i int, v drivers.Value, q drivers.Quality, at time.Time) {
	d.store(i, cur, v)
	m := &d.metrics[i]
	m.q[cur] = q
	ms, sub := splitTime(at)
	m.tMs, m.meta = ms, m.meta&^subMask|sub
}

// splitTime is t as Unix ms and the nanoseconds past them: ordered as t is.
func splitTime(t time.Time) (ms int64, sub uint32) {
	return t.UnixMilli(), uint32(t.Nanosecond() % int(time.Millisecond))
}

// hasTime reports whether the metric's latest value has a time (a sample came in).
func (m *metricState) hasTime() bool { return m.tMs != zeroMs || m.meta&subMask != 0 }

// newer reports whether the metric holds a sample newer than at.
func (m *metricState) newer(at time.Time) bool {
	ms, sub := splitTime(at)
	return ms < m.tMs || ms == m.tMs && sub < m.meta&subMask
}

// find returns the index of the metric named tag, or -1. It tries the hint first (a poll
// names a device's tags in configuration order, with the configured strings) and moves it on.
func (d *deviceState) find(tag string) int {
	i := d.next
	if i >= len(d.tags) || d.tags[i].Name != tag {
		if i = d.byName.Find(d.tags, tag); i < 0 {
			return -1
		}
	}
	if d.next = i + 1; d.next == len(d.tags) {
		d.next = 0
	}
	return i
}

// byAlias returns the index of d's metric with alias a, or -1.
func (d *deviceState) byAlias(a uint64) int {
	if a <= d.alias0 || a-d.alias0 > uint64(len(d.tags)) {
		return -1
	}
	return int(a - d.alias0 - 1)
}
