package sphost

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/wellgate/wellgate/sparkplug"
)

func report(vs []Violation) string {
	var b strings.Builder
	for _, v := range vs {
		fmt.Fprintf(&b, "\n\t%s", v)
	}
	return b.String()
}

// Valid streams give no violation.
func TestVerifyValid(t *testing.T) {
	cases := map[string]struct {
		msgs []Message
		exp  Expect
	}{
		"aliases, QoS 0": {validStream(true, 0), Expect{Aliases: true, Devices: []string{"PLC1", "PLC2"}, FromStart: true}},
		"no aliases":     {validStream(false, 0), Expect{Devices: []string{"PLC1", "PLC2"}, FromStart: true}},
		"DataQoS 1":      {validStream(true, 1), Expect{DataQoS: 1, Aliases: true}},
		"seq wraps 255 → 0": {func() []Message {
			b := &builder{aliases: true}
			b.nbirth(255).dbirth("PLC1")
			for range 300 {
				b.ddata("PLC1")
			}
			return b.ndeath(255).nbirth(0).ndeath(0).msgs // bdSeq wraps too
		}(), Expect{Aliases: true, FromStart: true}},
		"late join: the tail of a session before the rebirth": {func() []Message {
			b := &builder{aliases: true, seq: 17}
			b.ddata("PLC1").ndata().ddeath("PLC2").ncmd()
			return b.nbirth(9).dbirth("PLC1").ddata("PLC1").msgs
		}(), Expect{Aliases: true}},
		"the old will after the new NBIRTH is ignored": {func() []Message {
			b := &builder{aliases: true}
			b.nbirth(3).dbirth("PLC1").nbirth(4).dbirth("PLC1").ndeath(3).ddata("PLC1")
			return b.ndeath(4).msgs
		}(), Expect{Aliases: true, FromStart: true}},
		"a connection that died before its birth": {func() []Message {
			b := &builder{aliases: true}
			return b.ndeath(2).nbirth(3).dbirth("PLC1").ddata("PLC1").msgs
		}(), Expect{Aliases: true, FromStart: true}},
		"a device born late, after DATA": {func() []Message {
			b := &builder{aliases: true}
			return b.nbirth(3).dbirth("PLC1").ddata("PLC1").dbirth("PLC2").ddata("PLC2").msgs
		}(), Expect{Aliases: true, Devices: []string{"PLC1"}, FromStart: true}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if vs := Verify(tc.msgs, tc.exp); len(vs) > 0 {
				t.Errorf("violations in a valid stream:%s", report(vs))
			}
		})
	}
}

// failCase is a stream that breaks exactly one rule.
type failCase struct {
	name    string
	rule    string
	noAlias bool // a stream and Expect without aliases
	exp     func(*Expect)
	mut     func(ms []Message) []Message
}

// each applies f to message i.
func each(i int, f func(m *Message, p *sparkplug.Payload)) func([]Message) []Message {
	return func(ms []Message) []Message {
		f(&ms[i], ms[i].Payload)
		return ms
	}
}

func metricP(p *sparkplug.Payload, name string) *sparkplug.Metric {
	for i := range p.Metrics {
		if p.Metrics[i].Name == name {
			return &p.Metrics[i]
		}
	}
	panic("no metric " + name)
}

// skipSeq adds 1 to the seq of messages from i to the end of their session: one gap.
func skipSeq(i int) func([]Message) []Message {
	return func(ms []Message) []Message {
		for j := i; j < len(ms); j++ {
			typ := ms[j].Topic.Type
			if j > i && (typ == sparkplug.NBIRTH || typ == sparkplug.NDEATH) {
				break
			}
			if p := ms[j].Payload; p.HasSeq {
				p.Seq = (p.Seq + 1) % 256
			}
		}
		return ms
	}
}

func setBdSeq(v uint64, idx ...int) func([]Message) []Message {
	return func(ms []Message) []Message {
		for _, i := range idx {
			metricP(ms[i].Payload, sparkplug.MetricBdSeq).Value.Bits = v
		}
		return ms
	}
}

func TestVerifyEachRuleFails(t *testing.T) {
	cases := slices.Concat(mqttCases(), sessionCases(), birthCases(), dataCases())
	seen := map[string]bool{}
	for _, tc := range cases {
		t.Run(tc.rule+"/"+tc.name, func(t *testing.T) {
			aliases := !tc.noAlias
			exp := Expect{Aliases: aliases, Devices: []string{"PLC1", "PLC2"}, FromStart: true}
			if tc.exp != nil {
				tc.exp(&exp)
			}
			qos := exp.DataQoS
			vs := Verify(tc.mut(validStream(aliases, qos)), exp)
			if len(vs) != 1 || vs[0].Rule != tc.rule {
				t.Fatalf("want exactly one violation of %s, got %d:%s", tc.rule, len(vs), report(vs))
			}
			if !strings.HasPrefix(vs[0].String(), "["+tc.rule+"] #") {
				t.Errorf("String() = %q: want the rule id first", vs[0])
			}
		})
		seen[tc.rule] = true
	}
	for _, r := range Rules() {
		if !seen[r] {
			t.Errorf("rule %s has no failing case", r)
		}
	}
}

