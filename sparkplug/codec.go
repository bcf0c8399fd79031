package sparkplug

import (
	"google.golang.org/protobuf/encoding/protowire"
)

// DataType is a Sparkplug B metric data type. The numbers are the protobuf DataType numbers and
// equal drivers.Type for the types a tag can have.
type DataType uint32

// Sparkplug B data types.
const (
	TypeUnknown     DataType = 0
	TypeInt8        DataType = 1
	TypeInt16       DataType = 2
	TypeInt32       DataType = 3
	TypeInt64       DataType = 4
	TypeUInt8       DataType = 5
	TypeUInt16      DataType = 6
	TypeUInt32      DataType = 7
	TypeUInt64      DataType = 8
	TypeFloat       DataType = 9
	TypeDouble      DataType = 10
	TypeBoolean     DataType = 11
	TypeString      DataType = 12
	TypeDateTime    DataType = 13
	TypeText        DataType = 14
	TypeUUID        DataType = 15
	TypeDataSet     DataType = 16
	TypeBytes       DataType = 17
	TypeFile        DataType = 18
	TypeTemplate    DataType = 19
	TypePropertySet DataType = 20
)

// Kind says which field of a value oneof is set on the wire.
type Kind uint8

// Value kinds. KindOther is a oneof member this package does not interpret (DataSet, Template,
// nested property sets): it was present on the wire and skipped.
const (
	KindNone   Kind = iota // no value field
	KindInt                // int_value (uint32)
	KindLong               // long_value (uint64)
	KindFloat              // float_value (Bits holds math.Float32bits)
	KindDouble             // double_value (Bits holds math.Float64bits)
	KindBool               // boolean_value (Bits 0 or 1)
	KindString             // string_value (Str)
	KindBytes              // bytes_value (Bytes)
	KindOther
)

// WireValue is the value oneof of a Metric or PropertyValue as it is on the wire.
type WireValue struct {
	Kind  Kind
	Bits  uint64 // KindInt, KindLong, KindFloat, KindDouble, KindBool
	Str   string // KindString
	Bytes []byte // KindBytes
}

// Payload is a Sparkplug B payload. Scalars with a Has* flag are optional on the wire: they are
// written only when the flag is set, whatever their value.
type Payload struct {
	Timestamp    uint64 // ms since the Unix epoch, UTC
	HasTimestamp bool
	Metrics      []Metric
	Seq          uint64
	HasSeq       bool
	UUID         string
	HasUUID      bool
	Body         []byte // written when non-nil
}

// Metric is one Sparkplug B metric. Name is written when non-empty; Datatype when non-zero.
type Metric struct {
	Name         string
	Alias        uint64
	HasAlias     bool
	Timestamp    uint64
	HasTimestamp bool
	Datatype     DataType
	IsHistorical bool
	IsTransient  bool
	IsNull       bool
	Properties   *PropertySet
	Value        WireValue
}

// PropertySet is a metric's property set: Keys[i] names Values[i].
type PropertySet struct {
	Keys   []string
	Values []PropertyValue
}

// PropertyValue is one property value. Value.Kind may be KindInt … KindString.
type PropertyValue struct {
	Type   DataType
	IsNull bool
	Value  WireValue
}

// Get returns the value of the property named key.
func (ps *PropertySet) Get(key string) (PropertyValue, bool) {
	if ps == nil {
		return PropertyValue{}, false
	}
	for i, k := range ps.Keys {
		if k == key && i < len(ps.Values) {
			return ps.Values[i], true
		}
	}
	return PropertyValue{}, false
}

// Add appends a property.
func (ps *PropertySet) Add(key string, v PropertyValue) {
	ps.Keys = append(ps.Keys, key)
	ps.Values = append(ps.Values, v)
}

// Field numbers of the Sparkplug B schema.
const (
	fPayloadTimestamp = 1
	fPayloadMetrics   = 2
	fPayloadSeq       = 3
	fPayloadUUID      = 4
	fPayloadBody      = 5

	fMetricName       = 1
	fMetricAlias      = 2
	fMetricTimestamp  = 3
	fMetricDatatype   = 4
	fMetricHistorical = 5
	fMetricTransient  = 6
	fMetricIsNull     = 7
	fMetricMetadata   = 8
	fMetricProperties = 9
	fMetricValueFirst = 10 // int_value; the oneof runs 10 … 18
	fMetricDataSet    = 17
	fMetricTemplate   = 18

	fPropKeys   = 1
	fPropValues = 2

	fPVType       = 1
	fPVIsNull     = 2
	fPVValueFirst = 3 // int_value; the oneof runs 3 … 10 (9, 10: nested property sets)
)

// Marshal returns the payload's protobuf encoding.
func (p *Payload) Marshal() []byte { return p.AppendMarshal(nil) }

