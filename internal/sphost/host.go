// Package sphost is a small Sparkplug host application for tests: it subscribes to a broker,
// decodes every Sparkplug message, resolves aliases from births, and lets a test wait for
// messages and read back metric values the way Ignition's MQTT Engine would see them. Verify
// checks a recorded stream of one edge node against the rules of docs/sparkplug.md, each
// violation named by its id there (the Sparkplug assertion id where the spec has one).
package sphost

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/wellgate/wellgate/sparkplug"
)

// Message is one Sparkplug message received, decoded.
type Message struct {
	Topic   sparkplug.Topic
	Raw     []byte
	Payload *sparkplug.Payload
	QoS     byte
	Retain  bool
	At      time.Time
	// Err is why Payload is nil: the payload did not decode. Such messages appear only in
	// Recorded, never in Messages.
	Err error
}

// Metric is a metric of a message with its name resolved from the births.
type Metric struct {
	sparkplug.Metric
	Resolved string
}

// Host records what a Sparkplug edge node publishes.
type Host struct {
	t      testing.TB
	client paho.Client

	mu      sync.Mutex
	msgs    []Message                    // decoded messages and probes, for Messages and Wait
	log     []Message                    // every Sparkplug message in arrival order, undecodable ones too
	aliases map[string]map[uint64]string // edge node → alias → name, from the last NBIRTH/DBIRTHs
	notify  chan struct{}
}

// Connect subscribes to spBv1.0/# at broker ("tcp://host:port") with QoS 1.
func Connect(t testing.TB, broker string) *Host {
	t.Helper()
	return connect(t, broker, fmt.Sprintf("sphost-%d", time.Now().UnixNano()), true)
}

// ConnectPersistent is Connect with clean session = false and a fixed client id: a broker that
// keeps sessions queues what is published while the host is away.
func ConnectPersistent(t testing.TB, broker, clientID string) *Host {
	t.Helper()
	return connect(t, broker, clientID, false)
}

func connect(t testing.TB, broker, clientID string, clean bool) *Host {
	t.Helper()
	h := &Host{t: t, aliases: map[string]map[uint64]string{}, notify: make(chan struct{}, 1)}
	o := paho.NewClientOptions().AddBroker(broker).SetClientID(clientID).
		SetCleanSession(clean).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(100 * time.Millisecond).SetMaxReconnectInterval(500 * time.Millisecond).
		SetOrderMatters(true)
	o.SetOnConnectHandler(func(c paho.Client) {
		c.Subscribe("spBv1.0/#", 1, h.onMessage)
	})
	h.client = paho.NewClient(o)
	tok := h.client.Connect()
	if !tok.WaitTimeout(20 * time.Second) {
		t.Fatalf("sphost: connect to %s timed out", broker)
	}
	if tok.Error() != nil {
		t.Fatalf("sphost: connect to %s: %v", broker, tok.Error())
	}
	h.WaitConnected(10 * time.Second)
	t.Cleanup(func() { h.client.Disconnect(100) })
	return h
}

// WaitConnected waits until the host's subscription is in place.
func (h *Host) WaitConnected(d time.Duration) {
	deadline := time.Now().Add(d)
	for !h.client.IsConnectionOpen() {
		if time.Now().After(deadline) {
			h.t.Fatalf("sphost: not connected after %v", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A subscription round trip: publish to a private topic under the filter until it comes
	// back, which proves the subscription is in place.
	probe := fmt.Sprintf("spBv1.0/sphost-probe/NDATA/%d", time.Now().UnixNano())
	for {
		h.client.Publish(probe, 1, false, []byte{}).WaitTimeout(time.Second)
		if h.seen(probe, 200*time.Millisecond) {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("sphost: subscription not in place after %v", d)
		}
	}
}

// seen waits up to d for a message on topic.
func (h *Host) seen(topic string, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		for _, m := range h.Messages() {
			if m.Topic.String() == topic {
				return true
			}
		}
		select {
		case <-h.notify:
		case <-timer.C:
			return false
		}
	}
}

func (h *Host) onMessage(_ paho.Client, m paho.Message) {
	msg := Message{Raw: append([]byte(nil), m.Payload()...), QoS: m.Qos(), Retain: m.Retained(), At: time.Now()}
	if strings.Contains(m.Topic(), "sphost-probe") {
		msg.Topic = sparkplug.Topic{Group: "sphost-probe", Type: sparkplug.NDATA}
		msg.Topic.EdgeNode = m.Topic()[len("spBv1.0/sphost-probe/NDATA/"):]
		h.add(msg)
		return
	}
	topic, err := sparkplug.ParseTopic(m.Topic())
	if err != nil {
		return // STATE and foreign topics
	}
	msg.Topic = topic
	p, err := sparkplug.Unmarshal(msg.Raw)
	if err != nil {
		h.t.Errorf("sphost: %s: undecodable payload: %v", m.Topic(), err)
		msg.Err = err
		h.mu.Lock()
		h.log = append(h.log, msg)
		h.mu.Unlock()
		return
	}
	msg.Payload = p
	h.add(msg)
}

func (h *Host) add(msg Message) {
	h.mu.Lock()
	if msg.Payload != nil {
		edge := msg.Topic.Group + "/" + msg.Topic.EdgeNode
		switch msg.Topic.Type {
		case sparkplug.NBIRTH:
			h.aliases[edge] = map[uint64]string{}
			fallthrough
		case sparkplug.DBIRTH:
			if h.aliases[edge] == nil {
				h.aliases[edge] = map[uint64]string{}
			}
			for _, m := range msg.Payload.Metrics {
				if m.HasAlias {
					h.aliases[edge][m.Alias] = m.Name
				}
			}
		}
	}
	h.msgs = append(h.msgs, msg)
	if msg.Payload != nil {
		h.log = append(h.log, msg)
	}
	h.mu.Unlock()
	select {
	case h.notify <- struct{}{}:
	default:
	}
}

// Messages returns everything received so far.
func (h *Host) Messages() []Message {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Message(nil), h.msgs...)
}

// Recorded returns every Sparkplug message received so far in arrival order, including those
// whose payload did not decode (Payload nil, Err set) and excluding the host's own probes. It
// is what Verify checks.
func (h *Host) Recorded() []Message {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Message(nil), h.log...)
}

