package gateway_test

import (
	"fmt"
	"testing"
	"time"

	mbserver "github.com/simonvetter/modbus"

	"github.com/wellgate/wellgate/internal/peers"
	"github.com/wellgate/wellgate/internal/sphost"
	"github.com/wellgate/wellgate/sparkplug"
)

// writableConfig is a gateway with one PLC whose setpoint is writable and whose level is not.
func writableConfig(t *testing.T, dataDir, plcAddr string) string {
	t.Helper()
	src := fmt.Sprintf(`
[gateway]
data_dir = %q
[sparkplug]
group_id = "Scenario"
edge_node_id = "Node2"
[broker]
listen = "127.0.0.1:0"
[web]
enabled = false
[[device]]
name = "PLC1"
driver = "modbus-tcp"
address = %q
poll_interval = "100ms"
timeout = "300ms"
  [[device.tag]]
  name = "Choke/Setpoint"
  address = "40001"
  type = "uint16"
  writable = true
  max = 100
  [[device.tag]]
  name = "Separator/Level"
  address = "40002"
  type = "uint16"
`, dataDir, plcAddr)
	return writeTOML(t, t.TempDir(), src)
}

func dcmd(name string, v uint64) []byte {
	p := sparkplug.Payload{Timestamp: uint64(time.Now().UnixMilli()), HasTimestamp: true}
	m := sparkplug.Metric{Name: name, Datatype: sparkplug.TypeUInt16}
	m.Value = sparkplug.WireValue{Kind: sparkplug.KindInt, Bits: v}
	p.Metrics = append(p.Metrics, m)
	return p.Marshal()
}

func metricValue(host *sphost.Host, m sphost.Message, name string) (sparkplug.WireValue, bool) {
	for _, mm := range host.Metrics(m) {
		if mm.Resolved == name {
			return mm.Value, true
		}
	}
	return sparkplug.WireValue{}, false
}

// A DCMD to a writable tag is written to the PLC and the new value comes back in DDATA; a DCMD
// to a read-only tag, or out of range, changes nothing.
func TestDCMDWrite(t *testing.T) {
	p := &plc{}
	p.Set(func(p *plc) { p.Holding[0], p.Holding[1] = 40, 55 })
	g := startGateway(t, writableConfig(t, t.TempDir(), startPLC(t, p)))
	host := sphost.Connect(t, "tcp://"+g.BrokerAddr())
	from := len(host.Messages())
	host.Rebirth("Scenario", "Node2")
	host.WaitFrom(from, 10*time.Second, "DBIRTH", isType(sparkplug.DBIRTH, "PLC1"))

	topic := sparkplug.DeviceTopic("Scenario", sparkplug.DCMD, "Node2", "PLC1")
	host.Publish(topic, 0, false, dcmd("Separator/Level", 99)) // read-only
	host.Publish(topic, 0, false, dcmd("Choke/Setpoint", 101)) // out of range
	from = len(host.Messages())
	host.Publish(topic, 0, false, dcmd("Choke/Setpoint", 73))
	carries73 := func(m sphost.Message) bool {
		v, ok := metricValue(host, m, "Choke/Setpoint")
		return m.Topic.Type == sparkplug.DDATA && ok && v.Bits == 73
	}
	_, i := host.WaitFrom(from, 10*time.Second, "DDATA with the written setpoint", carries73)
	// Commands are handled in order: the refused ones came before the 73.
	p.Lock()
	level := p.Holding[1]
	p.Unlock()
	if level != 55 {
		t.Errorf("read-only level register = %d: a refused DCMD wrote it", level)
	}
	// The value read back is published once, and later polls of the unchanged register are no
	// change. A later change of another register marks the point by which a second would be here.
	p.Set(func(p *plc) { p.Holding[1] = 56 })
	host.WaitFrom(i, 10*time.Second, "DDATA with the new level", func(m sphost.Message) bool {
		v, ok := metricValue(host, m, "Separator/Level")
		return m.Topic.Type == sparkplug.DDATA && ok && v.Bits == 56
	})
	n := 0
	for _, m := range host.Messages()[from:] {
		if carries73(m) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the written value went out in %d DDATA messages, want 1", n)
	}
	host.Verify(t, "Scenario", "Node2", sphost.Expect{Aliases: true, Devices: []string{"PLC1"}})
	p.Lock()
	defer p.Unlock()
	if p.Holding[0] != 73 {
		t.Errorf("setpoint register = %d, want 73", p.Holding[0])
	}
}

