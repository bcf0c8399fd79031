package sparkplug

import (
	"fmt"

	"github.com/wellgate/wellgate/drivers"
)

// SetDevices replaces the session's devices and their tags (a configuration reload). The
// metric table is built afresh, aliases numbered again from 1 in configuration order (node
// metrics first, as NewSession does), and every metric that still exists (same device, same
// tag name) keeps its latest value, quality and time (converted when its type changed; null
// and Bad when it does not convert); a device that still exists keeps its up/down state.
// Devices and tags that are gone are forgotten: samples for them are from now on unknown
// (dropped by Update, skipped by PublishHistorical). A device that is new starts up and
// unpolled, its metrics null and Bad.
//
// Online, the change is published at once, under the same lock, as a full rebirth: NBIRTH
// (seq 0, the same bdSeq) with the new alias table and a DBIRTH for every device, so that no
// DATA ever refers to a metric its host has not been told about. Offline, the next Start
// births the new set. The devices are validated as NewSession validates them; on error
// nothing changes. As with Options.Devices, the session keeps devices and their Tags slices:
// the caller must not change them afterwards.
func (s *Session) SetDevices(devices []drivers.DeviceInfo) error {
	check := s.opts
	check.Devices = devices
	if err := validateOptions(&check); err != nil {
		return fmt.Errorf("set devices: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setDevices(devices, s.byDevice)
	s.opts.Devices = devices
	clear(s.warned) // a tag that is unknown now is logged again, once
	if !s.online {
		return nil
	}
	return s.rebirthLocked()
}

// carryValues gives the metrics of to that from also has (by name) from's latest sample.
func carryValues(from, to *deviceState) {
	for i := range to.metrics {
		j := from.byName.Find(from.tags, to.tags[i].Name)
		if j < 0 || !from.metrics[j].hasTime() && from.isNull(j, cur) {
			continue
		}
		v, ok := coerce(from.load(j, cur), to.tags[i].Type)
		if !ok {
			continue // a type that does not take the old value: null and Bad until polled
		}
		to.store(i, cur, v)
		fm, tm := &from.metrics[j], &to.metrics[i]
		tm.q[cur], tm.tMs, tm.meta = fm.q[cur], fm.tMs, tm.meta&^subMask|fm.meta&subMask
	}
}

// HistoricalSkipped counts the queued samples PublishHistorical skipped since the session was
// made because their device or tag is not (or no longer) configured, or their value does not
// convert to the tag's type: after a reload, a backlog may hold samples of tags that are gone.
func (s *Session) HistoricalSkipped() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.histSkipped
}

// HistoricalCovered counts the queued samples PublishHistorical skipped since the session was
// made because the last birth carried them (the host has them already): after a start, the
// first poll queued while the births waited for it.
func (s *Session) HistoricalCovered() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.histCovered
}
