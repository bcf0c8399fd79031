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
	for _, m := range d.metrics {
		bm := Metric{
			Name: m.info.Name, Alias: m.alias, HasAlias: s.opts.Aliases,
			Timestamp: ms, HasTimestamp: true,
			Datatype: DataType(m.info.Type), Properties: birthProperties(m, drivers.Bad),
		}
		bm.SetValue(drivers.Null(m.info.Type))
		p.Metrics = append(p.Metrics, bm)
		m.born = born{}
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
func (s *Session) appendBirthMetrics(ms []Metric, d *deviceState, now time.Time) []Metric {
	for _, m := range d.metrics {
		t := m.t
		if t.IsZero() {
			t = now
		}
		bm := Metric{
			Name: m.info.Name, Alias: m.alias, HasAlias: s.opts.Aliases,
			Timestamp: uint64(t.UnixMilli()), HasTimestamp: true,
			Datatype: DataType(m.info.Type), Properties: birthProperties(m, m.q),
		}
		bm.SetValue(m.val)
		ms = append(ms, bm)
		m.reported, m.repVal, m.repQ, m.repAt = true, m.val, m.q, now
		m.born = born{set: !m.t.IsZero(), val: m.val, q: m.q, ms: t.UnixMilli()}
	}
	return ms
}

// coveredByBirth reports whether a historical sample is the one the last birth carried for
// its metric (same value, quality and time to the ms): the host has it already.
func (m *metricState) coveredByBirth(v drivers.Value, q drivers.Quality, at time.Time) bool {
	return m.born.set && m.born.q == q && m.born.ms == at.UnixMilli() && m.born.val.Equal(v)
}

// birthProperties: Quality q always (births state it explicitly); engUnit, documentation and
// readOnly when configured, under the names of Ignition's tag properties.
func birthProperties(m *metricState, q drivers.Quality) *PropertySet {
	ps := &PropertySet{
		Keys:   make([]string, 0, 4),
		Values: make([]PropertyValue, 0, 4),
	}
	ps.Add(PropQuality, qualityValue(q))
	if m.info.Units != "" {
		ps.Add(PropEngUnit, PropertyValue{Type: TypeString, Value: WireValue{Kind: KindString, Str: m.info.Units}})
	}
	if m.info.Description != "" {
		ps.Add(PropDocumentation, PropertyValue{Type: TypeString, Value: WireValue{Kind: KindString, Str: m.info.Description}})
	}
	if !m.info.Writable {
		ps.Add(PropReadOnly, PropertyValue{Type: TypeBoolean, Value: WireValue{Kind: KindBool, Bits: 1}})
	}
	return ps
}

func qualityValue(q drivers.Quality) PropertyValue {
	return PropertyValue{Type: TypeInt32, Value: WireValue{Kind: KindInt, Bits: uint64(uint32(int32(q)))}}
}