// A device that stops answering is declared dead (DDEATH); when it answers again it is born
// again (DBIRTH) with its current values.
func TestDeviceLossAndReturn(t *testing.T) {
	p := &plc{}
	p.Set(func(p *plc) { p.Holding[0], p.Holding[1] = 10, 20 })
	addr := freeAddr(t)
	srv := serveAt(t, addr, p)
	g := startGateway(t, writableConfig(t, t.TempDir(), addr))
	host := sphost.Connect(t, "tcp://"+g.BrokerAddr())
	from := len(host.Messages())
	host.Rebirth("Scenario", "Node2")
	host.WaitFrom(from, 10*time.Second, "DBIRTH", isType(sparkplug.DBIRTH, "PLC1"))

	from = len(host.Messages())
	_ = srv.Stop()
	death, i := host.WaitFrom(from, 20*time.Second, "DDEATH", isType(sparkplug.DDEATH, "PLC1"))
	if !death.Payload.HasSeq {
		t.Error("DDEATH without seq")
	}
	p.Set(func(p *plc) { p.Holding[1] = 21 })
	srv2 := serveAt(t, addr, p)
	defer srv2.Stop()
	birth, _ := host.WaitFrom(i, 30*time.Second, "DBIRTH after return", isType(sparkplug.DBIRTH, "PLC1"))
	// The DBIRTH may come before the first good poll; the value must follow at the latest in DDATA.
	if v, ok := metricValue(host, birth, "Separator/Level"); !ok || v.Bits != 21 {
		host.WaitFrom(i, 10*time.Second, "current level after return", func(m sphost.Message) bool {
			v, ok := metricValue(host, m, "Separator/Level")
			return m.Topic.Device == "PLC1" && ok && v.Bits == 21
		})
	}
	host.Verify(t, "Scenario", "Node2", sphost.Expect{Aliases: true})
}

func serveAt(t *testing.T, addr string, p *plc) *mbserver.ModbusServer {
	return peers.ServePLC(t, addr, p)
}

// bdSeq continues across a restart of the gateway: it is kept in the data dir.
func TestBdSeqContinuesAcrossRestart(t *testing.T) {
	p := &plc{}
	addr := startPLC(t, p)
	data := t.TempDir()
	var seqs []uint64
	for i := 0; i < 2; i++ {
		func() {
			g := startGatewayN(t, writableConfig(t, data, addr))
			defer g.stop()
			host := sphost.Connect(t, "tcp://"+g.BrokerAddr())
			from := len(host.Messages())
			host.Rebirth("Scenario", "Node2")
			nb, _ := host.WaitFrom(from, 10*time.Second, "NBIRTH", isType(sparkplug.NBIRTH, ""))
			for _, m := range nb.Payload.Metrics {
				if m.Name == sparkplug.MetricBdSeq {
					seqs = append(seqs, m.Value.Bits)
				}
			}
		}()
	}
	if len(seqs) != 2 || seqs[1] != seqs[0]+1 {
		t.Fatalf("bdSeq across a restart: %v, want n then n+1", seqs)
	}
}

func ncmd(name string, dt sparkplug.DataType, w sparkplug.WireValue) []byte {
	p := sparkplug.Payload{Timestamp: uint64(time.Now().UnixMilli()), HasTimestamp: true}
	m := sparkplug.Metric{Name: name, Datatype: dt, Value: w}
	p.Metrics = append(p.Metrics, m)
	return p.Marshal()
}

// The NBIRTH carries the gateway's own metrics, and NCMD Node Control/Scan Rate is obeyed and
// reported back in NDATA; a nonsense rate is refused.
func TestNodeMetricsAndScanRate(t *testing.T) {
	p := &plc{}
	g := startGateway(t, writableConfig(t, t.TempDir(), startPLC(t, p)))
	host := sphost.Connect(t, "tcp://"+g.BrokerAddr())
	from := len(host.Messages())
	host.Rebirth("Scenario", "Node2")
	nb, i := host.WaitFrom(from, 10*time.Second, "NBIRTH", isType(sparkplug.NBIRTH, ""))
	born := map[string]sphost.Metric{}
	for _, m := range host.Metrics(nb) {
		born[m.Resolved] = m
	}
	for _, name := range []string{"Properties/Version", "Devices/Good", "Devices/Bad", "Node Control/Scan Rate",
		"Node Control/Next Server", "Store and Forward/Depth", "Store and Forward/Dropped", sparkplug.MetricRebirth, sparkplug.MetricBdSeq} {
		if _, ok := born[name]; !ok {
			t.Errorf("NBIRTH lacks node metric %q", name)
		}
	}
	if v := born["Properties/Version"].Value; v.Str != "test" {
		t.Errorf("version metric = %q, want test", v.Str)
	}

	topic := sparkplug.NodeTopic("Scenario", sparkplug.NCMD, "Node2")
	host.Publish(topic, 0, false, ncmd("Node Control/Scan Rate", sparkplug.TypeInt64, sparkplug.WireValue{Kind: sparkplug.KindLong, Bits: 5}))
	host.Publish(topic, 0, false, ncmd("Node Control/Scan Rate", sparkplug.TypeInt64, sparkplug.WireValue{Kind: sparkplug.KindLong, Bits: 250}))
	host.WaitFrom(i, 10*time.Second, "NDATA with scan rate 250", func(m sphost.Message) bool {
		v, ok := metricValue(host, m, "Node Control/Scan Rate")
		return m.Topic.Type == sparkplug.NDATA && ok && v.Bits == 250
	})
	for _, m := range host.Messages()[i:] {
		if v, ok := metricValue(host, m, "Node Control/Scan Rate"); ok && m.Topic.Type == sparkplug.NDATA && v.Bits == 5 {
			t.Error("a 5 ms scan rate was accepted")
		}
	}
	host.Verify(t, "Scenario", "Node2", sphost.Expect{Aliases: true, Devices: []string{"PLC1"}})
}
