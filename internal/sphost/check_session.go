package sphost

import (
	"fmt"
	"sort"

	"github.com/wellgate/wellgate/sparkplug"
)

// typeRules are the per-message-type rule ids of the spec.
type typeRules struct {
	qos, retain, timestamp, seq, seqInc string
}

var rulesFor = map[sparkplug.MessageType]typeRules{
	sparkplug.NBIRTH: {"payloads-nbirth-qos", "payloads-nbirth-retain", "payloads-nbirth-timestamp", "payloads-nbirth-seq", ""},
	sparkplug.DBIRTH: {"payloads-dbirth-qos", "payloads-dbirth-retain", "payloads-dbirth-timestamp", "payloads-dbirth-seq", "payloads-dbirth-seq-inc"},
	sparkplug.NDATA:  {"payloads-ndata-qos", "payloads-ndata-retain", "payloads-ndata-timestamp", "payloads-ndata-seq", "payloads-ndata-seq-inc"},
	sparkplug.DDATA:  {"payloads-ddata-qos", "payloads-ddata-retain", "payloads-ddata-timestamp", "payloads-ddata-seq", "payloads-ddata-seq-inc"},
	sparkplug.DDEATH: {"topics-ddeath-mqtt", "topics-ddeath-mqtt", "payloads-ddeath-timestamp", "payloads-ddeath-seq", "payloads-ddeath-seq-inc"},
	sparkplug.NDEATH: {"payloads-ndeath-will-message-qos", "payloads-ndeath-will-message-retain", "", "payloads-ndeath-seq", ""},
}

// Spec rule ids used outside rulesFor.
const (
	ruleBirthOrder   = "principles-birth-certificates-order"
	ruleBdSeq        = "payloads-nbirth-bdseq"
	ruleBdSeqInc     = "payloads-nbirth-bdseq-inc" // wellgate's id: the spec's clause is topics-nbirth-bdseq-increment
	ruleRebirth      = "payloads-nbirth-rebirth-req"
	ruleNDeathBdSeq  = "payloads-ndeath-bdseq"
	ruleNDeathPay    = "topics-ndeath-payload"
	ruleDBirthOrder  = "payloads-dbirth-order"
	ruleDDataOrder   = "payloads-ddata-order"
	ruleName         = "payloads-name-requirement"
	ruleAliasBirth   = "payloads-alias-birth-requirement"
	ruleAliasData    = "payloads-alias-data-cmd-requirement"
	ruleAliasUnique  = "payloads-alias-uniqueness"
	ruleMetricTime   = "payloads-name-birth-data-requirement"
	ruleDatatypeReq  = "payloads-metric-datatype-req"
	ruleDatatypeVal  = "payloads-metric-datatype-value"
	rulePropSizes    = "payloads-propertyset-keys-array-size"
	ruleQualityType  = "payloads-propertyset-quality-value-type"
	ruleQualityValue = "payloads-propertyset-quality-value-value"
)

