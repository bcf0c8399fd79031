package gateway_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wellgate/wellgate/internal/peers"
	"github.com/wellgate/wellgate/internal/sphost"
	"github.com/wellgate/wellgate/sparkplug"
)

func upstreamConfig(t *testing.T, plcAddr, url, extra string, tail ...string) string {
	t.Helper()
	dir := t.TempDir()
	src := fmt.Sprintf(`
[gateway]
data_dir = %q
[sparkplug]
group_id = "Field"
edge_node_id = "PAD-3"
%s
[broker]
listen = "127.0.0.1:0"
[web]
enabled = false
[upstream]
servers = [%q]
keepalive = "2s"
[[device]]
name = "PLC1"
driver = "modbus-tcp"
address = %q
poll_interval = "50ms"
  [[device.tag]]
  name = "Counter"
  address = "40001"
  type = "uint16"
`, filepath.Join(dir, "data"), extra, url, plcAddr) + strings.Join(tail, "\n")
	return writeTOML(t, dir, src)
}

func stateJSON(online bool, ts int64) []byte {
	return []byte(fmt.Sprintf(`{"online":%v,"timestamp":%d}`, online, ts))
}

func nodeMsg(typ sparkplug.MessageType) func(sphost.Message) bool {
	return func(m sphost.Message) bool { return m.Topic.Type == typ && m.Topic.EdgeNode == "PAD-3" }
}

func countType(msgs []sphost.Message, typ sparkplug.MessageType) int {
	n := 0
	for _, m := range msgs {
		if m.Topic.Type == typ && m.Topic.EdgeNode == "PAD-3" {
			n++
		}
	}
	return n
}