func mqttCases() []failCase {
	var cs []failCase
	for _, x := range []struct {
		i           int
		qos, retain string
		badQoS      byte
	}{
		{iNBirth, "payloads-nbirth-qos", "payloads-nbirth-retain", 1},
		{iDBirth1, "payloads-dbirth-qos", "payloads-dbirth-retain", 1},
		{iNData, "payloads-ndata-qos", "payloads-ndata-retain", 1},
		{iDData1, "payloads-ddata-qos", "payloads-ddata-retain", 1},
		{iDDeath2, "topics-ddeath-mqtt", "topics-ddeath-mqtt", 1},
		{iNDeath, "payloads-ndeath-will-message-qos", "payloads-ndeath-will-message-retain", 0},
	} {
		cs = append(cs,
			failCase{name: "retained", rule: x.retain, mut: each(x.i, func(m *Message, _ *sparkplug.Payload) { m.Retain = true })},
			failCase{name: fmt.Sprintf("QoS %d", x.badQoS), rule: x.qos, mut: each(x.i, func(m *Message, _ *sparkplug.Payload) { m.QoS = x.badQoS })},
		)
	}
	cs = append(cs,
		failCase{name: "QoS 0 with DataQoS 1", rule: "payloads-ddata-qos", exp: func(e *Expect) { e.DataQoS = 1 },
			mut: each(iDData1, func(m *Message, _ *sparkplug.Payload) { m.QoS = 0 })},
		failCase{name: "undecodable", rule: RuleDecode, mut: each(iDData1, func(m *Message, _ *sparkplug.Payload) {
			m.Payload, m.Err = nil, errors.New("truncated")
		})},
		failCase{name: "another node", rule: RuleOneNode, mut: func(ms []Message) []Message {
			m := ms[iNData]
			m.Topic.EdgeNode = "Other"
			return append(ms[:iNData+1], append([]Message{m}, ms[iNData+1:]...)...)
		}},
	)
	for _, x := range []struct {
		i    int
		rule string
	}{
		{iNBirth, "payloads-nbirth-timestamp"}, {iDBirth1, "payloads-dbirth-timestamp"}, {iNData, "payloads-ndata-timestamp"},
		{iDData1, "payloads-ddata-timestamp"}, {iDDeath2, "payloads-ddeath-timestamp"},
	} {
		cs = append(cs, failCase{name: "no payload timestamp", rule: x.rule,
			mut: each(x.i, func(_ *Message, p *sparkplug.Payload) { p.HasTimestamp = false })})
	}
	return cs
}

// fakeTB records Errorf calls; other testing.TB methods are not used by the code under test.
type fakeTB struct {
	testing.TB
	errs []string
}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Errorf(format string, a ...any) { f.errs = append(f.errs, fmt.Sprintf(format, a...)) }

// pahoMsg is a received MQTT message as paho hands it to a handler.
type pahoMsg struct {
	topic   string
	qos     byte
	retain  bool
	payload []byte
}

func (m pahoMsg) Duplicate() bool   { return false }
func (m pahoMsg) Qos() byte         { return m.qos }
func (m pahoMsg) Retained() bool    { return m.retain }
func (m pahoMsg) Topic() string     { return m.topic }
func (m pahoMsg) MessageID() uint16 { return 0 }
func (m pahoMsg) Payload() []byte   { return m.payload }
func (m pahoMsg) Ack()              {}

// The method filters the recording to one node, sees undecodable payloads, and reports each
// violation as one t.Errorf line, rule id first.
func TestHostVerify(t *testing.T) {
	tb := &fakeTB{}
	h := &Host{t: tb, aliases: map[string]map[uint64]string{}, notify: make(chan struct{}, 1)}
	feed := func(topic string, qos byte, raw []byte) {
		h.onMessage(nil, pahoMsg{topic: topic, qos: qos, payload: raw})
	}
	for i, m := range validStream(true, 0) {
		feed(m.Topic.String(), m.QoS, m.Raw)
		other := m.Topic
		other.EdgeNode = "Other" // another node's broken stream must not count
		feed(other.String(), 0, m.Raw)
		if i == iDData1 {
			feed(m.Topic.String(), 0, []byte{0x0a}) // truncated field
		}
	}
	if len(tb.errs) != 1 || !strings.Contains(tb.errs[0], "undecodable") {
		t.Fatalf("recording errors %q, want one for the undecodable payload", tb.errs)
	}
	if got, want := len(h.Recorded()), len(h.Messages())+1; got != want {
		t.Errorf("Recorded has %d messages, want %d (Messages and the undecodable one)", got, want)
	}
	tb.errs = nil
	vs := h.Verify(tb, tGroup, tEdge, Expect{Aliases: true, Devices: []string{"PLC1", "PLC2"}})
	if len(vs) != 1 || vs[0].Rule != RuleDecode || vs[0].Index != iDData1+1 {
		t.Fatalf("want one %s at #%d, got:%s", RuleDecode, iDData1+1, report(vs))
	}
	if len(tb.errs) != 1 || !strings.HasPrefix(tb.errs[0], "["+RuleDecode+"] ") {
		t.Errorf("t.Errorf lines %q, want one starting with the rule id", tb.errs)
	}
}
