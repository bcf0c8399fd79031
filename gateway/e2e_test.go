package gateway_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wellgate/wellgate/config"
	_ "github.com/wellgate/wellgate/drivers/all"
	"github.com/wellgate/wellgate/gateway"
	"github.com/wellgate/wellgate/internal/peers"
	"github.com/wellgate/wellgate/internal/sphost"
	"github.com/wellgate/wellgate/sparkplug"
)

// plc is an in-process Modbus TCP server with a register image the test controls.
type plc = peers.PLC

func put32(regs []uint16, at int, v uint32, cdab bool) {
	hi, lo := uint16(v>>16), uint16(v)
	if cdab {
		hi, lo = lo, hi
	}
	regs[at], regs[at+1] = hi, lo
}

func freeAddr(t *testing.T) string { return peers.FreePort(t) }

func startPLC(t *testing.T, p *plc) string { return peers.StartPLC(t, p) }

// want is one tag of the end-to-end map: what the PLC holds and what Ignition must see.
type want struct {
	name, address, typ, order string
	dt                        sparkplug.DataType
	check                     func(sparkplug.WireValue) bool
}

func wantInt(v uint64) func(sparkplug.WireValue) bool {
	return func(w sparkplug.WireValue) bool { return w.Kind == sparkplug.KindInt && w.Bits == v }
}

func wantFloat(v float32) func(sparkplug.WireValue) bool {
	return func(w sparkplug.WireValue) bool {
		return w.Kind == sparkplug.KindFloat && uint32(w.Bits) == math.Float32bits(v)
	}
}

func wantBool(v bool) func(sparkplug.WireValue) bool {
	return func(w sparkplug.WireValue) bool { return w.Kind == sparkplug.KindBool && (w.Bits == 1) == v }
}

var tagMap = []want{
	{"HR/Int16", "40001", "int16", "", sparkplug.TypeInt16, wantInt(uint64(uint32(0xFFFFFC18)))}, // -1000 sign-extended
	{"HR/UInt16", "40002", "uint16", "", sparkplug.TypeUInt16, wantInt(65000)},
	{"HR/Int32 ABCD", "40003", "int32", "ABCD", sparkplug.TypeInt32, wantInt(uint64(uint32(0xFFFE1DC0)))}, // -123456
	{"HR/Int32 CDAB", "40005", "int32", "CDAB", sparkplug.TypeInt32, wantInt(123456)},
	{"HR/UInt32 ABCD", "40007", "uint32", "ABCD", sparkplug.TypeUInt32, wantInt(4000000000)},
	{"HR/UInt32 CDAB", "40009", "uint32", "CDAB", sparkplug.TypeUInt32, wantInt(3000000000)},
	{"HR/Float ABCD", "40011", "float32", "ABCD", sparkplug.TypeFloat, wantFloat(-12.5)},
	{"HR/Float CDAB", "40013", "float32", "CDAB", sparkplug.TypeFloat, wantFloat(851.25)},
	{"IR/Int16", "30001", "int16", "", sparkplug.TypeInt16, wantInt(42)},
	{"IR/UInt16", "30002", "uint16", "", sparkplug.TypeUInt16, wantInt(7)},
	{"IR/Float CDAB", "30003", "float32", "CDAB", sparkplug.TypeFloat, wantFloat(3.75)},
	{"IR/UInt32 ABCD", "30005", "uint32", "ABCD", sparkplug.TypeUInt32, wantInt(65537)},
	{"Coil/Pump", "00001", "bool", "", sparkplug.TypeBoolean, wantBool(true)},
	{"Coil/Valve", "00002", "bool", "", sparkplug.TypeBoolean, wantBool(false)},
	{"DI/ESD", "10001", "bool", "", sparkplug.TypeBoolean, wantBool(false)},
	{"DI/Door", "10002", "bool", "", sparkplug.TypeBoolean, wantBool(true)},
}

func loadImage(p *plc) {
	p.Holding[0] = uint16(0xFC18) // -1000
	p.Holding[1] = 65000
	n := int32(-123456)
	put32(p.Holding[:], 2, uint32(n), false)
	put32(p.Holding[:], 4, 123456, true)
	put32(p.Holding[:], 6, 4000000000, false)
	put32(p.Holding[:], 8, 3000000000, true)
	put32(p.Holding[:], 10, math.Float32bits(-12.5), false)
	put32(p.Holding[:], 12, math.Float32bits(851.25), true)
	p.Input[0] = 42
	p.Input[1] = 7
	put32(p.Input[:], 2, math.Float32bits(3.75), true)
	put32(p.Input[:], 4, 65537, false)
	p.Coils[0], p.Coils[1] = true, false
	p.Discrete[0], p.Discrete[1] = false, true
}

func writeConfig(t *testing.T, plcAddr string) string {
	t.Helper()
	dir := t.TempDir()
	toml := fmt.Sprintf(`
[gateway]
data_dir = %q
log_level = "debug"

[sparkplug]
group_id = "E2E"
edge_node_id = "Node1"

[broker]
listen = "127.0.0.1:0"

[web]
enabled = false

[[device]]
name = "PLC1"
driver = "modbus-tcp"
address = %q
poll_interval = "100ms"
timeout = "500ms"
`, filepath.Join(dir, "data"), plcAddr)
	for _, w := range tagMap {
		toml += fmt.Sprintf("\n  [[device.tag]]\n  name = %q\n  address = %q\n  type = %q\n", w.name, w.address, w.typ)
		if w.order != "" {
			toml += fmt.Sprintf("  byte_order = %q\n", w.order)
		}
	}
	return writeTOML(t, dir, toml)
}

