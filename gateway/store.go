package gateway

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/web"
)

// store keeps the latest sample of every tag and the comms state of every device, for the
// status page. It never decides what is published: the Sparkplug sessions do.
type store struct {
	mu      sync.RWMutex
	devices []*deviceEntry
	byName  map[string]*deviceEntry
	pending int           // devices that have not reported yet
	changed chan struct{} // pinged when pending drops
}

type deviceEntry struct {
	info     drivers.DeviceInfo
	up       bool
	reported bool // a poll result or a state has come in
	lastErr  string
	tags     []tagEntry
	byName   map[string]int
}

type tagEntry struct {
	info drivers.TagInfo
	s    drivers.Sample
	seen bool
}

func newStore(devs []drivers.DeviceInfo) *store {
	st := &store{byName: make(map[string]*deviceEntry, len(devs)), pending: len(devs),
		changed: make(chan struct{}, 1)}
	for _, d := range devs {
		e := &deviceEntry{info: d, up: true, byName: make(map[string]int, len(d.Tags))}
		for i, t := range d.Tags {
			e.tags = append(e.tags, tagEntry{info: t})
			e.byName[t.Name] = i
		}
		st.devices = append(st.devices, e)
		st.byName[d.Name] = e
	}
	return st
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
			d.tags[i].s = s
			d.tags[i].seen = true
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
	st.mu.Lock()
	defer st.mu.Unlock()
	d := st.byName[device]
	if d == nil {
		return
	}
	d.up = up
	st.markReported(d)
	if err != nil {
		d.lastErr = err.Error()
	}
}

// deviceCounts counts the devices communicating and not.
func (st *store) deviceCounts() (good, bad int) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	for _, d := range st.devices {
		if d.up {
			good++
		} else {
			bad++
		}
	}
	return good, bad
}

// view renders the store for the status page; status adds driver counters where known.
func (st *store) view(status map[string]drivers.DeviceStatus) []web.Device {
	st.mu.RLock()
	defer st.mu.RUnlock()
	out := make([]web.Device, 0, len(st.devices))
	for _, d := range st.devices {
		wd := web.Device{Name: d.info.Name, Driver: d.info.Driver, Up: d.up, LastError: d.lastErr,
			Tags: make([]web.Tag, 0, len(d.tags))}
		if s, ok := status[d.info.Name]; ok {
			wd.Requests, wd.Errors, wd.LastGood = s.Requests, s.Errors, s.LastGood
			wd.ErrorsByKind, wd.ResponseTime = s.ErrorsByKind, s.ResponseTime
			if s.LastError != "" {
				wd.LastError = s.LastError
			}
		}
		for _, t := range d.tags {
			wd.Tags = append(wd.Tags, tagView(d.info.Name, t))
		}
		out = append(out, wd)
	}
	return out
}

func tagView(device string, t tagEntry) web.Tag {
	v := web.Tag{Device: device, Name: t.info.Name, Type: t.info.Type.String(), Units: t.info.Units,
		Writable: t.info.Writable, Quality: "stale", Display: "—"}
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