// Wait waits up to d for a message matching match that arrived after the call started or
// earlier, and returns the first such message.
func (h *Host) Wait(d time.Duration, what string, match func(Message) bool) Message {
	h.t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		for _, m := range h.Messages() {
			if match(m) {
				return m
			}
		}
		select {
		case <-h.notify:
		case <-deadline.C:
			h.t.Fatalf("sphost: no %s within %v (%d messages seen: %s)", what, d, len(h.Messages()), h.summary())
			return Message{}
		}
	}
}

// WaitFrom is Wait over the messages from index from on.
func (h *Host) WaitFrom(from int, d time.Duration, what string, match func(Message) bool) (Message, int) {
	h.t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		msgs := h.Messages()
		for i := from; i < len(msgs); i++ {
			if match(msgs[i]) {
				return msgs[i], i
			}
		}
		select {
		case <-h.notify:
		case <-deadline.C:
			h.t.Fatalf("sphost: no %s within %v (%d messages seen: %s)", what, d, len(msgs), h.summary())
			return Message{}, -1
		}
	}
}

func (h *Host) summary() string {
	msgs := h.Messages()
	var b strings.Builder
	for i, m := range msgs {
		if i >= 20 {
			fmt.Fprintf(&b, " …")
			break
		}
		fmt.Fprintf(&b, " %s", m.Topic)
	}
	return b.String()
}

// Metrics returns the metrics of m with names resolved through the aliases of the births.
func (h *Host) Metrics(m Message) []Metric {
	h.mu.Lock()
	defer h.mu.Unlock()
	edge := m.Topic.Group + "/" + m.Topic.EdgeNode
	if m.Payload == nil {
		return nil
	}
	out := make([]Metric, 0, len(m.Payload.Metrics))
	for _, mm := range m.Payload.Metrics {
		name := mm.Name
		if name == "" && mm.HasAlias {
			name = h.aliases[edge][mm.Alias]
		}
		out = append(out, Metric{Metric: mm, Resolved: name})
	}
	return out
}

// Publish sends a raw message through the host's connection (commands, STATE).
func (h *Host) Publish(topic string, qos byte, retain bool, payload []byte) {
	h.t.Helper()
	tok := h.client.Publish(topic, qos, retain, payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		h.t.Fatalf("sphost: publish %s: %v", topic, tok.Error())
	}
}

// SubscribeRaw subscribes the host's connection to filter (QoS 1) and hands every message to
// fn: for non-Sparkplug traffic such as forwarded topics.
func (h *Host) SubscribeRaw(t testing.TB, filter string, fn func(topic string, payload []byte)) {
	t.Helper()
	tok := h.client.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) { fn(m.Topic(), m.Payload()) })
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("sphost: subscribe %s: %v", filter, tok.Error())
	}
}

// Rebirth asks the edge node for a rebirth with an NCMD Node Control/Rebirth = true.
func (h *Host) Rebirth(group, edge string) {
	h.t.Helper()
	p := sparkplug.Payload{Timestamp: uint64(time.Now().UnixMilli()), HasTimestamp: true}
	m := sparkplug.Metric{Name: sparkplug.MetricRebirth, Datatype: sparkplug.TypeBoolean}
	m.Value = sparkplug.WireValue{Kind: sparkplug.KindBool, Bits: 1}
	p.Metrics = append(p.Metrics, m)
	h.Publish(sparkplug.NodeTopic(group, sparkplug.NCMD, edge), 0, false, p.Marshal())
}