// writeTOML writes a gateway configuration to dir/wellgate.toml and returns its path.
func writeTOML(t *testing.T, dir, src string) string {
	t.Helper()
	path := filepath.Join(dir, "wellgate.toml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func startGateway(t *testing.T, path string) *gateway.Gateway {
	t.Helper()
	r := startGatewayN(t, path)
	t.Cleanup(r.stop)
	return r.Gateway
}

// running is a gateway started by a test, with a way to stop it and check how Run ended.
type running struct {
	*gateway.Gateway
	t      *testing.T
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func (r *running) stop() {
	r.once.Do(func() {
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				r.t.Errorf("gateway Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			r.t.Error("gateway did not stop within 15s")
		}
	})
}

func startGatewayN(t *testing.T, path string) *running {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	g, err := gateway.New(cfg, logger, "test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Gateway: g, t: t, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- g.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for g.BrokerAddr() == "" {
		if time.Now().After(deadline) {
			r.stop()
			t.Fatal("embedded broker did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return r
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func isType(typ sparkplug.MessageType, device string) func(sphost.Message) bool {
	return func(m sphost.Message) bool { return m.Topic.Type == typ && m.Topic.Device == device }
}

// TestEndToEnd: Modbus TCP server → gateway → embedded broker → an MQTT subscriber that decodes
// NBIRTH/DBIRTH/DDATA and finds exactly the PLC's values with the right Sparkplug datatypes.
func TestEndToEnd(t *testing.T) {
	p := &plc{}
	p.Set(loadImage)
	g := startGateway(t, writeConfig(t, startPLC(t, p)))
	host := sphost.Connect(t, "tcp://"+g.BrokerAddr())

	// The node was born before the host subscribed: ask for a rebirth, as Ignition does.
	from := len(host.Messages())
	host.Rebirth("E2E", "Node1")
	nbirth, i := host.WaitFrom(from, 10*time.Second, "NBIRTH", isType(sparkplug.NBIRTH, ""))
	if !nbirth.Payload.HasSeq || nbirth.Payload.Seq != 0 {
		t.Errorf("[payloads-nbirth-seq] NBIRTH seq = %d (present %v), want 0 on the wire", nbirth.Payload.Seq, nbirth.Payload.HasSeq)
	}
	dbirth, _ := host.WaitFrom(i, 10*time.Second, "DBIRTH PLC1", isType(sparkplug.DBIRTH, "PLC1"))
	if dbirth.Payload.Seq != 1 {
		t.Errorf("DBIRTH seq = %d, want 1 (right after NBIRTH)", dbirth.Payload.Seq)
	}
	checkBirth(t, host, dbirth)

	// Change one value: the next DDATA carries it, and only it.
	from = len(host.Messages())
	p.Set(func(p *plc) { p.Holding[1] = 12345 })
	ddata, _ := host.WaitFrom(from, 10*time.Second, "DDATA with HR/UInt16", func(m sphost.Message) bool {
		if m.Topic.Type != sparkplug.DDATA {
			return false
		}
		for _, mm := range host.Metrics(m) {
			if mm.Resolved == "HR/UInt16" {
				return true
			}
		}
		return false
	})
	ms := host.Metrics(ddata)
	if len(ms) != 1 {
		names := []string{}
		for _, m := range ms {
			names = append(names, m.Resolved)
		}
		t.Fatalf("DDATA carries %d metrics %v, want only the changed HR/UInt16", len(ms), names)
	}
	if v := ms[0].Value; v.Kind != sparkplug.KindInt || v.Bits != 12345 {
		t.Errorf("HR/UInt16 in DDATA = %+v, want int_value 12345", v)
	}
	if ddata.Retain {
		t.Error("[payloads-ddata-retain] DDATA retained")
	}
	host.Verify(t, "E2E", "Node1", sphost.Expect{Aliases: true, Devices: []string{"PLC1"}})
}

func checkBirth(t *testing.T, host *sphost.Host, dbirth sphost.Message) {
	t.Helper()
	got := map[string]sphost.Metric{}
	for _, m := range host.Metrics(dbirth) {
		got[m.Resolved] = m
	}
	for _, w := range tagMap {
		m, ok := got[w.name]
		if !ok {
			t.Errorf("DBIRTH lacks %q", w.name)
			continue
		}
		if m.Datatype != w.dt {
			t.Errorf("%s: datatype %d, want %d", w.name, m.Datatype, w.dt)
		}
		if m.IsNull || !w.check(m.Value) {
			t.Errorf("%s: value %+v (null %v), not the PLC's", w.name, m.Value, m.IsNull)
		}
	}
	if len(got) != len(tagMap) {
		t.Errorf("DBIRTH has %d metrics, want %d", len(got), len(tagMap))
	}
}
