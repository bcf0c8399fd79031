package sparkplug

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/wellgate/wellgate/drivers"
)

func FuzzUnmarshal(f *testing.F) {
	f.Add(vectorPayload().Marshal())
	f.Add(WillPayload(3))
	f.Add([]byte{0x18, 0x00})
	f.Add([]byte{0x12, 0x05, 0x0a})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Unmarshal(b)
		if err != nil {
			return
		}
		// What decodes re-encodes to something that decodes to the same payload.
		b2 := p.Marshal()
		p2, err := Unmarshal(b2)
		if err != nil {
			t.Fatalf("re-encoding does not decode: %v", err)
		}
		normalize(p)
		normalize(p2)
		if !reflect.DeepEqual(p, p2) {
			t.Fatalf("round trip differs:\n%+v\n%+v", p, p2)
		}
		for i := range p.Metrics {
			for _, typ := range []drivers.Type{drivers.Int8, drivers.UInt32, drivers.Int64, drivers.Float, drivers.String, drivers.Bytes} {
				_, _ = p.Metrics[i].DriverValue(typ)
			}
		}
	})
}

// normalize drops what the codec deliberately does not carry over: values it skips
// (KindOther), values of null metrics, bytes in property values, and empty-vs-nil.
func normalize(p *Payload) {
	if len(p.Metrics) == 0 {
		p.Metrics = nil
	}
	if p.Body != nil && len(p.Body) == 0 {
		p.Body = []byte{}
	}
	for i := range p.Metrics {
		m := &p.Metrics[i]
		if m.Value.Kind == KindOther || m.IsNull {
			m.Value = WireValue{}
		}
		if m.Properties != nil {
			for j := range m.Properties.Values {
				pv := &m.Properties.Values[j]
				if pv.Value.Kind == KindOther || pv.Value.Kind == KindBytes || pv.IsNull {
					pv.Value = WireValue{}
				}
			}
		}
	}
}

func FuzzHandleCommand(f *testing.F) {
	f.Add(true, "plc1", dcmd(Metric{Name: "Mode", Value: WireValue{Kind: KindInt, Bits: 4294967291}}))
	f.Add(false, "", dcmd(Metric{Name: MetricRebirth, Value: WireValue{Kind: KindBool, Bits: 1}}))
	f.Add(true, "rtu2", dcmd(Metric{Alias: 7, HasAlias: true, Value: WireValue{Kind: KindLong, Bits: 1 << 40}}))
	f.Add(true, "plc1", []byte{0x12, 0x05, 0x0a})
	f.Fuzz(func(t *testing.T, device bool, dev string, payload []byte) {
		c := &clock{t: t0}
		opts := testOptions(c)
		opts.Aliases = true
		s, r := started(t, opts, 1)
		topic := "spBv1.0/wellsite/NCMD/gw1"
		if device {
			topic = "spBv1.0/wellsite/DCMD/gw1/" + dev
		}
		writes, _ := s.HandleCommand(topic, payload)
		for _, w := range writes {
			d, i := s.lookup(w.Device, w.Tag)
			if d == nil || !d.tags[i].Writable || w.Value.Type() != d.tags[i].Type || w.Value.IsNull() {
				t.Fatalf("invalid write %+v", w)
			}
		}
		for _, m := range r.take() {
			if !bytes.Contains([]byte(m.topic), []byte("BIRTH")) {
				t.Fatalf("command published %s", m.topic)
			}
		}
	})
}

func FuzzParseState(f *testing.F) {
	f.Add("spBv1.0/STATE/scada", []byte(`{"online":true,"timestamp":1700000000000}`))
	f.Add("STATE/scada", []byte("ONLINE"))
	f.Add("spBv1.0/STATE/a", []byte(`{"online":false,"timestamp":0}`))
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		st, err := ParseState(topic, payload)
		if err != nil {
			return
		}
		if ValidID(st.HostID) != nil {
			t.Fatalf("invalid host id %q accepted", st.HostID)
		}
		tr := NewHostTracker(st.HostID)
		if changed, online := tr.Observe(st); !changed || online != st.Online {
			t.Fatalf("first observation %v %v", changed, online)
		}
	})
}
