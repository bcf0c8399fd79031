package sphost

import (
	"github.com/wellgate/wellgate/sparkplug"
)

// Streams that each break one rule of the session structure.
func sessionCases() []failCase {
	noSeq := func(i int) func([]Message) []Message {
		return each(i, func(_ *Message, p *sparkplug.Payload) { p.HasSeq = false })
	}
	cs := []failCase{
		{name: "NBIRTH seq 1", rule: "payloads-nbirth-seq", mut: each(iNBirth, func(_ *Message, p *sparkplug.Payload) { p.Seq = 1 })},
		{name: "NBIRTH without seq", rule: "payloads-nbirth-seq", mut: noSeq(iNBirth)},
		{name: "no seq", rule: "payloads-dbirth-seq", mut: noSeq(iDBirth2)},
		{name: "no seq", rule: "payloads-ndata-seq", mut: noSeq(iNData)},
		{name: "no seq", rule: "payloads-ddata-seq", mut: noSeq(iDData1)},
		{name: "no seq", rule: "payloads-ddeath-seq", mut: noSeq(iDDeath2)},
		{name: "seq skipped", rule: "payloads-dbirth-seq-inc", mut: skipSeq(iDBirth2)},
		{name: "seq skipped", rule: "payloads-ndata-seq-inc", mut: skipSeq(iNData)},
		{name: "seq skipped", rule: "payloads-ddata-seq-inc", mut: skipSeq(iDData1)},
		{name: "seq skipped", rule: "payloads-ddeath-seq-inc", mut: skipSeq(iDDeath2)},
		{name: "seq 256 instead of 0", rule: "payloads-ddata-seq-inc", exp: func(e *Expect) { e.Devices = nil }, mut: func(ms []Message) []Message {
			b := &builder{aliases: true}
			b.nbirth(3).dbirth("PLC1")
			for range 254 {
				b.ddata("PLC1")
			}
			b.msgs[len(b.msgs)-1].Payload.Seq = 256 // where 0 is due
			return b.ndeath(3).msgs
		}},
		{name: "NDEATH with seq", rule: "payloads-ndeath-seq", mut: each(iNDeath, func(_ *Message, p *sparkplug.Payload) { p.Seq, p.HasSeq = 16, true })},
		{name: "NDATA after NDEATH", rule: "principles-birth-certificates-order", mut: func(ms []Message) []Message {
			return append(ms, one(true, func(b *builder) { b.ndata() }))
		}},
		{name: "DDATA before the first NBIRTH", rule: "principles-birth-certificates-order", mut: func(ms []Message) []Message {
			return append([]Message{one(true, func(b *builder) { b.ddata("PLC1") })}, ms...)
		}},
		{name: "DBIRTH missing after rebirth", rule: "payloads-dbirth-order", mut: func(ms []Message) []Message { return remove(ms, iReDBirth2) }},
		{name: "expected device never born before NDEATH", rule: "payloads-dbirth-order", mut: func(ms []Message) []Message {
			return remove(remove(ms, iNBirth2+3), iNBirth2+2) // session 2: NBIRTH, DBIRTH PLC1, NDEATH
		}},
		{name: "DDATA of a device not born", rule: "payloads-ddata-order", exp: func(e *Expect) { e.Devices = nil },
			mut: func(ms []Message) []Message {
				return insert(ms, iDBirth2, one(true, func(b *builder) { b.ddata("PLC2") }))
			}},
		{name: "DDATA after DDEATH", rule: RuleDataAfterDeath, mut: func(ms []Message) []Message {
			return insert(ms, iDDeath2+1, one(true, func(b *builder) { b.ddata("PLC2") }))
		}},
	}
	return append(cs, bdSeqCases()...)
}

