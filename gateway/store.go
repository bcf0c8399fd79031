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
	info       drivers.DeviceInfo
	interval   time.Duration // configured poll interval, to tell a recent error from an old one
	disabled   bool
	state      string // web.StateConnecting, StateCommunicating, StateDown or StateDisabled
	stateSince time.Time
	reported   bool // a poll result or a state has come in
	lastErr    string
	lastErrAt  time.Time
	tags       []tagEntry
	byName     map[string]int
}

type tagEntry struct {
	info drivers.TagInfo
	s    drivers.Sample
	seen bool
	good drivers.Sample // the last sample of good quality
	hasG bool
}

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
	st.devices, st.byName, st.pending = nil, make(map[string]*deviceEntry, len(devs)), 0
	for _, d := range devs {
		e := &deviceEntry{info: d.info, interval: d.interval, disabled: d.disabled,
			state: web.StateConnecting, stateSince: now, byName: make(map[string]int, len(d.info.Tags))}
		if d.disabled {
			e.state, e.reported = web.StateDisabled, true
		} else {
			st.pending++
		}
		for i, t := range d.info.Tags {
			e.tags = append(e.tags, tagEntry{info: t})
			e.byName[t.Name] = i
		}
		if o := old[d.info.Name]; o != nil && o.disabled == d.disabled {
			e.state, e.stateSince, e.lastErr, e.lastErrAt = o.state, o.stateSince, o.lastErr, o.lastErrAt
			if !d.disabled && o.reported {
				e.reported = true
				st.pending--
			}
			for i := range e.tags {
				if j, ok := o.byName[e.tags[i].info.Name]; ok && o.tags[j].info.Type == e.tags[i].info.Type {
					ot := o.tags[j]
					e.tags[i].s, e.tags[i].seen, e.tags[i].good, e.tags[i].hasG = ot.s, ot.seen, ot.good, ot.hasG
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

func (st *store) samples(batch []drivers.Sample) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, s := range batch {
		d := st.byName[s.Device]
		if d == nil {
			continue
		}
		if i, ok := d.byName[s.Tag]; ok {
			t := &d.tags[i]
			t.s, t.seen = s, true
			if s.Quality == drivers.Good && !s.Value.IsNull() {
				t.good, t.hasG = s, true
			}
		}
		st.markReported(d)
	}
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
		for _, t := range d.tags {
			wd.Tags = append(wd.Tags, tagView(d.info.Name, t))
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

func tagView(device string, t tagEntry) web.Tag {
	v := web.Tag{Device: device, Name: t.info.Name, Type: t.info.Type.String(), Units: t.info.Units,
		Writable: t.info.Writable, Address: t.info.Address, Quality: drivers.Stale.String()}
	if t.hasG {
		v.LastGoodDisplay, v.LastGoodTime = t.good.Value.String(), t.good.Time.Truncate(time.Millisecond)
	}
	if !t.seen {
		return v
	}
	v.Quality = t.s.Quality.String()
	v.Time = t.s.Time.Truncate(time.Millisecond)
	v.Value = jsonValue(t.s.Value)
	if !t.s.Value.IsNull() {
		v.Display = t.s.Value.String()
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
