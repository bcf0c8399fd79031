package sphost

import (
	"fmt"

	"github.com/wellgate/wellgate/sparkplug"
)

// birthMetrics checks the metrics of an NBIRTH (device "") or DBIRTH and records them in s.
func (c *checker) birthMetrics(device string, s *scope, ms []sparkplug.Metric) {
	for i := range ms {
		m := &ms[i]
		if m.Name == "" {
			c.fail(ruleName, "metric %d has no name", i)
		}
		switch {
		case m.Datatype == sparkplug.TypeUnknown:
			c.fail(ruleDatatypeReq, "metric %q has no datatype", m.Name)
		case !validDatatype(m.Datatype):
			c.fail(ruleDatatypeVal, "metric %q has datatype %d, not a Sparkplug metric data type", m.Name, m.Datatype)
		}
		if !m.HasTimestamp {
			c.fail(ruleMetricTime, "metric %q has no timestamp", m.Name)
		}
		if m.IsHistorical {
			c.fail(RuleHistorical, "metric %q is historical; births carry current values", m.Name)
		}
		if device != "" || m.Name != sparkplug.MetricBdSeq && m.Name != sparkplug.MetricRebirth {
			c.checkValue(m, m.Datatype) // else nbirthBdSeq, checkRebirthMetric
		}
		c.checkProperties(m)
		c.birthAlias(device, m)
		s.byName[m.Name] = m.Datatype
		if m.HasAlias {
			s.byAlias[m.Alias] = m.Name
		}
	}
}

// birthAlias checks a born metric's alias: with aliases on, every metric has one (bdSeq may
// go without, Node Control/Rebirth must — checked with the NBIRTH) unique across the node and
// its devices; with aliases off, none has one.
func (c *checker) birthAlias(device string, m *sparkplug.Metric) {
	reserved := device == "" && (m.Name == sparkplug.MetricBdSeq || m.Name == sparkplug.MetricRebirth)
	switch {
	case device == "" && m.Name == sparkplug.MetricRebirth:
		return // checkRebirthMetric
	case !c.exp.Aliases && m.HasAlias:
		c.fail(RuleAliasesOff, "metric %q has alias %d with aliases off", m.Name, m.Alias)
		return
	case !c.exp.Aliases:
		return
	case !m.HasAlias:
		if !reserved {
			c.fail(ruleAliasBirth, "metric %q has no alias", m.Name)
		}
		return
	}
	use := aliasUse{device: device, name: m.Name}
	if prev, dup := c.aliases[m.Alias]; dup && prev != use {
		c.fail(ruleAliasUnique, "alias %d of %q (device %q) already belongs to %q (device %q)", m.Alias, m.Name, device, prev.name, prev.device)
		return
	}
	c.aliases[m.Alias] = use
}

// dataMetric checks one metric of an NDATA or DDATA whose births are s.
func (c *checker) dataMetric(s *scope, m *sparkplug.Metric) {
	if !m.HasTimestamp {
		c.fail(ruleMetricTime, "metric %s has no timestamp", label(m))
	}
	name, known := c.resolve(s, m)
	if !known {
		return
	}
	dt, born := s.byName[name]
	if !born {
		c.fail(RuleDataBorn, "metric %s was not in this session's birth", label(m))
		return
	}
	c.checkValue(m, dt)
	c.checkProperties(m)
}

// resolve names a DATA metric: by alias only with aliases on, by name otherwise. It reports
// metrics that cannot be resolved.
func (c *checker) resolve(s *scope, m *sparkplug.Metric) (string, bool) {
	if !c.exp.Aliases {
		if m.HasAlias {
			c.fail(RuleAliasesOff, "metric %s has an alias with aliases off", label(m))
		}
		if m.Name == "" {
			c.fail(ruleName, "metric %s has no name", label(m))
			return "", false
		}
		return m.Name, true
	}
	if m.Name != "" || !m.HasAlias {
		c.fail(ruleAliasData, "metric %s: with aliases, DATA carries the alias only", label(m))
	}
	if !m.HasAlias {
		return m.Name, m.Name != ""
	}
	name, ok := s.byAlias[m.Alias]
	if !ok {
		c.fail(RuleDataBorn, "metric alias %d was not in this session's birth", m.Alias)
	}
	return name, ok
}