// Rules returns every rule id Verify can report, sorted.
func Rules() []string {
	set := map[string]bool{}
	for _, r := range rulesFor {
		for _, id := range []string{r.qos, r.retain, r.timestamp, r.seq, r.seqInc} {
			if id != "" {
				set[id] = true
			}
		}
	}
	for _, id := range []string{ruleBirthOrder, ruleBdSeq, ruleBdSeqInc, ruleRebirth, ruleNDeathBdSeq,
		ruleNDeathPay, ruleDBirthOrder, ruleDDataOrder, ruleName, ruleAliasBirth, ruleAliasData,
		ruleAliasUnique, ruleMetricTime, ruleDatatypeReq, ruleDatatypeVal, rulePropSizes,
		ruleQualityType, ruleQualityValue, RuleDecode, RuleOneNode, RuleNullValue, RuleValueKind,
		RuleAliasesOff, RuleDataBorn, RuleDataAfterDeath, RuleHistorical} {
		set[id] = true
	}
	out := make([]string, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// scope is what one birth (the NBIRTH, or one device's DBIRTH) defined.
type scope struct {
	byName  map[string]sparkplug.DataType
	byAlias map[uint64]string
	alive   bool // devices: born and not dead since
}

func newScope() *scope {
	return &scope{byName: map[string]sparkplug.DataType{}, byAlias: map[uint64]string{}, alive: true}
}

// aliasUse is the metric an alias was born for: device "" is the node.
type aliasUse struct{ device, name string }

// checker walks one node's stream, keeping the session state a host application keeps.
type checker struct {
	exp Expect
	out []Violation

	idx   int
	topic string
	group string // the node the stream is about, from its first message
	edge  string

	seqKnown bool
	nextSeq  uint64

	started bool   // an NBIRTH was seen
	live    bool   // a session is live: NBIRTH seen, no NDEATH since
	hasCur  bool   // cur is the live (or last) session's bdSeq
	cur     uint64 //
	hasPrev bool   // prev is the session before cur's bdSeq: its will may still arrive
	prev    uint64
	hasDead bool   // lastDead is the bdSeq of the last NDEATH accepted
	dead    uint64 //

	node     *scope
	devices  map[string]*scope
	aliases  map[uint64]aliasUse
	dataSeen bool // a DATA message in this birth round
	expDone  bool // expected devices checked in this birth round
}

func newChecker(exp Expect) *checker {
	return &checker{exp: exp, node: newScope(), devices: map[string]*scope{}, aliases: map[uint64]aliasUse{}}
}

func (c *checker) fail(rule, format string, args ...any) {
	c.out = append(c.out, Violation{Rule: rule, Index: c.idx, Topic: c.topic, Msg: fmt.Sprintf(format, args...)})
}

// message checks one message and advances the state.
func (c *checker) message(i int, m Message) {
	rules, ok := rulesFor[m.Topic.Type]
	if !ok {
		return // commands from hosts, STATE
	}
	c.idx, c.topic = i, m.Topic.String()
	if c.group == "" && c.edge == "" {
		c.group, c.edge = m.Topic.Group, m.Topic.EdgeNode
	}
	if m.Topic.Group != c.group || m.Topic.EdgeNode != c.edge {
		c.fail(RuleOneNode, "message of %s/%s in a stream of %s/%s: not checked", m.Topic.Group, m.Topic.EdgeNode, c.group, c.edge)
		return
	}
	c.checkMQTT(m, rules)
	p := m.Payload
	if p == nil {
		c.fail(RuleDecode, "payload does not decode: %v", m.Err)
		c.seqKnown = false
		return
	}
	if rules.timestamp != "" && !p.HasTimestamp {
		c.fail(rules.timestamp, "no payload timestamp")
	}
	switch m.Topic.Type {
	case sparkplug.NBIRTH:
		c.nbirth(p)
	case sparkplug.DBIRTH:
		c.checkSeq(p, rules)
		c.dbirth(m.Topic.Device, p)
	case sparkplug.NDATA, sparkplug.DDATA:
		c.checkSeq(p, rules)
		c.data(m.Topic, p)
	case sparkplug.DDEATH:
		c.checkSeq(p, rules)
		c.ddeath(m.Topic.Device)
	case sparkplug.NDEATH:
		c.ndeath(p)
	}
}

// checkMQTT checks the retain flag and the QoS as seen by a QoS 1 subscriber.
func (c *checker) checkMQTT(m Message, rules typeRules) {
	if m.Retain {
		c.fail(rules.retain, "retained")
	}
	want := c.exp.DataQoS
	if m.Topic.Type == sparkplug.NDEATH {
		want = 1
	}
	if m.QoS != want {
		c.fail(rules.qos, "QoS %d, want %d", m.QoS, want)
	}
}

// checkSeq checks the seq of DBIRTH, NDATA, DDATA and DDEATH: present, and one more than the
// previous message's (255 → 0).
func (c *checker) checkSeq(p *sparkplug.Payload, rules typeRules) {
	switch {
	case !p.HasSeq:
		c.fail(rules.seq, "no seq")
		c.seqKnown = false
		return
	case p.Seq > 255:
		c.fail(rules.seqInc, "seq %d exceeds 255", p.Seq)
	case c.seqKnown && p.Seq != c.nextSeq:
		c.fail(rules.seqInc, "seq %d, want %d", p.Seq, c.nextSeq)
	}
	c.seqKnown, c.nextSeq = true, (p.Seq+1)%256
}

// inSession reports whether a session is live for a message that needs one, and reports a
// message outside any session unless the recorder may have joined late.
func (c *checker) inSession() bool {
	if c.live {
		return true
	}
	if c.started || c.exp.FromStart {
		c.fail(ruleBirthOrder, "outside a session: the node is not born (no NBIRTH since connect or since its NDEATH)")
	}
	return false
}

// checkExpected reports, once per birth round, expected devices not born in it.
func (c *checker) checkExpected(when string) {
	if c.expDone || !c.live {
		return
	}
	c.expDone = true
	var missing []string
	for _, d := range c.exp.Devices {
		if s := c.devices[d]; s == nil {
			missing = append(missing, d)
		}
	}
	if len(missing) > 0 {
		c.fail(ruleDBirthOrder, "no DBIRTH for %q after the NBIRTH %s", missing, when)
	}
}
