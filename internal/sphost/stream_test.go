package sphost

import (
	"math"

	"github.com/wellgate/wellgate/sparkplug"
)

// This file builds crafted message streams of one edge node, G/N, with the sparkplug codec.

const (
	tGroup = "G"
	tEdge  = "N"
	tTime  = 1_700_000_000_000
)

// builder assembles a stream as a QoS 1 subscriber would record it. Payloads go through
// Marshal and Unmarshal, so what Verify sees is what would be on the wire.
type builder struct {
	msgs    []Message
	seq     uint64
	qos     byte // DataQoS
	aliases bool
}

// add appends a message with the next seq (0 for NBIRTH, none for NDEATH and commands) and
// the QoS the node should use.
func (b *builder) add(typ sparkplug.MessageType, device string, p *sparkplug.Payload) *builder {
	p.Timestamp, p.HasTimestamp = tTime+uint64(len(b.msgs)), true
	qos := b.qos
	switch typ {
	case sparkplug.NBIRTH:
		b.seq = 0
		fallthrough
	case sparkplug.DBIRTH, sparkplug.NDATA, sparkplug.DDATA, sparkplug.DDEATH:
		p.Seq, p.HasSeq = b.seq, true
		b.seq = (b.seq + 1) % 256
	case sparkplug.NDEATH:
		qos = 1
	}
	raw := p.Marshal()
	dec, err := sparkplug.Unmarshal(raw)
	if err != nil {
		panic(err)
	}
	t := sparkplug.Topic{Group: tGroup, Type: typ, EdgeNode: tEdge, Device: device}
	b.msgs = append(b.msgs, Message{Topic: t, Raw: raw, Payload: dec, QoS: qos})
	return b
}

func wInt(v uint64) sparkplug.WireValue { return sparkplug.WireValue{Kind: sparkplug.KindInt, Bits: v} }
func wLong(v uint64) sparkplug.WireValue {
	return sparkplug.WireValue{Kind: sparkplug.KindLong, Bits: v}
}
func wBool(v bool) sparkplug.WireValue {
	if v {
		return sparkplug.WireValue{Kind: sparkplug.KindBool, Bits: 1}
	}
	return sparkplug.WireValue{Kind: sparkplug.KindBool}
}

func quality(code uint64) *sparkplug.PropertySet {
	ps := &sparkplug.PropertySet{}
	ps.Add(sparkplug.PropQuality, sparkplug.PropertyValue{Type: sparkplug.TypeInt32, Value: wInt(code)})
	return ps
}

// spec is one metric the test node has.
type spec struct {
	name  string
	alias uint64
	dt    sparkplug.DataType
	val   sparkplug.WireValue
	null  bool
}

var (
	nodeSpecs = []spec{{name: "Temp", alias: 1, dt: sparkplug.TypeFloat,
		val: sparkplug.WireValue{Kind: sparkplug.KindFloat, Bits: uint64(math.Float32bits(21.5))}}}
	deviceSpecs = map[string][]spec{
		"PLC1": {
			{name: "Level", alias: 10, dt: sparkplug.TypeUInt16, val: wInt(40)},
			{name: "Name", alias: 11, dt: sparkplug.TypeString, val: sparkplug.WireValue{Kind: sparkplug.KindString, Str: "sep"}},
			{name: "Spare", alias: 12, dt: sparkplug.TypeInt32, null: true},
		},
		"PLC2": {
			{name: "Pressure", alias: 20, dt: sparkplug.TypeDouble, val: sparkplug.WireValue{Kind: sparkplug.KindDouble, Bits: math.Float64bits(7.25)}},
			{name: "Count", alias: 21, dt: sparkplug.TypeUInt32, val: wInt(4_000_000_000)},
			{name: "When", alias: 22, dt: sparkplug.TypeDateTime, val: wLong(tTime)},
			{name: "Raw", alias: 23, dt: sparkplug.TypeBytes, val: sparkplug.WireValue{Kind: sparkplug.KindBytes, Bytes: []byte{1, 2}}},
			{name: "Run", alias: 24, dt: sparkplug.TypeBoolean, val: wBool(true)},
			{name: "Total", alias: 25, dt: sparkplug.TypeInt64, val: wLong(1 << 40)},
		},
	}
)

// born is the birth form of s: name, alias (with aliases), datatype, timestamp, value or
// is_null, and a Quality property.
func (b *builder) born(s spec) sparkplug.Metric {
	m := sparkplug.Metric{Name: s.name, Alias: s.alias, HasAlias: b.aliases, Datatype: s.dt,
		Timestamp: tTime, HasTimestamp: true, IsNull: s.null, Value: s.val, Properties: quality(192)}
	if s.null {
		m.Value, m.Properties = sparkplug.WireValue{}, quality(0)
	}
	return m
}

// changed is the DATA form of s: alias only with aliases, else name only.
func (b *builder) changed(s spec) sparkplug.Metric {
	m := sparkplug.Metric{Timestamp: tTime + 5, HasTimestamp: true, Value: s.val}
	if b.aliases {
		m.Alias, m.HasAlias = s.alias, true
	} else {
		m.Name = s.name
	}
	return m
}

