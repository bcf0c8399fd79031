package gateway

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/web"
)

// store keeps the latest sample and the last good value of every tag and the comms state of
// every device, for the status page. It never decides what is published: the Sparkplug
// sessions do.
type store struct {
	mu      sync.RWMutex
	devices []*deviceEntry
	byName  map[string]*deviceEntry
	pending int           // enabled devices that have not reported yet
	changed chan struct{} // pinged when pending drops
}

type deviceEntry struct {
	info       drivers.DeviceInfo // its Tags are shared with the driver and never written
	interval   time.Duration      // configured poll interval, to tell a recent error from an old one
	disabled   bool
	state      string // web.StateConnecting, StateCommunicating, StateDown or StateDisabled
	stateSince time.Time
	reported   bool // a poll result or a state has come in
	lastErr    string
	lastErrAt  time.Time
	tags       []tagEntry       // tags[i] is info.Tags[i]
	byName     drivers.TagIndex // info.Tags by name, for a sample out of order
	next       int              // the tag after the last one recorded: where a poll's next sample usually is
}

// tagEntry is what the store keeps of one tag beyond its TagInfo: the latest sample and the
// last good one, without the device and tag names a drivers.Sample carries. Times are Unix
// nanoseconds (zeroTime for the zero time); tagFlags say whether a time was in UTC, so that
// the page shows the time in the zone the driver gave it (UTC, or else Local).
type tagEntry struct {
	v, good  drivers.Value // the latest value; the last value of good quality
	t, goodT int64
	q        drivers.Quality
	flags    tagFlags
}

type tagFlags uint8

const (
	tagSeen    tagFlags = 1 << iota // a sample has come in
	tagHasGood                      // a good sample has come in
	tagUTC                          // the latest sample's time was in UTC (else Local)
	tagGoodUTC                      // the last good sample's time was in UTC
)

// storeDevice is one device the store shows: an enabled one (described by its driver) or a
// disabled one (from the configuration, not polled).
type storeDevice struct {
	info     drivers.DeviceInfo
	interval time.Duration
	disabled bool
}

func newStore(devs []storeDevice, now time.Time) *store {
	st := &store{changed: make(chan struct{}, 1)}
	st.setDevices(devs, now)
	return st
}

// setDevices makes devs the devices the store shows (a reload). A device that stays, enabled
// or disabled as before, keeps its state, its last error and whether it has reported; a tag
// that stays with the same type keeps its last sample and its last good value, so that the
// page does not blank. The rest starts as newStore starts it.
func (st *store) setDevices(devs []storeDevice, now time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	old := st.byName
	st.devices, st.byName, st.pending = make([]*deviceEntry, 0, len(devs)), make(map[string]*deviceEntry, len(devs)), 0
	for _, d := range devs {
		e := &deviceEntry{info: d.info, interval: d.interval, disabled: d.disabled,
			state: web.StateConnecting, stateSince: now,
			tags: make([]tagEntry, len(d.info.Tags)), byName: drivers.NewTagIndex(d.info.Tags)}
		if d.disabled {
			e.state, e.reported = web.StateDisabled, true
		} else {
			st.pending++
		}
		if o := old[d.info.Name]; o != nil && o.disabled == d.disabled {
			e.state, e.stateSince, e.lastErr, e.lastErrAt = o.state, o.stateSince, o.lastErr, o.lastErrAt
			if !d.disabled && o.reported {
				e.reported = true
				st.pending--
			}
			for i, t := range e.info.Tags {
				if j := o.byName.Find(o.info.Tags, t.Name); j >= 0 && o.info.Tags[j].Type == t.Type {
					e.tags[i] = o.tags[j]
				}
			}
		}
		st.devices = append(st.devices, e)
		st.byName[d.info.Name] = e
	}
	select { // waitReported looks again
	case st.changed <- struct{}{}:
	default:
	}
}

// samples records a batch. Drivers send a poll's samples device by device, tag by tag in the
// order they described them, so the device of the previous sample and the tag after the
// previous one are tried before the maps. It allocates nothing.
func (st *store) samples(batch []drivers.Sample) {
	st.mu.Lock()
	defer st.mu.Unlock()
	var d *deviceEntry
	for i := range batch {
		s := &batch[i]
		if d == nil || d.info.Name != s.Device {
			if d = st.byName[s.Device]; d == nil {
				continue
			}
		}
		if j := d.tagIndex(s.Tag); j >= 0 {
			d.tags[j].record(s)
			d.next = j + 1
		}
		st.markReported(d)
	}
}

// tagIndex is the index of the tag named name, or -1.
func (d *deviceEntry) tagIndex(name string) int {
	if d.next < len(d.info.Tags) && d.info.Tags[d.next].Name == name {
		return d.next
	}
	return d.byName.Find(d.info.Tags, name)
}

// record makes s the tag's latest sample, and its last good one when it is good.
func (t *tagEntry) record(s *drivers.Sample) {
	ns, utc := packTime(s.Time)
	t.v, t.q, t.t = s.Value, s.Quality, ns
	t.flags = t.flags&^tagUTC | tagSeen
	if utc {
		t.flags |= tagUTC
	}
	if s.Quality == drivers.Good && !s.Value.IsNull() {
		t.good, t.goodT = s.Value, ns
		t.flags = t.flags&^tagGoodUTC | tagHasGood
		if utc {
			t.flags |= tagGoodUTC
		}
	}
}

