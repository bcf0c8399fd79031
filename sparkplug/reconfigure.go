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
// nothing changes.
func (s *Session) SetDevices(devices []drivers.DeviceInfo) error {
	check := s.opts
	check.Devices = devices
	if err := validateOptions(&check); err != nil {
		return fmt.Errorf("set devices: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.byDevice
	s.byAlias = make(map[uint64]*metricState, len(s.byAlias))
	for _, m := range s.node.metrics {
		if s.opts.Aliases {
			m.alias = uint64(len(s.byAlias) + 1)
			s.byAlias[m.alias] = m
		}
	}
	s.devices = make([]*deviceState, 0, len(devices))
	s.byDevice = make(map[string]*deviceState, len(devices))
	s.unpolled = 0
	for _, d := range devices {
		ds := s.newDevice(d.Name, d.Tags)
		if od := old[d.Name]; od != nil {
			ds.up, ds.reported = od.up, od.reported
			carryValues(od, ds)
		}
		if !ds.reported {
			s.unpolled++
		}
		s.devices = append(s.devices, ds)
		s.byDevice[d.Name] = ds
	}
	s.opts.Devices = devices
	clear(s.warned) // a tag that is unknown now is logged again, once
	if !s.online {
		return nil
	}
	return s.rebirthLocked()
}

// carryValues gives the metrics of to that from also has (by name) from's latest sample.
func carryValues(from, to *deviceState) {
	for _, m := range to.metrics {
		om := from.byName[m.info.Name]
		if om == nil || om.t.IsZero() && om.val.IsNull() {
			continue
		}
		v, ok := coerce(om.val, m.info.Type)
		if !ok {
			continue // a type that does not take the old value: null and Bad until polled
		}
		m.val, m.q, m.t = v, om.q, om.t
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
