package bridge

import (
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/wellgate/wellgate/internal/peers"
	"github.com/wellgate/wellgate/sparkplug"
)

// mochiLocal adapts the embedded mochi broker to LocalBroker (the broker package will own the
// real adapter).
type mochiLocal struct {
	s  *mochi.Server
	mu sync.Mutex
	id int
}

func (m *mochiLocal) Subscribe(filter string, fn func(topic string, payload []byte, qos byte, retain bool)) error {
	m.mu.Lock()
	m.id++
	id := m.id
	m.mu.Unlock()
	return m.s.Subscribe(filter, id, func(_ *mochi.Client, _ packets.Subscription, pk packets.Packet) {
		fn(pk.TopicName, pk.Payload, pk.FixedHeader.Qos, pk.FixedHeader.Retain)
	})
}

func (m *mochiLocal) Publish(topic string, payload []byte, retain bool, qos byte) error {
	return m.s.Publish(topic, payload, retain, qos)
}

func startMochi(t *testing.T) (*mochiLocal, string) {
	t.Helper()
	s := mochi.New(&mochi.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	if err := s.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatal(err)
	}
	addr := peers.FreePort(t)
	if err := s.AddListener(listeners.NewTCP(listeners.Config{ID: "local", Address: addr})); err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &mochiLocal{s: s}, addr
}

func pahoClient(t *testing.T, addr, id string) mqtt.Client {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", addr, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

// TestForwardingRules: a local device's messages go upstream with the prefix (through the
// queue while the link is down, in order); upstream messages come down without it.
func TestForwardingRules(t *testing.T) {
	m := peers.StartMosquitto(t)
	px := newProxy(t, m.Addr)
	local, localAddr := startMochi(t)
	col := newCollector(t, m.Addr, "site7/#")
	h := newHarness(t, "", testOptions(px.url()), func(o *Options, _ *sparkplug.Options) {
		o.Local = local
		o.Rules = []Rule{
			{Direction: Up, Filter: "sensors/#", Prefix: "site7/", QoS: 1},
			{Direction: Down, Filter: "cmd/#", Prefix: "site7/"},
		}
	}).start()
	h.waitState(StateOnline, 10*time.Second)
	dev := pahoClient(t, localAddr, "local-device")
	send := func(from, to int) {
		for i := from; i < to; i++ {
			dev.Publish("sensors/flow", 1, false, fmt.Sprint(i)).Wait()
		}
	}
	got := func() []string {
		var out []string
		for _, r := range col.all() {
			if r.topic == "site7/sensors/flow" {
				out = append(out, string(r.raw))
			}
		}
		return out
	}
	send(0, 10)
	h.waitFor(10*time.Second, "forwarded messages", func() bool { return len(got()) >= 10 })

	px.setMode("refuse")
	h.waitState(StateDisconnected, 10*time.Second)
	send(10, 30)
	h.waitFor(10*time.Second, "messages queued", func() bool { return h.b.Status().Queued >= 20 })
	px.setMode("pass")
	// Duplicates count once: wait until every one of the 30 messages has arrived.
	h.waitFor(10*time.Second, "the backlog forwarded", func() bool {
		seen := map[string]bool{}
		for _, s := range got() {
			seen[s] = true
		}
		for i := 0; i < 30; i++ {
			if !seen[fmt.Sprint(i)] {
				return false
			}
		}
		return true
	})
	// At least once, and the outage's messages in order (messages not yet confirmed when the
	// link went down may come twice).
	msgs := got()
	first := map[string]int{}
	for i, s := range msgs {
		if _, ok := first[s]; !ok {
			first[s] = i
		}
	}
	for i := 0; i < 30; i++ {
		p, ok := first[fmt.Sprint(i)]
		if !ok || (i > 10 && p < first[fmt.Sprint(i-1)]) {
			t.Fatalf("message %d missing or out of order: %v", i, msgs)
		}
	}

	// Down: upstream site7/cmd/x → local cmd/x.
	sub := pahoClient(t, localAddr, "local-subscriber")
	down := make(chan string, 10)
	sub.Subscribe("cmd/#", 0, func(_ mqtt.Client, msg mqtt.Message) { down <- msg.Topic() + "=" + string(msg.Payload()) }).Wait()
	col.c.Publish("site7/cmd/valve", 1, false, "open").Wait()
	select {
	case s := <-down:
		if s != "cmd/valve=open" {
			t.Fatalf("local subscriber got %s", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream message did not come down")
	}
}

func TestRuleValidation(t *testing.T) {
	for _, r := range []Rule{
		{Filter: ""}, {Filter: "a/#/b"}, {Filter: "a+"}, {Filter: "x", QoS: 2},
		{Filter: "x", Prefix: "a/+/"}, {Filter: "G/#", Prefix: "spBv1.0/"}, {Filter: "x", Direction: "sideways"},
	} {
		if err := r.validate(); err == nil {
			t.Errorf("rule %+v accepted", r)
		}
	}
	for _, tc := range []struct {
		f, topic string
		want     bool
	}{{"a/#", "a/b/c", true}, {"a/+/c", "a/b/c", true}, {"a/+", "a/b/c", false}, {"a/b", "a/b", true}, {"#", "x", true}, {"a/b", "a", false}} {
		if got := matches(tc.f, tc.topic); got != tc.want {
			t.Errorf("matches(%q, %q) = %v", tc.f, tc.topic, got)
		}
	}
}

func TestMessageRecord(t *testing.T) {
	in := message{topic: "site7/sensors/a", payload: []byte("x\x00y"), qos: 1, retain: true}
	out, err := decodeMessage(encodeMessage(nil, in))
	if err != nil || out.topic != in.topic || string(out.payload) != string(in.payload) || out.qos != 1 || !out.retain {
		t.Fatalf("round trip: %+v, %v", out, err)
	}
	for _, b := range [][]byte{nil, {msgTag}, {msgTag, 4, 0}, {msgTag, 0, 5, 'a'}} {
		if _, err := decodeMessage(b); err == nil {
			t.Errorf("%q decoded", b)
		}
	}
}