func (b *builder) nbirth(bdSeq uint64) *builder {
	p := &sparkplug.Payload{Metrics: []sparkplug.Metric{
		{Name: sparkplug.MetricBdSeq, Datatype: sparkplug.TypeInt64, Timestamp: tTime, HasTimestamp: true, Value: wLong(bdSeq)},
		{Name: sparkplug.MetricRebirth, Datatype: sparkplug.TypeBoolean, Timestamp: tTime, HasTimestamp: true, Value: wBool(false)},
	}}
	for _, s := range nodeSpecs {
		p.Metrics = append(p.Metrics, b.born(s))
	}
	return b.add(sparkplug.NBIRTH, "", p)
}

func (b *builder) dbirth(device string) *builder {
	p := &sparkplug.Payload{}
	for _, s := range deviceSpecs[device] {
		p.Metrics = append(p.Metrics, b.born(s))
	}
	return b.add(sparkplug.DBIRTH, device, p)
}

// ddata reports the device's first metric changed.
func (b *builder) ddata(device string) *builder {
	return b.add(sparkplug.DDATA, device, &sparkplug.Payload{Metrics: []sparkplug.Metric{b.changed(deviceSpecs[device][0])}})
}

func (b *builder) ndata() *builder {
	return b.add(sparkplug.NDATA, "", &sparkplug.Payload{Metrics: []sparkplug.Metric{b.changed(nodeSpecs[0])}})
}

func (b *builder) ddeath(device string) *builder {
	return b.add(sparkplug.DDEATH, device, &sparkplug.Payload{})
}

func (b *builder) ndeath(bdSeq uint64) *builder {
	return b.add(sparkplug.NDEATH, "", &sparkplug.Payload{Metrics: []sparkplug.Metric{
		{Name: sparkplug.MetricBdSeq, Datatype: sparkplug.TypeInt64, Timestamp: tTime, HasTimestamp: true, Value: wLong(bdSeq)},
	}})
}

// ncmd is the host's rebirth request, recorded by the subscriber too.
func (b *builder) ncmd() *builder {
	p := &sparkplug.Payload{Metrics: []sparkplug.Metric{{Name: sparkplug.MetricRebirth, Datatype: sparkplug.TypeBoolean, Value: wBool(true)}}}
	return b.add(sparkplug.NCMD, "", p)
}

// Indexes of messages in validStream, for the mutations.
const (
	iNBirth     = 0
	iDBirth1    = 1
	iDBirth2    = 2
	iNData      = 3
	iDData1     = 4
	iDData2Hist = 5
	iDDeath2    = 6
	iDData1b    = 7
	iDBirth2b   = 8
	iDData2     = 9
	iNCmd       = 10
	iReNBirth   = 11
	iReDBirth1  = 12
	iReDBirth2  = 13
	iReDData1   = 14
	iNDeath     = 15
	iNBirth2    = 16
	iNDeath2    = 20
)

// validStream: a node with two devices and data, a device lost and born again, a rebirth
// asked by the host, an NDEATH, a reconnect with the next bdSeq, an intentional NDEATH.
func validStream(aliases bool, qos byte) []Message {
	b := &builder{aliases: aliases, qos: qos}
	b.nbirth(3).dbirth("PLC1").dbirth("PLC2").ndata().ddata("PLC1")
	hist := b.changed(deviceSpecs["PLC2"][0])
	hist.IsHistorical, hist.Timestamp = true, tTime-60_000 // store-and-forward backlog
	b.add(sparkplug.DDATA, "PLC2", &sparkplug.Payload{Metrics: []sparkplug.Metric{hist}})
	b.ddeath("PLC2").ddata("PLC1").dbirth("PLC2").ddata("PLC2")
	b.ncmd().nbirth(3).dbirth("PLC1").dbirth("PLC2").ddata("PLC1")
	b.ndeath(3)
	b.nbirth(4).dbirth("PLC1").dbirth("PLC2").ndata().ndeath(4)
	return b.msgs
}

// renumber gives the seq'd messages consecutive seqs again after a structural change.
func renumber(ms []Message) {
	var seq uint64
	for _, m := range ms {
		switch m.Topic.Type {
		case sparkplug.NBIRTH:
			seq = 0
			fallthrough
		case sparkplug.DBIRTH, sparkplug.NDATA, sparkplug.DDATA, sparkplug.DDEATH:
			m.Payload.Seq, m.Payload.HasSeq = seq, true
			seq = (seq + 1) % 256
		}
	}
}

// insert puts m at index i.
func insert(ms []Message, i int, m Message) []Message {
	ms = append(ms[:i], append([]Message{m}, ms[i:]...)...)
	renumber(ms)
	return ms
}

// remove drops the message at index i.
func remove(ms []Message, i int) []Message {
	ms = append(ms[:i], ms[i+1:]...)
	renumber(ms)
	return ms
}

// one builds a single message with the builder's settings (its seq is fixed by renumber).
func one(aliases bool, f func(b *builder)) Message {
	b := &builder{aliases: aliases}
	f(b)
	return b.msgs[0]
}
