package sparkplug

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// ErrMalformed is wrapped by every decoding error; match it with errors.Is.
var ErrMalformed = errors.New("malformed sparkplug payload")

// maxMetrics bounds the metrics of one payload (a guard against hostile inputs).
const maxMetrics = 1 << 20

// Unmarshal decodes a Sparkplug B payload. It accepts any bytes without panicking: unknown
// fields are skipped, a known field with the wrong wire type or a truncated field is an error
// wrapping ErrMalformed. Metadata, DataSet and Template contents are skipped (a DataSet or
// Template value is reported as KindOther).
func Unmarshal(b []byte) (*Payload, error) {
	p := &Payload{}
	err := walk(b, "payload", func(num protowire.Number, typ protowire.Type, b []byte) (n int, known bool, err error) {
		var v []byte
		switch num {
		case fPayloadTimestamp:
			p.Timestamp, n, err = consumeVarint(b, typ, "payload timestamp")
			p.HasTimestamp = true
		case fPayloadSeq:
			p.Seq, n, err = consumeVarint(b, typ, "payload seq")
			p.HasSeq = true
		case fPayloadUUID:
			v, n, err = consumeBytes(b, typ, "payload uuid")
			p.UUID, p.HasUUID = string(v), true
		case fPayloadBody:
			v, n, err = consumeBytes(b, typ, "payload body")
			p.Body = append([]byte{}, v...)
		case fPayloadMetrics:
			v, n, err = consumeBytes(b, typ, "metric")
			if err == nil {
				if len(p.Metrics) >= maxMetrics {
					return 0, true, fmt.Errorf("%w: more than %d metrics", ErrMalformed, maxMetrics)
				}
				p.Metrics = append(p.Metrics, Metric{})
				err = p.Metrics[len(p.Metrics)-1].unmarshal(v)
			}
		default:
			return 0, false, nil
		}
		return n, true, err
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// walk reads the fields of one protobuf message. field decodes a field it knows and returns
// the bytes it consumed; a field it does not know (known false) is skipped.
func walk(b []byte, what string, field func(num protowire.Number, typ protowire.Type, b []byte) (n int, known bool, err error)) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return wireErr(what, 0, n)
		}
		b = b[n:]
		n, known, err := field(num, typ, b)
		if err != nil {
			return err
		}
		if !known {
			if n = skipField(b, num, typ); n < 0 {
				return wireErr(what, num, n)
			}
		}
		b = b[n:]
	}
	return nil
}

func (m *Metric) unmarshal(b []byte) error {
	return walk(b, "metric", func(num protowire.Number, typ protowire.Type, b []byte) (n int, known bool, err error) {
		var v uint64
		var s []byte
		switch num {
		case fMetricName:
			s, n, err = consumeBytes(b, typ, "metric name")
			m.Name = string(s)
		case fMetricAlias:
			m.Alias, n, err = consumeVarint(b, typ, "metric alias")
			m.HasAlias = true
		case fMetricTimestamp:
			m.Timestamp, n, err = consumeVarint(b, typ, "metric timestamp")
			m.HasTimestamp = true
		case fMetricDatatype:
			v, n, err = consumeVarint(b, typ, "metric datatype")
			m.Datatype = DataType(uint32(v))
		case fMetricHistorical:
			v, n, err = consumeVarint(b, typ, "metric is_historical")
			m.IsHistorical = v != 0
		case fMetricTransient:
			v, n, err = consumeVarint(b, typ, "metric is_transient")
			m.IsTransient = v != 0
		case fMetricIsNull:
			v, n, err = consumeVarint(b, typ, "metric is_null")
			m.IsNull = v != 0
		case fMetricMetadata:
			_, n, err = consumeBytes(b, typ, "metric metadata")
		case fMetricProperties:
			s, n, err = consumeBytes(b, typ, "metric properties")
			if err == nil {
				m.Properties = &PropertySet{}
				err = m.Properties.unmarshal(s)
			}
		default:
			if num < fMetricValueFirst || num > fMetricTemplate {
				return 0, false, nil
			}
			n, err = m.Value.consume(b, num, typ, fMetricValueFirst, "metric value")
		}
		return n, true, err
	})
}

