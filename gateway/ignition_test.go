package gateway_test

// What an Ignition host sees (issue 10), end to end: PLCs on Modbus TCP, the gateway, the
// embedded broker and mosquitto as the upstream, each host checked by sphost.Verify.

import (
	"fmt"
	"io"
	"log"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mbserver "github.com/simonvetter/modbus"

	"github.com/wellgate/wellgate/bridge/queue"
	"github.com/wellgate/wellgate/internal/peers"
	"github.com/wellgate/wellgate/internal/sphost"
	"github.com/wellgate/wellgate/sparkplug"
)

// fieldConfig is a gateway "Field/PAD-3" keeping its data in dataDir, with an upstream at url
// ("" for none) and one PLC per address (PLC1, PLC2, and so on), each with a read-only Counter
// (40001) and a writable Choke/Setpoint (40002).
func fieldConfig(t *testing.T, dataDir, url string, plcs ...string) string {
	t.Helper()
	return fieldConfigWith(t, dataDir, url, "", plcs...)
}

// fieldConfigWith is fieldConfig with more [sparkplug] lines.
func fieldConfigWith(t *testing.T, dataDir, url, sparkplugExtra string, plcs ...string) string {
	t.Helper()
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
`, dataDir, sparkplugExtra)
	if url != "" {
		src += fmt.Sprintf("[upstream]\nservers = [%q]\nkeepalive = \"2s\"\n", url)
	}
	for i, addr := range plcs {
		src += fmt.Sprintf(`
[[device]]
name = "PLC%d"
driver = "modbus-tcp"
address = %q
poll_interval = "100ms"
timeout = "1s"
  [[device.tag]]
  name = "Counter"
  address = "40001"
  type = "uint16"
  [[device.tag]]
  name = "Choke/Setpoint"
  address = "40002"
  type = "uint16"
  writable = true
`, i+1, addr)
	}
	return writeTOML(t, t.TempDir(), src)
}

// slowPLC answers its first read late, as a device on a slow link does: births that do not
// wait for the first poll go out before it.
type slowPLC struct {
	*plc
	delay time.Duration
	once  sync.Once
}

func (s *slowPLC) HandleHoldingRegisters(r *mbserver.HoldingRegistersRequest) ([]uint16, error) {
	if !r.IsWrite {
		s.once.Do(func() { time.Sleep(s.delay) }) // the slow device, not synchronisation
	}
	return s.plc.HandleHoldingRegisters(r)
}

func serveSlow(t *testing.T, p *slowPLC) string {
	t.Helper()
	addr := freeAddr(t)
	srv, err := mbserver.NewServer(&mbserver.ServerConfiguration{URL: "tcp://" + addr, Timeout: time.Minute,
		MaxClients: 8, Logger: log.New(io.Discard, "", 0)}, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	return addr
}

// hasHistorical reports whether a message of the node carries a historical metric.
func hasHistorical(msgs []sphost.Message) bool {
	for _, m := range msgs {
		if m.Payload == nil || m.Topic.EdgeNode != "PAD-3" {
			continue
		}
		for _, mm := range m.Payload.Metrics {
			if mm.IsHistorical {
				return true
			}
		}
	}
	return false
}

// The first upstream births carry the device's values, not nulls (they wait for the first
// poll, as the local ones do), and no node metric comes after them as historical NDATA.
func TestUpstreamFirstBirths(t *testing.T) {
	mq := peers.StartMosquitto(t)
	host := sphost.Connect(t, mq.URL())
	p := &slowPLC{plc: &plc{}, delay: 300 * time.Millisecond}
	p.Set(func(p *plc) { p.Holding[0], p.Holding[1] = 1234, 56 })
	startGateway(t, fieldConfig(t, t.TempDir(), mq.URL(), serveSlow(t, p)))
	db, i := host.WaitFrom(0, 20*time.Second, "DBIRTH upstream", isType(sparkplug.DBIRTH, "PLC1"))
	for name, want := range map[string]uint64{"Counter": 1234, "Choke/Setpoint": 56} {
		v, ok := metricValue(host, db, name)
		m := metricOf(host, db, name)
		if !ok || m.IsNull || v.Bits != want {
			t.Errorf("upstream DBIRTH %s = %+v (null %v), want the PLC's %d (docs/sparkplug.md [births-after-first-poll])", name, v, m.IsNull, want)
		}
	}
	// A change marks the point by which a historical NDATA would have followed the births.
	p.Set(func(p *plc) { p.Holding[0] = 1235 })
	host.WaitFrom(i, 20*time.Second, "DDATA with the new counter", func(m sphost.Message) bool {
		v, ok := metricValue(host, m, "Counter")
		return m.Topic.Type == sparkplug.DDATA && ok && v.Bits == 1235
	})
	if hasHistorical(host.Messages()) {
		t.Error("historical metrics after the first births: values the births carried went out again (docs/sparkplug.md [node-metrics-not-queued] [historical-covered-by-birth])")
	}
	host.Verify(t, "Field", "PAD-3", sphost.Expect{Aliases: true, FromStart: true, Devices: []string{"PLC1"}})
}

func metricOf(host *sphost.Host, m sphost.Message, name string) sphost.Metric {
	for _, mm := range host.Metrics(m) {
		if mm.Resolved == name {
			return mm
		}
	}
	return sphost.Metric{}
}

// deadBirth checks a DBIRTH of a device that is down: every metric, with its datatype from the
// tag map, null with Quality Bad.
func deadBirth(t *testing.T, where string, host *sphost.Host, m sphost.Message) {
	t.Helper()
	ms := host.Metrics(m)
	if len(ms) != 2 {
		t.Errorf("%s: DBIRTH of the down device has %d metrics, want both tags (docs/sparkplug.md [device-born-dead])", where, len(ms))
	}
	for _, mm := range ms {
		q, ok := mm.Properties.Get(sparkplug.PropQuality)
		if !mm.IsNull || mm.Datatype != sparkplug.TypeUInt16 || !ok || q.Value.Bits != 0 {
			t.Errorf("%s: DBIRTH metric %s = %+v: want null UInt16 with Quality 0 (docs/sparkplug.md [device-born-dead])", where, mm.Resolved, mm.Metric)
		}
	}
}

// A device that is down at start is visible from the first births, upstream and locally:
// DBIRTH with its metrics, null and Bad, then DDEATH; when it answers, DBIRTH with its values.
// The upstream births wait for the primary host, which comes online only once the gateway
// knows the device is down; locally, a rebirth asked for then shows the same.
func TestDeviceDownAtStart(t *testing.T) {
	mq := peers.StartMosquitto(t)
	up := sphost.Connect(t, mq.URL())
	p1, p2 := &plc{}, &plc{}
	p2.Set(func(p *plc) { p.Holding[0] = 77 })
	addr2 := freeAddr(t) // nothing answers there yet
	g := startGateway(t, fieldConfigWith(t, t.TempDir(), mq.URL(), `primary_host_id = "SCADA"`, startPLC(t, p1), addr2))
	local := sphost.Connect(t, "tcp://"+g.BrokerAddr())
	local.Rebirth("Field", "PAD-3") // the local births went out before the host subscribed
	local.WaitFrom(0, 20*time.Second, "local DDEATH PLC2: the gateway knows it is down", isType(sparkplug.DDEATH, "PLC2"))

	// Now the first upstream births, and a local rebirth.
	stateTopic := sparkplug.StateTopic("SCADA")
	up.Publish(stateTopic, 1, true, stateJSON(true, time.Now().UnixMilli()))
	t.Cleanup(func() { up.Publish(stateTopic, 1, true, nil) })
	from := len(local.Messages())
	local.Rebirth("Field", "PAD-3")

	deaths := map[string]int{}
	for _, c := range []struct {
		where string
		host  *sphost.Host
		from  int
	}{{"upstream", up, 0}, {"local", local, from}} {
		_, i := c.host.WaitFrom(c.from, 20*time.Second, c.where+" NBIRTH", nodeMsg(sparkplug.NBIRTH))
		db, j := c.host.WaitFrom(i, 20*time.Second, c.where+" DBIRTH PLC2 in the births", isType(sparkplug.DBIRTH, "PLC2"))
		deadBirth(t, c.where, c.host, db)
		_, deaths[c.where] = c.host.WaitFrom(j, 20*time.Second, c.where+" DDEATH PLC2", isType(sparkplug.DDEATH, "PLC2"))
	}
	peers.ServePLC(t, addr2, p2)
	for _, c := range []struct {
		where string
		host  *sphost.Host
	}{{"upstream", up}, {"local", local}} {
		c.host.WaitFrom(deaths[c.where], 30*time.Second, c.where+" DBIRTH PLC2 with its values", func(m sphost.Message) bool {
			v, ok := metricValue(c.host, m, "Counter")
			return m.Topic.Type == sparkplug.DBIRTH && m.Topic.Device == "PLC2" && ok && v.Bits == 77
		})
	}
	up.Verify(t, "Field", "PAD-3", sphost.Expect{Aliases: true, FromStart: true, Devices: []string{"PLC1", "PLC2"}})
	local.Verify(t, "Field", "PAD-3", sphost.Expect{Aliases: true, Devices: []string{"PLC1", "PLC2"}})
}

// A clean stop (as SIGTERM) and a start send no history: the NDEATH's PUBACK proved every
// value published before it, and node metrics are never queued.
func TestCleanStopAndStartSendNoHistory(t *testing.T) {
	mq := peers.StartMosquitto(t)
	host := sphost.Connect(t, mq.URL())
	p := &plc{}
	addr, data := startPLC(t, p), t.TempDir()
	path := fieldConfig(t, data, mq.URL(), addr)
	g := startGatewayN(t, path)
	_, i := host.WaitFrom(0, 20*time.Second, "NBIRTH", nodeMsg(sparkplug.NBIRTH))
	for v := uint64(1); v <= 5; v++ { // values published live just before the stop
		p.Set(func(p *plc) { p.Holding[0] = uint16(v) })
		_, i = host.WaitFrom(i, 20*time.Second, fmt.Sprintf("DDATA %d", v), func(m sphost.Message) bool {
			got, ok := metricValue(host, m, "Counter")
			return m.Topic.Type == sparkplug.DDATA && ok && got.Bits == v
		})
	}
	g.stop()
	host.WaitFrom(i, 20*time.Second, "NDEATH", nodeMsg(sparkplug.NDEATH))
	q, err := queue.OpenDisk(filepath.Join(data, "queue"), queue.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := q.Len(); n != 0 {
		t.Errorf("%d records in the store-and-forward queue after a clean stop, want 0", n)
	}
	q.Close()
	mark := len(host.Messages())
	startGateway(t, path)
	_, j := host.WaitFrom(mark, 20*time.Second, "NBIRTH after the restart", nodeMsg(sparkplug.NBIRTH))
	p.Set(func(p *plc) { p.Holding[0] = 6 })
	host.WaitFrom(j, 20*time.Second, "DDATA 6", func(m sphost.Message) bool {
		got, ok := metricValue(host, m, "Counter")
		return m.Topic.Type == sparkplug.DDATA && ok && got.Bits == 6
	})
	if hasHistorical(host.Messages()[mark:]) {
		t.Error("historical values after a clean stop and start: history was sent again")
	}
	host.Verify(t, "Field", "PAD-3", sphost.Expect{Aliases: true, FromStart: true, Devices: []string{"PLC1"}})
}

// setpointWrites counts the writes a PLC receives.
func setpointWrites(p *plc) *atomic.Int32 {
	var n atomic.Int32
	p.Set(func(p *plc) { p.BeforeWrite = func() { n.Add(1) } })
	return &n
}

// waitSetpoint waits until the PLC's setpoint register holds v.
func waitSetpoint(t *testing.T, p *plc, v uint16, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		p.Lock()
		got := p.Holding[1]
		p.Unlock()
		if got == v {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: setpoint %d, want %d", what, got, v)
		}
		time.Sleep(10 * time.Millisecond) // polling the PLC's register
	}
}

// A retained DCMD on the upstream broker is never written: across three restarts the PLC gets
// only the live commands sent after it.
func TestRetainedDCMDUpstreamIgnored(t *testing.T) {
	mq := peers.StartMosquitto(t)
	host := sphost.Connect(t, mq.URL())
	topic := sparkplug.DeviceTopic("Field", sparkplug.DCMD, "PAD-3", "PLC1")
	host.Publish(topic, 1, true, dcmd("Choke/Setpoint", 99))
	t.Cleanup(func() { host.Publish(topic, 1, true, nil) })
	p := &plc{}
	writes := setpointWrites(p)
	path := fieldConfig(t, t.TempDir(), mq.URL(), startPLC(t, p))
	for run := 1; run <= 3; run++ {
		mark := len(host.Messages())
		g := startGatewayN(t, path)
		host.WaitFrom(mark, 20*time.Second, "DBIRTH", isType(sparkplug.DBIRTH, "PLC1"))
		// A live command after the births comes after the retained replay: once it is
		// written, the retained one has been handled.
		host.Publish(topic, 1, false, dcmd("Choke/Setpoint", uint64(run)))
		waitSetpoint(t, p, uint16(run), fmt.Sprintf("run %d", run))
		g.stop()
		if n := writes.Load(); n != int32(run) {
			t.Fatalf("run %d: the PLC got %d writes, want %d: the retained DCMD was written (docs/sparkplug.md [cmd-retained-ignored])", run, n, run)
		}
	}
	host.Verify(t, "Field", "PAD-3", sphost.Expect{Aliases: true, FromStart: true, Devices: []string{"PLC1"}})
}

// A retained DCMD on the embedded broker (kept across restarts in its store) is never
// written: not when published, not when replayed at each of three starts.
func TestRetainedDCMDLocalIgnored(t *testing.T) {
	p := &plc{}
	writes := setpointWrites(p)
	path := fieldConfig(t, t.TempDir(), "", startPLC(t, p))
	topic := sparkplug.DeviceTopic("Field", sparkplug.DCMD, "PAD-3", "PLC1")
	for run := 1; run <= 3; run++ {
		g := startGatewayN(t, path)
		host := sphost.Connect(t, "tcp://"+g.BrokerAddr())
		if run == 1 {
			host.Publish(topic, 1, true, dcmd("Choke/Setpoint", 99))
		}
		host.Publish(topic, 1, false, dcmd("Choke/Setpoint", uint64(run)))
		waitSetpoint(t, p, uint16(run), fmt.Sprintf("run %d", run))
		if run == 3 {
			host.Publish(topic, 1, true, nil) // clear it
		}
		g.stop()
		if n := writes.Load(); n != int32(run) {
			t.Fatalf("run %d: the PLC got %d writes, want %d: the retained DCMD was written (docs/sparkplug.md [cmd-retained-ignored])", run, n, run)
		}
	}
}

// quiet waits until no NBIRTH of the node arrives at any of hosts for d (the rebirth hold-off
// and more): used only to give a wrong behaviour its chance to show, never to synchronise.
func quiet(t *testing.T, d time.Duration, hosts ...*sphost.Host) {
	t.Helper()
	count := func() int {
		n := 0
		for _, h := range hosts {
			n += countType(h.Messages(), sparkplug.NBIRTH)
		}
		return n
	}
	n, since := count(), time.Now()
	for deadline := time.Now().Add(30 * time.Second); time.Since(since) < d; {
		if time.Now().After(deadline) {
			t.Fatal("NBIRTHs did not stop")
		}
		if m := count(); m != n {
			n, since = m, time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// 1,000 Rebirth requests in a second, upstream and locally at once, give a bounded number of
// births on each: the first request is served, the others merge into one rebirth when the
// hold-off (1 s) has passed.
func TestRebirthStorm(t *testing.T) {
	mq := peers.StartMosquitto(t)
	up := sphost.Connect(t, mq.URL())
	p := &plc{}
	g := startGateway(t, fieldConfig(t, t.TempDir(), mq.URL(), startPLC(t, p)))
	local := sphost.Connect(t, "tcp://"+g.BrokerAddr())
	up.WaitFrom(0, 20*time.Second, "DBIRTH upstream", isType(sparkplug.DBIRTH, "PLC1"))
	hosts := map[string]*sphost.Host{"upstream": up, "local": local}
	before := map[string]int{}
	var took sync.Map
	var wg sync.WaitGroup
	for where, host := range hosts {
		before[where] = countType(host.Messages(), sparkplug.NBIRTH)
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			for range 1000 {
				host.Rebirth("Field", "PAD-3")
			}
			took.Store(where, time.Since(start))
		}()
	}
	wg.Wait()
	// A command after each storm, handled in order, marks the point by which it was handled.
	dcmdTopic := sparkplug.DeviceTopic("Field", sparkplug.DCMD, "PAD-3", "PLC1")
	up.Publish(dcmdTopic, 1, false, dcmd("Choke/Setpoint", 1))
	waitSetpoint(t, p, 1, "the upstream command after the storm")
	local.Publish(dcmdTopic, 1, false, dcmd("Choke/Setpoint", 2))
	waitSetpoint(t, p, 2, "the local command after the storm")
	quiet(t, 1500*time.Millisecond, up, local)
	for where, host := range hosts {
		births := countType(host.Messages(), sparkplug.NBIRTH) - before[where]
		d, _ := took.Load(where)
		t.Logf("%s: 1000 Rebirth requests in %v gave %d NBIRTHs", where, d.(time.Duration).Round(time.Millisecond), births)
		if births < 1 || births > 3 {
			t.Errorf("%s: %d NBIRTHs for 1000 Rebirth requests, want 1 to 3 (docs/sparkplug.md [rebirth-holdoff])", where, births)
		}
	}
	up.Verify(t, "Field", "PAD-3", sphost.Expect{Aliases: true, FromStart: true, Devices: []string{"PLC1"}})
	local.Verify(t, "Field", "PAD-3", sphost.Expect{Aliases: true, Devices: []string{"PLC1"}})
}
