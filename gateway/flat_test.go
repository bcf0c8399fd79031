package gateway_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/wellgate/wellgate/internal/peers"
)

type flatMsg struct {
	topic   string
	qos     byte
	retain  bool
	Value   any    `json:"value"`
	Quality string `json:"quality"`
	Units   string `json:"units"`
}

// flatSubscriber subscribes to filter on addr and hands every message to a channel.
func flatSubscriber(t *testing.T, addr, id, filter string) <-chan flatMsg {
	t.Helper()
	ch := make(chan flatMsg, 100)
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	tok := c.Subscribe(filter, 2, func(_ paho.Client, m paho.Message) {
		fm := flatMsg{topic: m.Topic(), qos: m.Qos(), retain: m.Retained()}
		if err := json.Unmarshal(m.Payload(), &fm); err != nil {
			t.Errorf("%s: payload %q: %v", m.Topic(), m.Payload(), err)
		}
		ch <- fm
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return ch
}

func nextOn(t *testing.T, ch <-chan flatMsg, topic string, ok func(flatMsg) bool) flatMsg {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-ch:
			if m.topic == topic && ok(m) {
				return m
			}
		case <-deadline:
			t.Fatalf("no message on %s", topic)
		}
	}
}

// Flat topics: a retained tag's last value reaches a late subscriber at once, at its
// configured QoS; a tag that is not retained gives nothing until it changes; a tag whose
// device stops keeps its last value, marked bad.
func TestFlatTopics(t *testing.T) {
	p := &plc{}
	p.Set(func(p *plc) { p.Holding[0], p.Holding[1] = 120, 7 })
	plcAddr := freeAddr(t)
	srv := peers.ServePLC(t, plcAddr, p)
	src := fmt.Sprintf(`
[gateway]
data_dir = %q
[sparkplug]
group_id = "Flat"
edge_node_id = "Node"
[broker]
listen = "127.0.0.1:0"
[broker.flat]
enabled = true
prefix = "pad7"
[web]
enabled = false
[[device]]
name = "PLC1"
driver = "modbus-tcp"
address = %q
poll_interval = "100ms"
timeout = "300ms"
  [[device.tag]]
  name = "Tank/Level"
  address = "40001"
  type = "uint16"
  units = "in"
  flat_qos = 1
  flat_retain = true
  [[device.tag]]
  name = "Pressure"
  address = "40002"
  type = "uint16"
`, t.TempDir(), plcAddr)
	g := startGateway(t, writeTOML(t, t.TempDir(), src))
	early := flatSubscriber(t, g.BrokerAddr(), "early", "pad7/#")
	nextOn(t, early, "pad7/PLC1/Tank/Level", func(m flatMsg) bool { return m.Value == 120.0 })

	late := flatSubscriber(t, g.BrokerAddr(), "late", "pad7/#")
	m := nextOn(t, late, "pad7/PLC1/Tank/Level", func(flatMsg) bool { return true })
	if !m.retain || m.qos != 1 || m.Value != 120.0 || m.Quality != "good" || m.Units != "in" {
		t.Errorf("late subscriber's Level: %+v, want retained at QoS 1 with 120 in, good", m)
	}
	p.Set(func(p *plc) { p.Holding[1] = 8 })
	// The late subscriber gets no retained Pressure: only live publishes, the change to 8 among
	// them (a first publish of 7 may still be in flight as it subscribes).
	for {
		m := nextOn(t, late, "pad7/PLC1/Pressure", func(flatMsg) bool { return true })
		if m.retain || m.qos != 0 {
			t.Fatalf("late subscriber's Pressure: %+v, want live at QoS 0, never retained", m)
		}
		if m.Value == 8.0 {
			break
		}
	}

	_ = srv.Stop()
	m = nextOn(t, early, "pad7/PLC1/Tank/Level", func(m flatMsg) bool { return m.Quality != "good" })
	if m.Value != 120.0 {
		t.Errorf("Level after the PLC stopped: %+v, want the last value 120, marked bad", m)
	}
}