// noneFor checks that no message of typ arrives within d: used only to give a wrong behaviour
// its chance to show, never to synchronise.
func noneFor(t *testing.T, host *sphost.Host, typ sparkplug.MessageType, d time.Duration, why string) {
	t.Helper()
	before := countType(host.Messages(), typ)
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if countType(host.Messages(), typ) != before {
			t.Fatalf("%s: a %s was published", why, typ)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Primary host awareness: births only after STATE online; NDEATH on a valid offline; a stale
// online (older than the last STATE seen) is ignored; a newer online births again.
func TestPrimaryHostState(t *testing.T) {
	mq := peers.StartMosquitto(t)
	host := sphost.Connect(t, mq.URL())
	p := &plc{}
	startGateway(t, upstreamConfig(t, startPLC(t, p), mq.URL(), `primary_host_id = "SCADA"`))
	stateTopic := sparkplug.StateTopic("SCADA")

	noneFor(t, host, sparkplug.NBIRTH, time.Second, "before the primary host is online")
	t0 := time.Now().UnixMilli()
	host.Publish(stateTopic, 1, true, stateJSON(true, t0))
	_, i := host.WaitFrom(0, 20*time.Second, "NBIRTH after STATE online", nodeMsg(sparkplug.NBIRTH))

	host.Publish(stateTopic, 1, true, stateJSON(false, t0+10))
	_, i = host.WaitFrom(i, 20*time.Second, "NDEATH after STATE offline", nodeMsg(sparkplug.NDEATH))

	host.Publish(stateTopic, 1, true, stateJSON(true, t0+5)) // older than the offline: stale
	noneFor(t, host, sparkplug.NBIRTH, 2*time.Second, "after a stale STATE online")

	host.Publish(stateTopic, 1, true, stateJSON(true, t0+20))
	host.WaitFrom(i, 20*time.Second, "NBIRTH after a newer STATE online", nodeMsg(sparkplug.NBIRTH))
	host.Publish(stateTopic, 1, true, nil) // clear the retained STATE for other tests
	host.Verify(t, "Field", "PAD-3", sphost.Expect{Aliases: true, FromStart: true, Devices: []string{"PLC1"}})
}

// An upstream broker restart: the node comes back with bdSeq + 1 and seq 0, and every value the
// PLC held during the outage reaches the host, historical, in order.
func TestUpstreamBrokerRestart(t *testing.T) {
	mq := peers.StartPersistentMosquitto(t)
	host := sphost.ConnectPersistent(t, mq.URL(), "scada-host")
	p := &plc{}
	startGateway(t, upstreamConfig(t, startPLC(t, p), mq.URL(), ""))
	nb1, i := host.WaitFrom(0, 20*time.Second, "NBIRTH", nodeMsg(sparkplug.NBIRTH))
	host.WaitFrom(i, 20*time.Second, "DBIRTH", func(m sphost.Message) bool { return m.Topic.Type == sparkplug.DBIRTH })

	mq.Terminate()
	for v := uint16(1); v <= 5; v++ { // values produced while the broker is down
		p.Set(func(p *plc) { p.Holding[0] = v * 100 })
		time.Sleep(120 * time.Millisecond) // let at least one poll see each value
	}
	mq.Start()
	nb2, _ := host.WaitFrom(0, 30*time.Second, "NBIRTH after the restart", func(m sphost.Message) bool {
		return nodeMsg(sparkplug.NBIRTH)(m) && bdSeq(m) != bdSeq(nb1)
	})
	// bdSeq grows by one per CONNECT sent; attempts refused during the outage spend none
	// (docs/sparkplug.md [topics-nbirth-bdseq-increment]).
	if d := (bdSeq(nb2) + 256 - bdSeq(nb1)) % 256; d != 1 {
		t.Errorf("bdSeq after the broker restart %d, after %d before it: want one more", bdSeq(nb2), bdSeq(nb1))
	}
	// Every outage value arrives as historical DDATA, in order.
	var got []uint64
	host.Wait(30*time.Second, "the outage's values, historical", func(sphost.Message) bool {
		got = got[:0]
		for _, m := range host.Messages() {
			if m.Topic.Type != sparkplug.DDATA {
				continue
			}
			for _, mm := range m.Payload.Metrics {
				if mm.IsHistorical {
					got = append(got, mm.Value.Bits)
				}
			}
		}
		return len(got) >= 5 && containsInOrder(got, 100, 200, 300, 400, 500)
	})
	host.Verify(t, "Field", "PAD-3", sphost.Expect{Aliases: true, FromStart: true, Devices: []string{"PLC1"}})
}

func bdSeq(m sphost.Message) uint64 {
	for _, mm := range m.Payload.Metrics {
		if mm.Name == sparkplug.MetricBdSeq {
			return mm.Value.Bits
		}
	}
	return 1 << 63
}

func containsInOrder(got []uint64, want ...uint64) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

// A forward rule carries what a local MQTT client publishes into the embedded broker up to the
// upstream broker, under the configured prefix.
func TestForwardRuleUp(t *testing.T) {
	mq := peers.StartMosquitto(t)
	up := sphost.Connect(t, mq.URL())
	got := make(chan string, 10)
	up.SubscribeRaw(t, "pad3/#", func(topic string, payload []byte) { got <- topic + "=" + string(payload) })
	p := &plc{}
	g := startGateway(t, upstreamConfig(t, startPLC(t, p), mq.URL(), "", `
[[upstream.forward]]
filter = "meters/#"
prefix = "pad3/"
qos = 1
`))
	local := sphost.Connect(t, "tcp://"+g.BrokerAddr())
	deadline := time.After(20 * time.Second)
	for {
		local.Publish("meters/gas/rate", 1, false, []byte("1250"))
		select {
		case m := <-got:
			if m != "pad3/meters/gas/rate=1250" {
				t.Fatalf("upstream got %q", m)
			}
			if up := g.Snapshot().Upstream; !up.Enabled || !up.Connected || up.State != "online" || up.Server != mq.URL() {
				t.Errorf("status page upstream = %+v, want online at %s", up, mq.URL())
			}
			return
		case <-time.After(500 * time.Millisecond):
		case <-deadline:
			t.Fatal("forwarded message never reached the upstream broker")
		}
	}
}

// NCMD Node Control/Next Server on the embedded broker moves the upstream connection to the
// next configured server, as the same NCMD upstream does.
func TestNextServerFromLocalBroker(t *testing.T) {
	m1, m2 := peers.StartMosquitto(t), peers.StartMosquitto(t)
	host2 := sphost.Connect(t, m2.URL())
	p := &plc{}
	path := upstreamConfig(t, startPLC(t, p), m1.URL(), "")
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	src = []byte(strings.Replace(string(src), fmt.Sprintf("servers = [%q]", m1.URL()),
		fmt.Sprintf("servers = [%q, %q]", m1.URL(), m2.URL()), 1))
	g := startGateway(t, writeTOML(t, t.TempDir(), string(src)))
	deadline := time.Now().Add(20 * time.Second)
	for g.Snapshot().Upstream.State != "online" {
		if time.Now().After(deadline) {
			t.Fatalf("upstream not online at the first server: %+v", g.Snapshot().Upstream)
		}
		time.Sleep(20 * time.Millisecond)
	}
	local := sphost.Connect(t, "tcp://"+g.BrokerAddr())
	local.Publish(sparkplug.NodeTopic("Field", sparkplug.NCMD, "PAD-3"), 0, false,
		ncmd("Node Control/Next Server", sparkplug.TypeBoolean, sparkplug.WireValue{Kind: sparkplug.KindBool, Bits: 1}))
	host2.Wait(20*time.Second, "NBIRTH at the second server", nodeMsg(sparkplug.NBIRTH))
	if up := g.Snapshot().Upstream; up.Server != m2.URL() {
		t.Errorf("upstream server %q, want %q", up.Server, m2.URL())
	}
}

// An upstream DCMD that writes a value inside the tag's deadband: the PLC gets it and the host
// that sent the command sees the value read back in DDATA (report by exception would hold it
// back; a written value is always reported).
func TestUpstreamWriteInsideDeadband(t *testing.T) {
	mq := peers.StartMosquitto(t)
	host := sphost.Connect(t, mq.URL())
	p := &plc{}
	p.Set(func(p *plc) { p.Holding[0] = 40 })
	startGateway(t, upstreamConfig(t, startPLC(t, p), mq.URL(), "", `
  [[device.tag]]
  name = "Choke/Setpoint"
  address = "40002"
  type = "uint16"
  writable = true
  deadband = 5
`))
	_, i := host.WaitFrom(0, 20*time.Second, "DBIRTH upstream", isType(sparkplug.DBIRTH, "PLC1"))
	p.Set(func(p *plc) { p.Holding[1] = 40 })
	carries := func(v uint64) func(sphost.Message) bool {
		return func(m sphost.Message) bool {
			got, ok := metricValue(host, m, "Choke/Setpoint")
			return m.Topic.Type == sparkplug.DDATA && ok && got.Bits == v
		}
	}
	_, i = host.WaitFrom(i, 20*time.Second, "DDATA with the polled setpoint 40", carries(40))
	topic := sparkplug.DeviceTopic("Field", sparkplug.DCMD, "PAD-3", "PLC1")
	host.Publish(topic, 1, false, dcmd("Choke/Setpoint", 42)) // inside the deadband of 5
	host.WaitFrom(i, 20*time.Second, "DDATA with the written setpoint 42", carries(42))
	p.Lock()
	defer p.Unlock()
	if p.Holding[1] != 42 {
		t.Errorf("setpoint register = %d, want 42", p.Holding[1])
	}
}
