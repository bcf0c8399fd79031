package sphost

import (
	"fmt"
	"testing"
)

// Violation is one broken rule.
type Violation struct {
	// Rule is the Sparkplug 3.0 assertion id (the spec's "tck-id-" prefix dropped) where the
	// spec has one, else a short descriptive id; docs/sparkplug.md describes each. See
	// Rules.
	Rule  string
	Index int    // index of the offending message in the stream given to Verify
	Topic string // its topic
	Msg   string // what is wrong
}

// String formats the violation as one line, rule id first.
func (v Violation) String() string {
	return fmt.Sprintf("[%s] #%d %s: %s", v.Rule, v.Index, v.Topic, v.Msg)
}

// Expect is what a stream is checked against, beyond the fixed rules.
type Expect struct {
	// DataQoS is the QoS of births, DATA and DDEATH (sparkplug.Options.DataQoS): 0 or 1.
	DataQoS byte
	// Aliases says the node uses aliases (sparkplug.Options.Aliases).
	Aliases bool
	// Devices, when set, are devices that must be born (DBIRTH) after every NBIRTH before any
	// NDATA or DDATA, and before the session or birth round ends.
	Devices []string
	// FromStart says the recording began before the node's first connect, so its first
	// message must be an NBIRTH (or an NDEATH of a connection that never got to birth).
	// Without it, messages before the first NBIRTH are taken to be the tail of a session the
	// recorder joined late: they get the checks that need no birth (MQTT flags, timestamps,
	// seq continuity) and nothing else.
	FromStart bool
}

// Rule ids Verify reports that the Sparkplug 3.0 specification does not name.
const (
	RuleDecode         = "payload-decode"          // the payload is a Sparkplug B protobuf
	RuleOneNode        = "one-edge-node"           // Verify was given one node's messages
	RuleNullValue      = "metric-null-value"       // is_null metrics carry no value
	RuleValueKind      = "metric-value-kind"       // the value field fits the (born) datatype
	RuleAliasesOff     = "metric-alias-unexpected" // no alias fields when aliases are off
	RuleDataBorn       = "data-metric-born"        // DATA metrics were in this session's birth
	RuleDataAfterDeath = "ddata-after-ddeath"      // no DDATA between DDEATH and DBIRTH
	RuleHistorical     = "historical-in-birth"     // births carry current, not historical, values
)

// Verify checks a recorded stream of one edge node's messages, in arrival order as one
// subscriber saw them, against every edge-node rule that can be checked from outside, and
// returns the violations in stream order. Commands (NCMD, DCMD) in the stream are skipped.
//
// QoS is checked as seen: a subscriber gets min(publish QoS, subscription QoS), so the
// recorder must subscribe at QoS 1 (sphost does) for QoS 0 and 1 to be told apart.
func Verify(msgs []Message, exp Expect) []Violation {
	c := newChecker(exp)
	for i, m := range msgs {
		c.message(i, m)
	}
	return c.out
}

// Verify checks the messages the host recorded from edge node group/edge (see the function
// Verify), reports each violation with t.Errorf, one line each, rule id first, and returns
// them. Indexes count that node's messages only.
func (h *Host) Verify(t testing.TB, group, edge string, exp Expect) []Violation {
	t.Helper()
	var mine []Message
	for _, m := range h.Recorded() {
		if m.Topic.Group == group && m.Topic.EdgeNode == edge {
			mine = append(mine, m)
		}
	}
	vs := Verify(mine, exp)
	for _, v := range vs {
		t.Errorf("%s", v)
	}
	return vs
}
