package sphost

import (
	"github.com/wellgate/wellgate/sparkplug"
)

// nbirth checks an NBIRTH and starts a session (new bdSeq) or a new birth round (rebirth,
// same bdSeq).
func (c *checker) nbirth(p *sparkplug.Payload) {
	if !p.HasSeq || p.Seq != 0 {
		c.fail(rulesFor[sparkplug.NBIRTH].seq, "seq %d (present %v), want 0 on the wire", p.Seq, p.HasSeq)
	}
	c.seqKnown, c.nextSeq = true, 1
	c.checkRebirthMetric(p)
	bd, hasBd := c.nbirthBdSeq(p)
	c.checkExpected("before the next NBIRTH")
	if hasBd {
		c.startSession(bd)
	}
	c.started, c.live = true, true
	c.node, c.devices, c.aliases = newScope(), map[string]*scope{}, map[uint64]aliasUse{}
	c.dataSeen, c.expDone = false, false
	c.birthMetrics("", c.node, p.Metrics)
}

// startSession moves the bdSeq state on for an NBIRTH with bdSeq bd: a rebirth keeps the
// live session's bdSeq; any other NBIRTH is a new MQTT session whose bdSeq must differ from
// the one of the last death (it increments on every connect).
func (c *checker) startSession(bd uint64) {
	if c.live && c.hasCur && bd == c.cur {
		return // rebirth
	}
	if bd > 255 {
		c.fail(ruleBdSeqInc, "bdSeq %d exceeds 255", bd)
	}
	if c.hasDead && bd == c.dead {
		c.fail(ruleBdSeqInc, "bdSeq %d again after the NDEATH with bdSeq %d: not incremented on reconnect", bd, c.dead)
	}
	c.hasPrev, c.prev = c.hasCur, c.cur
	c.hasCur, c.cur = true, bd
}

// nbirthBdSeq returns the NBIRTH's bdSeq metric, which must be an Int64 in long_value.
func (c *checker) nbirthBdSeq(p *sparkplug.Payload) (uint64, bool) {
	m, ok := metricNamed(p, sparkplug.MetricBdSeq)
	switch {
	case !ok:
		c.fail(ruleBdSeq, "no %s metric", sparkplug.MetricBdSeq)
		return 0, false
	case m.Datatype != sparkplug.TypeInt64 || m.Value.Kind != sparkplug.KindLong:
		c.fail(ruleBdSeq, "%s is datatype %d in value kind %d, want Int64 in long_value", sparkplug.MetricBdSeq, m.Datatype, m.Value.Kind)
		return 0, false
	}
	return m.Value.Bits, true
}

// checkRebirthMetric: NBIRTH has Node Control/Rebirth, Boolean, false, without alias.
func (c *checker) checkRebirthMetric(p *sparkplug.Payload) {
	m, ok := metricNamed(p, sparkplug.MetricRebirth)
	switch {
	case !ok:
		c.fail(ruleRebirth, "no %q metric", sparkplug.MetricRebirth)
	case m.Datatype != sparkplug.TypeBoolean:
		c.fail(ruleRebirth, "%q has datatype %d, want Boolean", sparkplug.MetricRebirth, m.Datatype)
	case m.IsNull || m.Value.Kind != sparkplug.KindBool || m.Value.Bits != 0:
		c.fail(ruleRebirth, "%q is %+v (null %v), want boolean_value false", sparkplug.MetricRebirth, m.Value, m.IsNull)
	case m.HasAlias:
		c.fail(ruleRebirth, "%q has alias %d; docs/sparkplug.md: no alias", sparkplug.MetricRebirth, m.Alias)
	}
}

func metricNamed(p *sparkplug.Payload, name string) (sparkplug.Metric, bool) {
	for _, m := range p.Metrics {
		if m.Name == name {
			return m, true
		}
	}
	return sparkplug.Metric{}, false
}

// dbirth checks a DBIRTH and (re)defines the device's metrics and aliases.
func (c *checker) dbirth(device string, p *sparkplug.Payload) {
	if !c.inSession() {
		return
	}
	for a, u := range c.aliases {
		if u.device == device {
			delete(c.aliases, a)
		}
	}
	s := newScope()
	c.devices[device] = s
	c.birthMetrics(device, s, p.Metrics)
}

// data checks an NDATA or DDATA against the births of the session.
func (c *checker) data(t sparkplug.Topic, p *sparkplug.Payload) {
	if !c.inSession() {
		return
	}
	if !c.dataSeen {
		c.dataSeen = true
		c.checkExpected("before the first DATA")
	}
	s := c.node
	if t.Type == sparkplug.DDATA {
		s = c.devices[t.Device]
		switch {
		case s == nil:
			c.fail(ruleDDataOrder, "device %q is not born in this session", t.Device)
			return
		case !s.alive:
			c.fail(RuleDataAfterDeath, "device %q is dead (DDEATH) and not born again", t.Device)
			return
		}
	}
	for i := range p.Metrics {
		c.dataMetric(s, &p.Metrics[i])
	}
}

// ddeath marks a device dead until its next DBIRTH.
func (c *checker) ddeath(device string) {
	if !c.inSession() {
		return
	}
	if s := c.devices[device]; s != nil {
		s.alive = false
	}
}

// ndeath checks an NDEATH (the will, or the intentional one): no seq, exactly one metric
// bdSeq (Int64, long_value) equal to the live session's. It ends the session. An NDEATH with
// the previous session's bdSeq is that session's will arriving late and is ignored, as a host
// does; one outside a session ends a connection that never got to birth.
func (c *checker) ndeath(p *sparkplug.Payload) {
	if p.HasSeq {
		c.fail(rulesFor[sparkplug.NDEATH].seq, "seq %d present; NDEATH carries none", p.Seq)
	}
	bd, ok := c.ndeathBdSeq(p)
	if !ok {
		return
	}
	switch {
	case c.live && c.hasCur && bd == c.cur:
		c.checkExpected("before the NDEATH")
		c.live, c.seqKnown = false, false
		c.hasDead, c.dead = true, bd
	case c.live && c.hasPrev && bd == c.prev:
		// The previous connection's will, delivered after the new NBIRTH.
	case c.live && c.hasCur:
		c.fail(ruleNDeathBdSeq, "bdSeq %d, the session's NBIRTH has %d", bd, c.cur)
	case c.live:
		// The NBIRTH had no usable bdSeq (reported there): end the session all the same.
		c.live, c.seqKnown = false, false
		c.hasDead, c.dead = true, bd
	default:
		c.hasDead, c.dead = true, bd
	}
}

func (c *checker) ndeathBdSeq(p *sparkplug.Payload) (uint64, bool) {
	if len(p.Metrics) != 1 || p.Metrics[0].Name != sparkplug.MetricBdSeq {
		c.fail(ruleNDeathPay, "%d metrics, want exactly one, %s", len(p.Metrics), sparkplug.MetricBdSeq)
		if m, ok := metricNamed(p, sparkplug.MetricBdSeq); ok && m.Value.Kind == sparkplug.KindLong {
			return m.Value.Bits, true
		}
		return 0, false
	}
	m := p.Metrics[0]
	if m.Datatype != sparkplug.TypeInt64 || m.Value.Kind != sparkplug.KindLong {
		c.fail(ruleNDeathPay, "%s is datatype %d in value kind %d, want Int64 in long_value", sparkplug.MetricBdSeq, m.Datatype, m.Value.Kind)
		return 0, false
	}
	return m.Value.Bits, true
}
