//go:build load

package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/gopcua/opcua/ua"

	"github.com/wellgate/wellgate/config"
	"github.com/wellgate/wellgate/gateway"
	"github.com/wellgate/wellgate/internal/procfs"
	"github.com/wellgate/wellgate/sparkplug"
)

// Load harness: 5,000 monitored items on one OPC UA server, every value changing every second,
// through a whole gateway (OPC UA driver, store, report by exception, Sparkplug session,
// embedded broker) to an MQTT subscriber. The gateway runs in a child process (this test binary
// again, doing what `wellgate run` does), so that its CPU and RSS are its own; the OPC UA
// server and the subscriber run in this one. The delay is from each value's source timestamp
// (set by the server when it changes the value) to the DDATA carrying it arriving at the
// subscriber (the metric's timestamp is the source timestamp, in ms).
//
//	WELLGATE_LOAD=30s go test -tags load -count=1 -run TestOPCUAGatewayLoad -v ./gateway/
//	(WELLGATE_LOAD_INTERVAL=100ms for a shorter poll_interval, the publishing and sampling
//	interval, than the default 1s)
const opcuaLoadItems = 5000

// opcuaLoadGatewayEnv names the configuration the child process runs a gateway with.
const opcuaLoadGatewayEnv = "WELLGATE_OPCUA_LOAD_GATEWAY"

