package sparkplug

import (
	"time"

	"github.com/wellgate/wellgate/drivers"
)

// birthAll publishes NBIRTH with seq 0, then a DBIRTH for every device: with its current
// values when it is up, dead (every metric null and Bad, then its DDEATH) when it is down.
// Pending DATA is dropped: births carry the current values and become the new report
// baseline.
func (s *Session) birthAll() error {
	now := s.now()
	ms := uint64(now.UnixMilli())
	p := Payload{Timestamp: ms, HasTimestamp: true}
	p.Metrics = make([]Metric, 0, len(s.node.metrics)+2)
	p.Metrics = append(p.Metrics, bdSeqMetric(s.bdSeq, ms), Metric{
		Name: MetricRebirth, Timestamp: ms, HasTimestamp: true, Datatype: TypeBoolean,
		Value: WireValue{Kind: KindBool},
	})
	p.Metrics = s.appendBirthMetrics(p.Metrics, s.node, now)
	s.node.pend = s.node.pend[:0]
	clear(s.dirty)
	s.dirty = s.dirty[:0]
	s.seq = 0
	s.rebirth = rebirthState{}
	if _, err := s.publish(s.node.birthTop, &p, nil); err != nil {
		return err
	}
	for _, d := range s.devices {
		d.pend = d.pend[:0]
		var err error
		if d.up {
			err = s.deviceBirth(d, now)
		} else {
			err = s.deadBirth(d, now, nil)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// deviceBirth publishes one DBIRTH with the device's current values.
func (s *Session) deviceBirth(d *deviceState, now time.Time) error {
	p := Payload{Timestamp: uint64(now.UnixMilli()), HasTimestamp: true}
	p.Metrics = s.appendBirthMetrics(make([]Metric, 0, len(d.metrics)), d, now)
	_, err := s.publish(d.birthTop, &p, nil)
	return err
}

// deadBirth publishes the births of a device that is down: a DBIRTH with every metric (name,
// alias, datatype and properties as usual) null with Quality Bad, then (after between, when
// given: the historical DATA of a replay) its DDEATH. The host knows the device and its tags
// and shows them offline; the report baseline is left alone (the device's next DBIRTH, when
// it comes up, sets it).
func (s *Session) deadBirth(d *deviceState, now time.Time, between func() error) error {
	ms := uint64(now.UnixMilli())
	p := Payload{Timestamp: ms, HasTimestamp: true, Metrics: make([]Metric, 0, len(d.metrics))}
	for i := range d.metrics {
		ti := &d.tags[i]
		bm := Metric{
			Name: ti.Name, Alias: s.alias(d, i), HasAlias: s.opts.Aliases,
			Timestamp: ms, HasTimestamp: true,
			Datatype: DataType(ti.Type), Properties: birthProperties(ti, drivers.Bad),
		}
		bm.SetValue(drivers.Null(ti.Type))
		p.Metrics = append(p.Metrics, bm)
		d.metrics[i].meta &^= flagBorn
	}
	if _, err := s.publish(d.birthTop, &p, nil); err != nil {
		return err
	}
	if between != nil {
		if err := between(); err != nil {
			return err
		}
	}
	return s.deviceDeath(d)
}

// appendBirthMetrics appends every metric of d with name, alias, datatype, current value (or
// is_null), the value's timestamp and properties, and makes those values the report baseline.
func (s *Session) appendBirthMetrics(out []Metric, d *deviceState, now time.Time) []Metric {
	nowMs, clk := now.UnixMilli(), s.clock(now)
	for i := range d.metrics {
		m, ti := &d.metrics[i], &d.tags[i]
		ms := m.tMs
		if !m.hasTime() {
			ms = nowMs
		}
		bm := Metric{
			Name: ti.Name, Alias: s.alias(d, i), HasAlias: s.opts.Aliases,
			Timestamp: uint64(ms), HasTimestamp: true,
			Datatype: DataType(ti.Type), Properties: birthProperties(ti, m.q[cur]),
		}
		bm.SetValue(d.load(i, cur))
		out = append(out, bm)
		d.copySlot(i, cur, rep)
		m.repAt = clk
		m.meta |= flagReported
		m.meta &^= flagBorn
		if m.hasTime() {
			d.copySlot(i, cur, brn)
			m.bornMs = ms
			m.meta |= flagBorn
		}
	}
	return out
}

// coveredByBirth reports whether a historical sample is the one the last birth carried for
// metric i (same value, quality and time to the ms): the host has it already.
func (d *deviceState) coveredByBirth(i int, v drivers.Value, q drivers.Quality, at time.Time) bool {
	m := &d.metrics[i]
	return m.meta&flagBorn != 0 && m.q[brn] == q && m.bornMs == at.UnixMilli() && d.same(i, brn, v)
}

// birthProperties: Quality q always (births state it explicitly); engUnit, documentation and
// readOnly when configured, under the names of Ignition's tag properties.
func birthProperties(ti *drivers.TagInfo, q drivers.Quality) *PropertySet {
	ps := &PropertySet{
		Keys:   make([]string, 0, 4),
		Values: make([]PropertyValue, 0, 4),
	}
	ps.Add(PropQuality, qualityValue(q))
	if ti.Units != "" {
		ps.Add(PropEngUnit, PropertyValue{Type: TypeString, Value: WireValue{Kind: KindString, Str: ti.Units}})
	}
	if ti.Description != "" {
		ps.Add(PropDocumentation, PropertyValue{Type: TypeString, Value: WireValue{Kind: KindString, Str: ti.Description}})
	}
	if !ti.Writable {
		ps.Add(PropReadOnly, PropertyValue{Type: TypeBoolean, Value: WireValue{Kind: KindBool, Bits: 1}})
	}
	return ps
}

func qualityValue(q drivers.Quality) PropertyValue {
	return PropertyValue{Type: TypeInt32, Value: WireValue{Kind: KindInt, Bits: uint64(uint32(int32(q)))}}
}