func bdSeqCases() []failCase {
	return []failCase{
		{name: "no bdSeq", rule: "payloads-nbirth-bdseq", mut: each(iNBirth, func(_ *Message, p *sparkplug.Payload) {
			p.Metrics = p.Metrics[1:]
		})},
		{name: "bdSeq UInt64", rule: "payloads-nbirth-bdseq", mut: each(iNBirth, func(_ *Message, p *sparkplug.Payload) {
			metricP(p, sparkplug.MetricBdSeq).Datatype = sparkplug.TypeUInt64
		})},
		{name: "bdSeq in int_value", rule: "payloads-nbirth-bdseq", mut: each(iNBirth, func(_ *Message, p *sparkplug.Payload) {
			metricP(p, sparkplug.MetricBdSeq).Value.Kind = sparkplug.KindInt
		})},
		{name: "same bdSeq after NDEATH", rule: "payloads-nbirth-bdseq-inc", mut: setBdSeq(3, iNBirth2, iNDeath2)},
		{name: "bdSeq 256", rule: "payloads-nbirth-bdseq-inc", mut: setBdSeq(256, iNBirth, iReNBirth, iNDeath)},
		{name: "no rebirth metric", rule: "payloads-nbirth-rebirth-req", mut: each(iNBirth, func(_ *Message, p *sparkplug.Payload) {
			p.Metrics = append(p.Metrics[:1], p.Metrics[2:]...)
		})},
		{name: "rebirth Int32", rule: "payloads-nbirth-rebirth-req", mut: each(iNBirth, func(_ *Message, p *sparkplug.Payload) {
			metricP(p, sparkplug.MetricRebirth).Datatype = sparkplug.TypeInt32
		})},
		{name: "rebirth true", rule: "payloads-nbirth-rebirth-req", mut: each(iReNBirth, func(_ *Message, p *sparkplug.Payload) {
			metricP(p, sparkplug.MetricRebirth).Value.Bits = 1
		})},
		{name: "rebirth with alias", rule: "payloads-nbirth-rebirth-req", mut: each(iNBirth, func(_ *Message, p *sparkplug.Payload) {
			m := metricP(p, sparkplug.MetricRebirth)
			m.Alias, m.HasAlias = 99, true
		})},
		{name: "NDEATH bdSeq of no session", rule: "payloads-ndeath-bdseq", mut: setBdSeq(9, iNDeath)},
		{name: "NDEATH with two metrics", rule: "topics-ndeath-payload", mut: each(iNDeath, func(_ *Message, p *sparkplug.Payload) {
			p.Metrics = append(p.Metrics, sparkplug.Metric{Name: "x", Datatype: sparkplug.TypeBoolean, Value: wBool(true)})
		})},
		{name: "NDEATH bdSeq UInt64", rule: "topics-ndeath-payload", mut: each(iNDeath, func(_ *Message, p *sparkplug.Payload) {
			p.Metrics[0].Datatype = sparkplug.TypeUInt64
		})},
	}
}

