package gateway_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wellgate/wellgate/config"
	"github.com/wellgate/wellgate/gateway"
	"github.com/wellgate/wellgate/internal/sphost"
	"github.com/wellgate/wellgate/sparkplug"
)

// A start that fails half-way (the store-and-forward queue cannot be opened, after the broker
// and the page were bound) closes what it opened: both ports can be bound again at once.
func TestStartFailureReleasesPorts(t *testing.T) {
	dataDir := t.TempDir()
	// A file where the queue directory should be: the queue cannot open, even as root.
	if err := os.WriteFile(filepath.Join(dataDir, "queue"), []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	mqttAddr, webAddr := freeAddr(t), freeAddr(t)
	src := fmt.Sprintf(`
[gateway]
data_dir = %q
[sparkplug]
group_id = "G"
edge_node_id = "E"
[broker]
listen = %q
[web]
listen = %q
[upstream]
servers = ["tcp://127.0.0.1:1"]
`, dataDir, mqttAddr, webAddr)
	cfg, err := config.Load(writeTOML(t, t.TempDir(), src))
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(cfg, slog.New(slog.NewTextHandler(testWriter{t}, nil)), "test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = g.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "queue") {
		t.Fatalf("Run = %v, want a store-and-forward queue error", err)
	}
	for _, addr := range []string{mqttAddr, webAddr} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("port %s still bound after the failed start: %v", addr, err)
			continue
		}
		ln.Close()
	}
}

// Each device's writes wait only for that device: with one PLC holding every write, a write to
// another PLC lands while the first PLC's writes are still being tried.
func TestWritesPerDevice(t *testing.T) {
	held := make(chan struct{})
	var attempts atomic.Int32
	slow := &plc{}
	slow.BeforeWrite = func() { attempts.Add(1); <-held }
	fast := &plc{}
	slowAddr, fastAddr := startPLC(t, slow), startPLC(t, fast)
	src := fmt.Sprintf(`
[gateway]
data_dir = %q
[sparkplug]
group_id = "Writes"
edge_node_id = "Node"
[broker]
listen = "127.0.0.1:0"
[web]
enabled = false
[[device]]
name = "Slow"
driver = "modbus-tcp"
address = %q
poll_interval = "100ms"
timeout = "8s"
  [[device.tag]]
  name = "Setpoint"
  address = "40001"
  type = "uint16"
  writable = true
[[device]]
name = "Fast"
driver = "modbus-tcp"
address = %q
poll_interval = "100ms"
timeout = "200ms"
  [[device.tag]]
  name = "Setpoint"
  address = "40001"
  type = "uint16"
  writable = true
`, t.TempDir(), slowAddr, fastAddr)
	g := startGateway(t, writeTOML(t, t.TempDir(), src))
	t.Cleanup(func() { close(held) }) // before the gateway stops
	host := sphost.Connect(t, "tcp://"+g.BrokerAddr())
	from := len(host.Messages())
	host.Rebirth("Writes", "Node")
	host.WaitFrom(from, 10*time.Second, "DBIRTH Fast", isType(sparkplug.DBIRTH, "Fast"))

	// Slow holds its first write for its whole 8 s timeout; in one queue for all devices,
	// Fast's write would wait behind it.
	const slowWrites = 3
	for i := range slowWrites {
		host.Publish(sparkplug.DeviceTopic("Writes", sparkplug.DCMD, "Node", "Slow"), 0, false, dcmd("Setpoint", uint64(i+1)))
	}
	host.Publish(sparkplug.DeviceTopic("Writes", sparkplug.DCMD, "Node", "Fast"), 0, false, dcmd("Setpoint", 77))
	host.WaitFrom(from, 5*time.Second, "DDATA with Fast's written setpoint while Slow holds its write", func(m sphost.Message) bool {
		v, ok := metricValue(host, m, "Setpoint")
		return m.Topic.Type == sparkplug.DDATA && m.Topic.Device == "Fast" && ok && v.Bits == 77
	})
	if n := attempts.Load(); n >= slowWrites {
		t.Errorf("Slow's server saw all %d writes before Fast's landed", n)
	}
}