// TestOPCUALoadGateway is the child process of TestOPCUAGatewayLoad: a gateway run from the
// configuration file, until its standard input closes. It prints "broker ADDR" once the
// embedded broker listens.
func TestOPCUALoadGateway(t *testing.T) {
	g := childGateway(t, opcuaLoadGatewayEnv, "TestOPCUAGatewayLoad")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	go func() { _, _ = bufio.NewReader(os.Stdin).ReadString('\n'); cancel() }()
	for g.BrokerAddr() == "" {
		select {
		case err := <-done:
			t.Fatalf("gateway ended before its broker listened: %v", err)
		case <-time.After(10 * time.Millisecond): // polling a state that announces nothing
		}
	}
	fmt.Printf("broker %s\n", g.BrokerAddr())
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// procStat returns a process's user+system CPU time, from /proc/PID/stat.
// childGateway is the gateway of a load test's child process (this test binary again, as
// `wellgate run` with warnings only): built from the configuration file the environment
// variable env names; without it the test is not the child of parent, and skips.
func childGateway(t *testing.T, env, parent string) *gateway.Gateway {
	path := os.Getenv(env)
	if path == "" {
		t.Skip("child process of " + parent)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	g, err := gateway.New(cfg, logger, "load")
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func procStat(pid int) time.Duration { return procfs.CPUTime(pid) }

// procStatus returns a field of /proc/PID/status ("VmRSS", "VmHWM").
func procStatus(pid int, field string) string {
	if v, ok := procfs.Status(pid, field); ok {
		return v
	}
	return "unknown"
}

func TestOPCUAGatewayLoad(t *testing.T) {
	span, err := time.ParseDuration(os.Getenv("WELLGATE_LOAD"))
	if err != nil {
		t.Skip("set WELLGATE_LOAD=30s to measure 5,000 monitored items changing every second through a gateway")
	}
	interval := time.Second
	if v := os.Getenv("WELLGATE_LOAD_INTERVAL"); v != "" {
		if interval, err = time.ParseDuration(v); err != nil {
			t.Fatal(err)
		}
	}

	// The server: 5,000 Doubles, all changed every second with the time of the change.
	ts := newUAServer(t, freeAddr(t), nil)
	names := make([]string, opcuaLoadItems)
	var tags strings.Builder
	for i := range names {
		names[i] = fmt.Sprintf("v%04d", i)
		fmt.Fprintf(&tags, "  [[device.tag]]\n  name = \"Load/%s\"\n  node_id = %q\n  type = \"Double\"\n",
			names[i], ts.add(names[i], ua.TypeIDDouble, 0.0, false))
	}
	ts.start()
	t.Cleanup(ts.stop)
	stopTicks := make(chan struct{})
	ticking := make(chan struct{})
	go func() {
		defer close(ticking)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for n := 1.0; ; n++ {
			select {
			case <-tick.C:
			case <-stopTicks:
				return
			}
			for _, name := range names {
				ts.set(name, n, time.Now())
			}
		}
	}()
	t.Cleanup(func() { close(stopTicks); <-ticking })

	// The gateway, in a child process.
	dir := t.TempDir()
	src := fmt.Sprintf(`
[gateway]
data_dir = %q
log_level = "warn"
[sparkplug]
group_id = "Load"
edge_node_id = "Node"
aliases = true
[broker]
listen = "127.0.0.1:0"
[web]
enabled = false
[[device]]
name = "Skid"
driver = "opcua"
endpoint = "opc.tcp://%s"
mode = "subscribe"
poll_interval = %q
timeout = "10s"
`, filepath.Join(dir, "data"), ts.addr, interval.String()) + tags.String()
	path := writeTOML(t, dir, src)
	cmd := exec.Command(os.Args[0], "-test.run=^TestOPCUALoadGateway$", "-test.v")
	cmd.Env = append(os.Environ(), opcuaLoadGatewayEnv+"="+path)
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		stdin.Close() // the child stops its gateway (NDEATH) and exits
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-exited
		}
	})
	brokerAddr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "broker "); ok {
				brokerAddr <- a
			}
		}
	}()
	var addr string
	select {
	case addr = <-brokerAddr:
	case <-time.After(60 * time.Second):
		t.Fatal("the gateway's broker did not start within 60s")
	}

	// The subscriber: every DDATA of the skid, each metric's delay from its source timestamp.
	var (
		mu      sync.Mutex
		record  bool
		delays  []time.Duration
		msgs    int
		bytes   int
		metrics int
		first   = make(chan struct{})
		once    sync.Once
	)
	opts := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("load-subscriber").SetCleanSession(true)
	client := paho.NewClient(opts)
	if tok := client.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v", tok.Error())
	}
	defer client.Disconnect(100)
	topic := sparkplug.DeviceTopic("Load", sparkplug.DDATA, "Node", "Skid")
	tok := client.Subscribe(topic, 0, func(_ paho.Client, m paho.Message) {
		now := time.Now()
		p, err := sparkplug.Unmarshal(m.Payload())
		if err != nil {
			t.Errorf("undecodable DDATA: %v", err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if !record {
			if len(p.Metrics) > 0 {
				once.Do(func() { close(first) })
			}
			return
		}
		msgs++
		bytes += len(m.Payload())
		for _, mm := range p.Metrics {
			if mm.HasTimestamp && !mm.IsNull {
				delays = append(delays, now.Sub(time.UnixMilli(int64(mm.Timestamp))))
			}
		}
		metrics += len(p.Metrics)
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	select {
	case <-first:
	case <-time.After(120 * time.Second):
		t.Fatal("no DDATA within 120s: the device did not come up")
	}
	// Let the subscription settle before measuring (the window below is the measurement, not
	// synchronisation).
	time.Sleep(3 * max(interval, time.Second))
	pid := cmd.Process.Pid
	mu.Lock()
	record = true
	mu.Unlock()
	cpu0, wall0 := procStat(pid), time.Now()
	time.Sleep(span)
	cpu, wall := procStat(pid)-cpu0, time.Since(wall0)
	mu.Lock()
	record = false
	got := slices.Clone(delays)
	n, b, nm := msgs, bytes, metrics
	mu.Unlock()
	rss, hwm := procStatus(pid, "VmRSS"), procStatus(pid, "VmHWM")

	slices.Sort(got)
	pct := func(p float64) time.Duration {
		if len(got) == 0 {
			return 0
		}
		return got[min(len(got)-1, int(p*float64(len(got))))].Round(time.Millisecond)
	}
	t.Logf("%d monitored items changing every 1s, poll_interval %v, for %v: %d DDATA (%.1f/s, %.0f bytes on average), %d metrics (%.0f/s)",
		opcuaLoadItems, interval, wall.Round(time.Millisecond), n, float64(n)/wall.Seconds(), float64(b)/float64(max(n, 1)),
		nm, float64(nm)/wall.Seconds())
	t.Logf("delay source timestamp → DDATA at the subscriber: p50 %v, p99 %v, max %v", pct(0.5), pct(0.99), pct(1))
	t.Logf("gateway process: CPU %.1f%% of one core (%v over %v); RSS %s (peak %s)",
		100*cpu.Seconds()/wall.Seconds(), cpu.Round(10*time.Millisecond), wall.Round(time.Millisecond), rss, hwm)
	if want := float64(opcuaLoadItems) * wall.Seconds() * 0.9; float64(len(got)) < want {
		t.Errorf("%d values arrived, want at least %.0f", len(got), want)
	}
}