// Streams that each break one rule of births.
func birthCases() []failCase {
	dev := func(i int, name string, f func(m *sparkplug.Metric)) func([]Message) []Message {
		return each(i, func(_ *Message, p *sparkplug.Payload) { f(metricP(p, name)) })
	}
	return []failCase{
		{name: "birth metric without name", rule: "payloads-name-requirement", mut: dev(iDBirth1, "Name", func(m *sparkplug.Metric) { m.Name = "" })},
		{name: "no datatype", rule: "payloads-metric-datatype-req", mut: dev(iDBirth1, "Name", func(m *sparkplug.Metric) { m.Datatype = 0 })},
		{name: "datatype 40", rule: "payloads-metric-datatype-value", mut: dev(iDBirth1, "Name", func(m *sparkplug.Metric) { m.Datatype = 40 })},
		{name: "datatype PropertySet", rule: "payloads-metric-datatype-value", mut: dev(iDBirth1, "Name", func(m *sparkplug.Metric) { m.Datatype = sparkplug.TypePropertySet })},
		{name: "birth metric without timestamp", rule: "payloads-name-birth-data-requirement", mut: dev(iNBirth, "Temp", func(m *sparkplug.Metric) { m.HasTimestamp = false })},
		{name: "no alias", rule: "payloads-alias-birth-requirement", mut: dev(iDBirth1, "Name", func(m *sparkplug.Metric) { m.HasAlias = false })},
		{name: "device alias reuses another device's", rule: "payloads-alias-uniqueness", mut: dev(iDBirth2, "Run", func(m *sparkplug.Metric) { m.Alias = 10 })},
		{name: "device alias reuses the node's", rule: "payloads-alias-uniqueness", mut: dev(iReDBirth1, "Name", func(m *sparkplug.Metric) { m.Alias = 1 })},
		{name: "alias with aliases off", rule: RuleAliasesOff, noAlias: true, mut: dev(iDBirth1, "Name", func(m *sparkplug.Metric) { m.Alias, m.HasAlias = 11, true })},
		{name: "null with a value", rule: RuleNullValue, mut: dev(iDBirth1, "Spare", func(m *sparkplug.Metric) { m.Value = wInt(1) })},
		{name: "no value, not null", rule: RuleValueKind, mut: dev(iDBirth2, "Run", func(m *sparkplug.Metric) { m.Value = sparkplug.WireValue{} })},
		{name: "UInt32 in long_value", rule: RuleValueKind, mut: dev(iDBirth2, "Count", func(m *sparkplug.Metric) { m.Value.Kind = sparkplug.KindLong })},
		{name: "Float in double_value", rule: RuleValueKind, mut: dev(iNBirth, "Temp", func(m *sparkplug.Metric) { m.Value.Kind = sparkplug.KindDouble })},
		{name: "historical in DBIRTH", rule: RuleHistorical, mut: dev(iDBirth2, "Run", func(m *sparkplug.Metric) { m.IsHistorical = true })},
		{name: "Quality Int64", rule: "payloads-propertyset-quality-value-type", mut: dev(iDBirth1, "Name", func(m *sparkplug.Metric) {
			m.Properties.Values[0].Type = sparkplug.TypeInt64
		})},
		{name: "Quality 100", rule: "payloads-propertyset-quality-value-value", mut: dev(iDBirth1, "Name", func(m *sparkplug.Metric) {
			m.Properties.Values[0].Value.Bits = 100
		})},
		{name: "Quality in long_value", rule: "payloads-propertyset-quality-value-value", mut: dev(iDBirth1, "Name", func(m *sparkplug.Metric) {
			m.Properties.Values[0].Value.Kind = sparkplug.KindLong
		})},
		{name: "more keys than values", rule: "payloads-propertyset-keys-array-size", mut: dev(iDBirth1, "Name", func(m *sparkplug.Metric) {
			m.Properties.Keys = append(m.Properties.Keys, "engUnit")
		})},
	}
}

// Streams that each break one rule of NDATA and DDATA.
func dataCases() []failCase {
	metric0 := func(i int, f func(m *sparkplug.Metric)) func([]Message) []Message {
		return each(i, func(_ *Message, p *sparkplug.Payload) { f(&p.Metrics[0]) })
	}
	return []failCase{
		{name: "DATA metric without timestamp", rule: "payloads-name-birth-data-requirement", mut: metric0(iDData1, func(m *sparkplug.Metric) { m.HasTimestamp = false })},
		{name: "name with the alias", rule: "payloads-alias-data-cmd-requirement", mut: metric0(iDData1, func(m *sparkplug.Metric) { m.Name = "Level" })},
		{name: "name instead of the alias", rule: "payloads-alias-data-cmd-requirement", mut: metric0(iNData, func(m *sparkplug.Metric) {
			m.Name, m.HasAlias = "Temp", false
		})},
		{name: "no name without aliases", rule: "payloads-name-requirement", noAlias: true, mut: metric0(iNData, func(m *sparkplug.Metric) { m.Name = "" })},
		{name: "alias with aliases off", rule: RuleAliasesOff, noAlias: true, mut: metric0(iNData, func(m *sparkplug.Metric) { m.Alias, m.HasAlias = 1, true })},
		{name: "unknown alias", rule: RuleDataBorn, mut: metric0(iDData1, func(m *sparkplug.Metric) { m.Alias = 99 })},
		{name: "another device's alias", rule: RuleDataBorn, mut: metric0(iDData1, func(m *sparkplug.Metric) { m.Alias = 20 })},
		{name: "the node's metric in DDATA", rule: RuleDataBorn, noAlias: true, mut: metric0(iDData1, func(m *sparkplug.Metric) { m.Name = "Temp" })},
		{name: "UInt16 in long_value", rule: RuleValueKind, mut: metric0(iDData1, func(m *sparkplug.Metric) { m.Value.Kind = sparkplug.KindLong })},
		{name: "null with a value", rule: RuleNullValue, mut: metric0(iReDData1, func(m *sparkplug.Metric) { m.IsNull = true })},
		{name: "Quality 193", rule: "payloads-propertyset-quality-value-value", mut: metric0(iDData1, func(m *sparkplug.Metric) { m.Properties = quality(193) })},
	}
}