func (ps *PropertySet) unmarshal(b []byte) error {
	err := walk(b, "property set", func(num protowire.Number, typ protowire.Type, b []byte) (n int, known bool, err error) {
		var s []byte
		switch num {
		case fPropKeys:
			s, n, err = consumeBytes(b, typ, "property key")
			ps.Keys = append(ps.Keys, string(s))
		case fPropValues:
			s, n, err = consumeBytes(b, typ, "property value")
			if err == nil {
				ps.Values = append(ps.Values, PropertyValue{})
				err = ps.Values[len(ps.Values)-1].unmarshal(s)
			}
		default:
			return 0, false, nil
		}
		return n, true, err
	})
	if err != nil {
		return err
	}
	if len(ps.Keys) != len(ps.Values) {
		return fmt.Errorf("%w: property set has %d keys and %d values", ErrMalformed, len(ps.Keys), len(ps.Values))
	}
	return nil
}

func (pv *PropertyValue) unmarshal(b []byte) error {
	return walk(b, "property value", func(num protowire.Number, typ protowire.Type, b []byte) (n int, known bool, err error) {
		var v uint64
		switch {
		case num == fPVType:
			v, n, err = consumeVarint(b, typ, "property type")
			pv.Type = DataType(uint32(v))
		case num == fPVIsNull:
			v, n, err = consumeVarint(b, typ, "property is_null")
			pv.IsNull = v != 0
		case num >= fPVValueFirst && num <= fPVValueFirst+7:
			n, err = pv.Value.consume(b, num, typ, fPVValueFirst, "property value")
		default:
			return 0, false, nil
		}
		return n, true, err
	})
}

// consume reads one member of a value oneof; first is the field number of int_value. Members
// after string_value (bytes for metrics; DataSet, Template, nested property sets) other than
// metric bytes_value become KindOther. The last member on the wire wins, as in protobuf.
func (v *WireValue) consume(b []byte, num protowire.Number, typ protowire.Type, first protowire.Number, what string) (int, error) {
	*v = WireValue{}
	var n int
	var err error
	switch num - first {
	case 0:
		v.Kind = KindInt
		v.Bits, n, err = consumeVarint(b, typ, what)
		v.Bits = uint64(uint32(v.Bits))
	case 1:
		v.Kind = KindLong
		v.Bits, n, err = consumeVarint(b, typ, what)
	case 2:
		v.Kind = KindFloat
		if typ != protowire.Fixed32Type {
			return 0, typeErr(what, typ)
		}
		var x uint32
		x, n = protowire.ConsumeFixed32(b)
		v.Bits = uint64(x)
	case 3:
		v.Kind = KindDouble
		if typ != protowire.Fixed64Type {
			return 0, typeErr(what, typ)
		}
		v.Bits, n = protowire.ConsumeFixed64(b)
	case 4:
		v.Kind = KindBool
		v.Bits, n, err = consumeVarint(b, typ, what)
		if v.Bits != 0 {
			v.Bits = 1
		}
	case 5:
		v.Kind = KindString
		var s []byte
		s, n, err = consumeBytes(b, typ, what)
		v.Str = string(s)
	default:
		var s []byte
		s, n, err = consumeBytes(b, typ, what)
		if first == fMetricValueFirst && num == fMetricValueFirst+6 {
			v.Kind, v.Bytes = KindBytes, append([]byte{}, s...)
		} else {
			v.Kind = KindOther
		}
	}
	if err == nil && n < 0 {
		err = wireErr(what, num, n)
	}
	return n, err
}

func consumeVarint(b []byte, typ protowire.Type, what string) (uint64, int, error) {
	if typ != protowire.VarintType {
		return 0, 0, typeErr(what, typ)
	}
	v, n := protowire.ConsumeVarint(b)
	if n < 0 {
		return 0, 0, fmt.Errorf("%w: %s: %w", ErrMalformed, what, protowire.ParseError(n))
	}
	return v, n, nil
}

func consumeBytes(b []byte, typ protowire.Type, what string) ([]byte, int, error) {
	if typ != protowire.BytesType {
		return nil, 0, typeErr(what, typ)
	}
	v, n := protowire.ConsumeBytes(b)
	if n < 0 {
		return nil, 0, fmt.Errorf("%w: %s: %w", ErrMalformed, what, protowire.ParseError(n))
	}
	return v, n, nil
}

// skipField skips an unknown field's value, groups included; n < 0 is a protowire error code.
func skipField(b []byte, num protowire.Number, typ protowire.Type) int {
	return protowire.ConsumeFieldValue(num, typ, b)
}

func typeErr(what string, typ protowire.Type) error {
	return fmt.Errorf("%w: %s has wire type %d", ErrMalformed, what, typ)
}

func wireErr(what string, num protowire.Number, n int) error {
	return fmt.Errorf("%w: %s field %d: %w", ErrMalformed, what, num, protowire.ParseError(n))
}