// AppendMarshal appends the payload's protobuf encoding to b and returns the extended slice.
// It allocates only when b lacks capacity.
func (p *Payload) AppendMarshal(b []byte) []byte {
	if p.HasTimestamp {
		b = protowire.AppendTag(b, fPayloadTimestamp, protowire.VarintType)
		b = protowire.AppendVarint(b, p.Timestamp)
	}
	for i := range p.Metrics {
		b = protowire.AppendTag(b, fPayloadMetrics, protowire.BytesType)
		start := len(b)
		b = p.Metrics[i].appendBody(b)
		b = insertLength(b, start)
	}
	if p.HasSeq {
		b = protowire.AppendTag(b, fPayloadSeq, protowire.VarintType)
		b = protowire.AppendVarint(b, p.Seq)
	}
	if p.HasUUID {
		b = protowire.AppendTag(b, fPayloadUUID, protowire.BytesType)
		b = protowire.AppendString(b, p.UUID)
	}
	if p.Body != nil {
		b = protowire.AppendTag(b, fPayloadBody, protowire.BytesType)
		b = protowire.AppendBytes(b, p.Body)
	}
	return b
}

// insertLength turns b[start:] into a length-delimited field body by inserting its length as a
// varint at start. Submessages are small, so moving them is cheaper than sizing them twice.
func insertLength(b []byte, start int) []byte {
	n := len(b) - start
	sz := protowire.SizeVarint(uint64(n))
	for range sz {
		b = append(b, 0)
	}
	copy(b[start+sz:], b[start:start+n])
	protowire.AppendVarint(b[start:start], uint64(n))
	return b
}

func appendVarintField(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendBoolField(b []byte, num protowire.Number, v bool) []byte {
	return appendVarintField(b, num, protowire.EncodeBool(v))
}

func (m *Metric) appendBody(b []byte) []byte {
	if m.Name != "" {
		b = protowire.AppendTag(b, fMetricName, protowire.BytesType)
		b = protowire.AppendString(b, m.Name)
	}
	if m.HasAlias {
		b = appendVarintField(b, fMetricAlias, m.Alias)
	}
	if m.HasTimestamp {
		b = appendVarintField(b, fMetricTimestamp, m.Timestamp)
	}
	if m.Datatype != 0 {
		b = appendVarintField(b, fMetricDatatype, uint64(m.Datatype))
	}
	if m.IsHistorical {
		b = appendBoolField(b, fMetricHistorical, true)
	}
	if m.IsTransient {
		b = appendBoolField(b, fMetricTransient, true)
	}
	if m.IsNull {
		b = appendBoolField(b, fMetricIsNull, true)
	}
	if m.Properties != nil {
		b = protowire.AppendTag(b, fMetricProperties, protowire.BytesType)
		start := len(b)
		b = m.Properties.appendBody(b)
		b = insertLength(b, start)
	}
	if !m.IsNull {
		b = m.Value.append(b, fMetricValueFirst)
	}
	return b
}

func (ps *PropertySet) appendBody(b []byte) []byte {
	for _, k := range ps.Keys {
		b = protowire.AppendTag(b, fPropKeys, protowire.BytesType)
		b = protowire.AppendString(b, k)
	}
	for i := range ps.Values {
		v := &ps.Values[i]
		b = protowire.AppendTag(b, fPropValues, protowire.BytesType)
		start := len(b)
		if v.Type != 0 {
			b = appendVarintField(b, fPVType, uint64(v.Type))
		}
		if v.IsNull {
			b = appendBoolField(b, fPVIsNull, true)
		} else {
			b = v.Value.append(b, fPVValueFirst)
		}
		b = insertLength(b, start)
	}
	return b
}

// append writes the value's oneof field; first is the field number of int_value. KindBytes is
// only valid for metrics; KindNone and KindOther write nothing.
func (v *WireValue) append(b []byte, first protowire.Number) []byte {
	switch v.Kind {
	case KindInt:
		b = appendVarintField(b, first, uint64(uint32(v.Bits)))
	case KindLong:
		b = appendVarintField(b, first+1, v.Bits)
	case KindFloat:
		b = protowire.AppendTag(b, first+2, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, uint32(v.Bits))
	case KindDouble:
		b = protowire.AppendTag(b, first+3, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, v.Bits)
	case KindBool:
		b = appendBoolField(b, first+4, v.Bits != 0)
	case KindString:
		b = protowire.AppendTag(b, first+5, protowire.BytesType)
		b = protowire.AppendString(b, v.Str)
	case KindBytes:
		if first == fMetricValueFirst {
			b = protowire.AppendTag(b, first+6, protowire.BytesType)
			b = protowire.AppendBytes(b, v.Bytes)
		}
	}
	return b
}