func label(m *sparkplug.Metric) string {
	switch {
	case m.Name != "" && m.HasAlias:
		return fmt.Sprintf("%q (alias %d)", m.Name, m.Alias)
	case m.Name != "":
		return fmt.Sprintf("%q", m.Name)
	case m.HasAlias:
		return fmt.Sprintf("alias %d", m.Alias)
	}
	return "without name or alias"
}

// checkValue checks that a null metric has no value and any other metric has the value field
// of its datatype dt (docs/sparkplug.md [metric-value-kind]).
func (c *checker) checkValue(m *sparkplug.Metric, dt sparkplug.DataType) {
	if m.IsNull {
		if m.Value.Kind != sparkplug.KindNone {
			c.fail(RuleNullValue, "metric %s is null and has a value", label(m))
		}
		return
	}
	want, ok := kindOf(dt)
	if ok && m.Value.Kind != want {
		c.fail(RuleValueKind, "metric %s of datatype %d has value kind %d, want %d", label(m), dt, m.Value.Kind, want)
	}
}

// kindOf is the value field of a metric data type; ok is false for types not checked.
func kindOf(dt sparkplug.DataType) (k sparkplug.Kind, ok bool) {
	switch dt {
	case sparkplug.TypeInt8, sparkplug.TypeInt16, sparkplug.TypeInt32,
		sparkplug.TypeUInt8, sparkplug.TypeUInt16, sparkplug.TypeUInt32:
		return sparkplug.KindInt, true
	case sparkplug.TypeInt64, sparkplug.TypeUInt64, sparkplug.TypeDateTime:
		return sparkplug.KindLong, true
	case sparkplug.TypeFloat:
		return sparkplug.KindFloat, true
	case sparkplug.TypeDouble:
		return sparkplug.KindDouble, true
	case sparkplug.TypeBoolean:
		return sparkplug.KindBool, true
	case sparkplug.TypeString, sparkplug.TypeText, sparkplug.TypeUUID:
		return sparkplug.KindString, true
	case sparkplug.TypeBytes, sparkplug.TypeFile:
		return sparkplug.KindBytes, true
	case sparkplug.TypeDataSet, sparkplug.TypeTemplate:
		return sparkplug.KindOther, true
	}
	if dt >= 22 && dt <= 34 { // array types: packed little-endian bytes
		return sparkplug.KindBytes, true
	}
	return sparkplug.KindNone, false
}

// validDatatype: the metric data types of the spec, 1 … 19 and the arrays 22 … 34
// (PropertySet and PropertySetList are property value types only).
func validDatatype(dt sparkplug.DataType) bool {
	return dt >= sparkplug.TypeInt8 && dt <= sparkplug.TypeTemplate || dt >= 22 && dt <= 34
}

// Quality codes of the Quality property.
const (
	qualityBad   = 0
	qualityGood  = 192
	qualityStale = 500
)

// checkProperties checks the property set's shape and the Quality property, if present.
func (c *checker) checkProperties(m *sparkplug.Metric) {
	ps := m.Properties
	if ps == nil {
		return
	}
	if len(ps.Keys) != len(ps.Values) {
		c.fail(rulePropSizes, "metric %s: %d property keys, %d values", label(m), len(ps.Keys), len(ps.Values))
	}
	q, ok := ps.Get(sparkplug.PropQuality)
	if !ok {
		return
	}
	if q.Type != sparkplug.TypeInt32 {
		c.fail(ruleQualityType, "metric %s: Quality property of type %d, want Int32 (3)", label(m), q.Type)
	}
	switch {
	case q.IsNull || q.Value.Kind != sparkplug.KindInt:
		c.fail(ruleQualityValue, "metric %s: Quality property is %+v (null %v), want int_value", label(m), q.Value, q.IsNull)
	case q.Value.Bits != qualityBad && q.Value.Bits != qualityGood && q.Value.Bits != qualityStale:
		c.fail(ruleQualityValue, "metric %s: Quality %d, want 0, 192 or 500", label(m), q.Value.Bits)
	}
}