// zeroTime stands for the zero time.Time, which has no Unix nanoseconds.
const zeroTime = math.MinInt64

// packTime is tm as Unix nanoseconds and whether it is in UTC.
func packTime(tm time.Time) (int64, bool) {
	if tm.IsZero() {
		return zeroTime, true
	}
	return tm.UnixNano(), tm.Location() == time.UTC
}

// unpackTime is the time packTime packed, to the millisecond, as the page shows it.
func unpackTime(ns int64, utc bool) time.Time {
	if ns == zeroTime {
		return time.Time{}
	}
	tm := time.Unix(0, ns)
	if utc {
		tm = tm.UTC()
	}
	return tm.Truncate(time.Millisecond)
}

// markReported notes a device's first report. Called with mu held.
func (st *store) markReported(d *deviceEntry) {
	if d.reported {
		return
	}
	d.reported = true
	st.pending--
	select {
	case st.changed <- struct{}{}:
	default:
	}
}

// waitReported waits until every device has reported once, for at most max.
func (st *store) waitReported(ctx context.Context, max time.Duration) {
	timer := time.NewTimer(max)
	defer timer.Stop()
	for {
		st.mu.RLock()
		n := st.pending
		st.mu.RUnlock()
		if n <= 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
			return
		case <-st.changed:
		}
	}
}

func (st *store) deviceState(device string, up bool, err error) {
	now := time.Now()
	st.mu.Lock()
	defer st.mu.Unlock()
	d := st.byName[device]
	if d == nil {
		return
	}
	state := web.StateDown
	if up {
		state = web.StateCommunicating
	}
	if d.state != state {
		d.state, d.stateSince = state, now
	}
	st.markReported(d)
	if err != nil {
		d.lastErr, d.lastErrAt = err.Error(), now
	}
}

// deviceCounts counts the enabled devices communicating and not (connecting counts as not).
func (st *store) deviceCounts() (good, bad int) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	for _, d := range st.devices {
		switch d.state {
		case web.StateDisabled:
		case web.StateCommunicating:
			good++
		default:
			bad++
		}
	}
	return good, bad
}

// view renders the store for the status page at now; status adds driver counters where known.
// Nothing it returns shares memory the store keeps writing.
func (st *store) view(status map[string]drivers.DeviceStatus, now time.Time) []web.Device {
	st.mu.RLock()
	defer st.mu.RUnlock()
	out := make([]web.Device, 0, len(st.devices))
	for _, d := range st.devices {
		wd := web.Device{Name: d.info.Name, Driver: d.info.Driver, Endpoint: d.info.Endpoint,
			State: d.state, StateSince: d.stateSince, Up: d.state == web.StateCommunicating,
			LastError: d.lastErr, LastErrorAt: d.lastErrAt, Tags: make([]web.Tag, 0, len(d.tags))}
		if s, ok := status[d.info.Name]; ok {
			addStatus(&wd, s, d.interval, now)
		}
		for i := range d.tags {
			wd.Tags = append(wd.Tags, tagView(d.info.Name, &d.info.Tags[i], &d.tags[i]))
		}
		out = append(out, wd)
	}
	return out
}

// addStatus adds a driver's counters to a device's view. A device that answers but failed a
// request within its last two poll intervals is degraded.
func addStatus(wd *web.Device, s drivers.DeviceStatus, interval time.Duration, now time.Time) {
	wd.Requests, wd.Errors, wd.LastGood, wd.ResponseTime = s.Requests, s.Errors, s.LastGood, s.ResponseTime
	if len(s.ErrorsByKind) > 0 {
		wd.ErrorsByKind = make(map[string]uint64, len(s.ErrorsByKind))
		for k, v := range s.ErrorsByKind {
			wd.ErrorsByKind[k] = v
		}
	}
	if s.LastError != "" {
		wd.LastError, wd.LastErrorAt = s.LastError, s.LastErrorAt
	}
	if wd.State == web.StateCommunicating && !s.LastErrorAt.IsZero() && now.Sub(s.LastErrorAt) < 2*interval {
		wd.State = web.StateDegraded
	}
}

func tagView(device string, info *drivers.TagInfo, t *tagEntry) web.Tag {
	v := web.Tag{Device: device, Name: info.Name, Type: info.Type.String(), Units: info.Units,
		Writable: info.Writable, Address: info.Address, Quality: drivers.Stale.String()}
	if t.flags&tagHasGood != 0 {
		v.LastGoodDisplay, v.LastGoodTime = t.good.String(), unpackTime(t.goodT, t.flags&tagGoodUTC != 0)
	}
	if t.flags&tagSeen == 0 {
		return v
	}
	v.Quality = t.q.String()
	v.Time = unpackTime(t.t, t.flags&tagUTC != 0)
	v.Value = jsonValue(t.v)
	if !t.v.IsNull() {
		v.Display = t.v.String()
	}
	return v
}

// jsonValue is the value for JSON, which has no NaN or infinities: those become strings.
func jsonValue(v drivers.Value) any {
	if v.Type().IsFloat() && !v.IsNull() {
		if f := v.Float64(); math.IsNaN(f) || math.IsInf(f, 0) {
			return v.String()
		}
	}
	return v.Any()
}
