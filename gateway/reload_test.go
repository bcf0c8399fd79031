package gateway_test

import (
	"errors"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/wellgate/wellgate/config"
	"github.com/wellgate/wellgate/gateway"
	"github.com/wellgate/wellgate/internal/peers"
	"github.com/wellgate/wellgate/internal/sphost"
	"github.com/wellgate/wellgate/sparkplug"
)

// appendConfig appends text to the configuration file at path and loads it, as SIGHUP does.
func appendConfig(t *testing.T, path, text string) *config.Config {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// waitTag polls the status page's view until device/tag shows display.
func waitTag(t *testing.T, g *gateway.Gateway, device, tag, display string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, d := range g.Snapshot().Devices {
			for _, tg := range d.Tags {
				if d.Name == device && tg.Name == tag && tg.Display == display && tg.Quality == "good" {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s never showed %s on the page", device, tag, display)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
}

func waitUpstreamOnline(t *testing.T, g *gateway.Gateway) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for g.Snapshot().Upstream.State != "online" {
		if time.Now().After(deadline) {
			t.Fatalf("upstream not online: %+v", g.Snapshot().Upstream)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
}

func carries(host *sphost.Host, typ sparkplug.MessageType, device, metric string, v uint64) func(sphost.Message) bool {
	return func(m sphost.Message) bool {
		got, ok := metricValue(host, m, metric)
		return m.Topic.Type == typ && m.Topic.Device == device && ok && got.Bits == v
	}
}

func hasMetric(host *sphost.Host, typ sparkplug.MessageType, device, metric string) func(sphost.Message) bool {
	return func(m sphost.Message) bool {
		_, ok := metricValue(host, m, metric)
		return m.Topic.Type == typ && m.Topic.Device == device && ok
	}
}

// TestReloadAddsTag: a reload that adds a tag to a running gateway. Upstream and on the
// embedded broker a rebirth (NBIRTH with the same bdSeq, then the DBIRTH) carries the new
// metric, whose value follows; the upstream connection is not made again (same Connects,
// same bdSeq); the value the old driver polled just before it stopped reaches the host and
// nothing queued is dropped; both streams pass Verify.
func TestReloadAddsTag(t *testing.T) {
	mq := peers.StartMosquitto(t)
	up := sphost.Connect(t, mq.URL())
	p := &plc{}
	p.Set(func(p *plc) { p.Holding[0], p.Holding[1] = 7, 4242 })
	path := upstreamConfig(t, startPLC(t, p), mq.URL(), "")
	g := startGateway(t, path)
	local := sphost.Connect(t, "tcp://"+g.BrokerAddr())
	up.Wait(20*time.Second, "DBIRTH upstream", isType(sparkplug.DBIRTH, "PLC1"))
	waitUpstreamOnline(t, g)
	before := g.Snapshot().Upstream

	p.Set(func(p *plc) { p.Holding[0] = 11 })
	waitTag(t, g, "PLC1", "Counter", "11") // polled by the old driver, through the outputs
	markUp, markLocal := len(up.Messages()), len(local.Messages())
	cfg := appendConfig(t, path, `
  [[device.tag]]
  name = "Pressure"
  address = "40002"
  type = "uint16"
`)
	if err := g.Reload(cfg); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	for _, h := range []struct {
		name string
		host *sphost.Host
		mark int
	}{{"upstream", up, markUp}, {"local", local, markLocal}} {
		nb, i := h.host.WaitFrom(h.mark, 20*time.Second, h.name+" NBIRTH after the reload", nodeMsg(sparkplug.NBIRTH))
		if h.name == "upstream" && bdSeq(nb) != before.BdSeq {
			t.Errorf("upstream NBIRTH after the reload has bdSeq %d, want the connection's %d", bdSeq(nb), before.BdSeq)
		}
		h.host.WaitFrom(i, 20*time.Second, h.name+" DBIRTH with Pressure", hasMetric(h.host, sparkplug.DBIRTH, "PLC1", "Pressure"))
		h.host.WaitFrom(i, 20*time.Second, h.name+" Pressure 4242", func(m sphost.Message) bool {
			return carries(h.host, sparkplug.DDATA, "PLC1", "Pressure", 4242)(m) || carries(h.host, sparkplug.DBIRTH, "PLC1", "Pressure", 4242)(m)
		})
	}
	up.WaitFrom(0, 20*time.Second, "Counter 11 upstream", func(m sphost.Message) bool {
		return carries(up, sparkplug.DDATA, "PLC1", "Counter", 11)(m) || carries(up, sparkplug.DBIRTH, "PLC1", "Counter", 11)(m)
	})
	waitTag(t, g, "PLC1", "Pressure", "4242")
	after := g.Snapshot().Upstream
	if after.Connects != before.Connects || after.BdSeq != before.BdSeq || after.State != "online" {
		t.Errorf("upstream after the reload: connects %d bdSeq %d state %s; before: connects %d bdSeq %d",
			after.Connects, after.BdSeq, after.State, before.Connects, before.BdSeq)
	}
	// What the queue held (the backlog of the first poll, replayed after the first births, is
	// acknowledged on proof of delivery) drains on the same session; nothing is dropped.
	deadline := time.Now().Add(20 * time.Second)
	for u := g.Snapshot().Upstream; u.Queued != 0 || u.Dropped != 0; u = g.Snapshot().Upstream {
		if u.Dropped != 0 || time.Now().After(deadline) {
			t.Fatalf("store-and-forward after the reload: %d dropped, %d queued", u.Dropped, u.Queued)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
	up.Verify(t, "Field", "PAD-3", sphost.Expect{Aliases: true, FromStart: true, Devices: []string{"PLC1"}})
	local.Verify(t, "Field", "PAD-3", sphost.Expect{Aliases: true, Devices: []string{"PLC1"}})
}

// TestReloadRemovesDevice: a reload that removes one of two devices. The rebirth upstream and
// locally has no DBIRTH for it, nothing is published for it afterwards, the page no longer
// shows it, and both streams pass Verify.
func TestReloadRemovesDevice(t *testing.T) {
	mq := peers.StartMosquitto(t)
	up := sphost.Connect(t, mq.URL())
	p := &plc{}
	p.Set(func(p *plc) { p.Holding[0] = 1 })
	plcAddr := startPLC(t, p)
	// PLC2 is the same PLC under another name; the reload's file drops it.
	keep := upstreamConfig(t, plcAddr, mq.URL(), "")
	src, err := os.ReadFile(keep)
	if err != nil {
		t.Fatal(err)
	}
	path := writeTOML(t, t.TempDir(), string(src)+`
[[device]]
name = "PLC2"
driver = "modbus-tcp"
address = "`+plcAddr+`"
poll_interval = "50ms"
  [[device.tag]]
  name = "Level"
  address = "40001"
  type = "uint16"
`)
	g := startGateway(t, path)
	local := sphost.Connect(t, "tcp://"+g.BrokerAddr())
	up.Wait(20*time.Second, "DBIRTH PLC2 upstream", isType(sparkplug.DBIRTH, "PLC2"))
	waitUpstreamOnline(t, g)
	connects := g.Snapshot().Upstream.Connects

	if err := os.WriteFile(path, src, 0o644); err != nil { // the same file without PLC2
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	markUp, markLocal := len(up.Messages()), len(local.Messages())
	if err := g.Reload(cfg); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	for _, h := range []struct {
		name string
		host *sphost.Host
		mark int
	}{{"upstream", up, markUp}, {"local", local, markLocal}} {
		_, i := h.host.WaitFrom(h.mark, 20*time.Second, h.name+" NBIRTH after the reload", nodeMsg(sparkplug.NBIRTH))
		h.host.WaitFrom(i, 20*time.Second, h.name+" DBIRTH PLC1 after the reload", isType(sparkplug.DBIRTH, "PLC1"))
	}
	// New data flows after the rebirth; none of it, nor any birth, is for PLC2.
	p.Set(func(p *plc) { p.Holding[0] = 2 })
	for _, h := range []struct {
		name string
		host *sphost.Host
		mark int
	}{{"upstream", up, markUp}, {"local", local, markLocal}} {
		h.host.WaitFrom(h.mark, 20*time.Second, h.name+" Counter 2", carries(h.host, sparkplug.DDATA, "PLC1", "Counter", 2))
		nb := -1
		for j, m := range h.host.Messages() {
			if j < h.mark {
				continue
			}
			if nodeMsg(sparkplug.NBIRTH)(m) && nb < 0 {
				nb = j
			}
			if nb >= 0 && m.Topic.Device == "PLC2" && m.Topic.Type != sparkplug.DCMD {
				t.Errorf("%s: %s published after the reload's NBIRTH", h.name, m.Topic)
			}
		}
	}
	for _, d := range g.Snapshot().Devices {
		if d.Name == "PLC2" {
			t.Error("the page still shows PLC2")
		}
	}
	if got := g.Snapshot().Upstream.Connects; got != connects {
		t.Errorf("upstream connects %d after the reload, %d before", got, connects)
	}
	up.Verify(t, "Field", "PAD-3", sphost.Expect{Aliases: true, FromStart: true, Devices: []string{"PLC1"}})
	local.Verify(t, "Field", "PAD-3", sphost.Expect{Aliases: true, Devices: []string{"PLC1"}})
}

// A reload before Run runs the devices is refused (ErrNotRunning).
func TestReloadBeforeRunRefused(t *testing.T) {
	p := &plc{}
	path := upstreamConfig(t, startPLC(t, p), "tcp://127.0.0.1:1", "")
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(cfg, slog.New(slog.DiscardHandler), "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Reload(cfg); !errors.Is(err, gateway.ErrNotRunning) {
		t.Errorf("Reload before Run: %v, want ErrNotRunning", err)
	}
}
