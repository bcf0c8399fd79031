//go:build load

package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/wellgate/wellgate/config"
	"github.com/wellgate/wellgate/internal/peers"
	"github.com/wellgate/wellgate/internal/procfs"
	"github.com/wellgate/wellgate/internal/sim"
	"github.com/wellgate/wellgate/sparkplug"
)

// Fleet load harness, the figures of issue 14's table: N simulated Modbus TCP devices (M int16
// holding registers each, 10 % of them changing per second, spread over the second: the fleet
// of `wellgate simulate`, sim.StartFleet), a gateway run from the TOML file the simulator
// writes (sim.WriteFleetConfig) polling them, upstream to Debian's mosquitto, and an MQTT
// subscriber on mosquitto measuring each value's delay from its source timestamp (the poll's
// time, in ms, as the metric carries it) to its arrival. The devices, mosquitto and the
// subscriber run in this process (or mosquitto's own); the gateway runs in a child process
// (this test binary again, doing what `wellgate run` does) so that its CPU and RSS are its own.
//
//	WELLGATE_LOAD=30s go test -tags load -count=1 -run TestFleetLoad -v ./gateway/
//
// WELLGATE_FLEET picks the fleets (default "50x200@1s,50x200@100ms,200x200@1s": devices ×
// tags @ poll_interval); WELLGATE_FLEET_CHANGE the percent of tags changing per second
// (default 10). WELLGATE_FLEET_PROFILE=DIR makes the child write a CPU profile of the
// measurement window and a heap profile at its end into DIR (cpu-FLEET.pprof, heap-FLEET.pprof).
// The child inherits the environment, so GOMEMLIMIT=150MiB measures the packaged unit's setting.
// It does not apply `wellgate run`'s GC percents (cmd/wellgate/gc.go: 50 while running, 20 while
// loading, when GOGC is not set): GOGC=50 gives the running gateway's.
const fleetGatewayEnv = "WELLGATE_FLEET_GATEWAY"

// TestFleetLoadGateway is the child process of TestFleetLoad: a gateway run from the
// configuration file until its standard input closes. The lines "cpu PATH" and "heap PATH" on
// its standard input start a CPU profile, and stop it and write a heap profile; "metrics PATH"
// writes what its page's /metrics says.
func TestFleetLoadGateway(t *testing.T) {
	g := childGateway(t, fleetGatewayEnv, "TestFleetLoad")
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer cancel()
		var cpu *os.File
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			var err error
			cmd, arg, _ := strings.Cut(sc.Text(), " ")
			switch cmd {
			case "cpu":
				if cpu, err = os.Create(arg); err == nil {
					err = pprof.StartCPUProfile(cpu)
				}
			case "metrics":
				err = saveMetrics(g.WebAddr(), arg)
			case "heap":
				if cpu != nil {
					pprof.StopCPUProfile()
					cpu.Close()
				}
				runtime.GC() // the in-use figures as of now, not as of the last cycle
				f, ferr := os.Create(arg)
				if ferr == nil {
					err = pprof.WriteHeapProfile(f)
					f.Close()
				}
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "profile:", err)
			}
			fmt.Println("done", cmd)
		}
	}()
	if err := g.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// saveMetrics writes the page's /metrics at addr to path.
func saveMetrics(addr, path string) error {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(path, body, 0o644)
}

// latencyQuantiles reads the wellgate_publish_latency_seconds histogram of session from a
// /metrics text and returns the upper bounds of the buckets holding the median and the 99th
// percentile, and the count; the count is 0 without one.
func latencyQuantiles(text, session string) (p50, p99 float64, count float64) {
	prefix := `wellgate_publish_latency_seconds_bucket{session="` + session + `",le="`
	type bucket struct{ le, n float64 }
	var bs []bucket
	for line := range strings.Lines(text) {
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		le, n, _ := strings.Cut(rest, `"} `)
		l, _ := strconv.ParseFloat(le, 64)
		v, _ := strconv.ParseFloat(strings.TrimSpace(n), 64)
		bs = append(bs, bucket{l, v})
	}
	if len(bs) == 0 || bs[len(bs)-1].n == 0 {
		return 0, 0, 0
	}
	count = bs[len(bs)-1].n
	at := func(q float64) float64 {
		for _, b := range bs {
			if b.n >= q*count {
				return b.le
			}
		}
		return math.Inf(1)
	}
	return at(0.5), at(0.99), count
}

// fleet is one measured configuration.
type fleet struct {
	devices, tags int
	interval      time.Duration
}

func (f fleet) String() string { return fmt.Sprintf("%dx%d@%v", f.devices, f.tags, f.interval) }

func parseFleets(t *testing.T, s string) []fleet {
	var out []fleet
	for _, one := range strings.Split(s, ",") {
		var f fleet
		size, iv, ok := strings.Cut(strings.TrimSpace(one), "@")
		d, n, ok2 := strings.Cut(size, "x")
		var err1, err2, err3 error
		f.devices, err1 = strconv.Atoi(d)
		f.tags, err2 = strconv.Atoi(n)
		f.interval, err3 = time.ParseDuration(iv)
		if !ok || !ok2 || err1 != nil || err2 != nil || err3 != nil || f.tags < 1 || f.tags > sim.MaxTags {
			t.Fatalf("WELLGATE_FLEET: %q is not DEVICESxTAGS@INTERVAL (1..%d tags)", one, sim.MaxTags)
		}
		out = append(out, f)
	}
	return out
}

// startFleet serves f's devices on loopback, 10 % of each one's registers changing per second,
// and writes the gateway's configuration for them into dir: group sim.Group, devices PLC001….
func startFleet(t *testing.T, dir, upstream string, f fleet) (configPath string) {
	change := 10.0
	if v := os.Getenv("WELLGATE_FLEET_CHANGE"); v != "" {
		var err error
		if change, err = strconv.ParseFloat(v, 64); err != nil {
			t.Fatalf("WELLGATE_FLEET_CHANGE=%q: %v", v, err)
		}
	}
	fl, err := sim.StartFleet(sim.FleetOptions{Devices: f.devices, Tags: f.tags, ChangePercent: change})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := fl.Close(); err != nil {
			t.Error(err)
		}
	})
	configPath = filepath.Join(dir, "wellgate.toml")
	err = sim.WriteFleetConfig(configPath, sim.FleetConfig{
		DataDir: filepath.Join(dir, "data"), Broker: "127.0.0.1:0", Web: "127.0.0.1:0", Upstream: upstream,
		Interval: f.interval, Schedule: config.ScheduleClock, Tags: f.tags, Modbus: fl.Addrs(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return configPath
}

// fleetChild is the gateway's process.
type fleetChild struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	acks  chan string
}

func startFleetChild(t *testing.T, path string) *fleetChild {
	cmd := exec.Command(os.Args[0], "-test.run=^TestFleetLoadGateway$", "-test.v")
	cmd.Env = append(os.Environ(), fleetGatewayEnv+"="+path)
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &fleetChild{cmd: cmd, stdin: stdin, acks: make(chan string, 4)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "done "); ok {
				c.acks <- a
			}
		}
	}()
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
	return c
}

// tell sends the child a profile command and waits until it has done it.
func (c *fleetChild) tell(t *testing.T, line string) {
	if _, err := fmt.Fprintln(c.stdin, line); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.acks:
	case <-time.After(30 * time.Second):
		t.Fatalf("the child did not do %q within 30s", line)
	}
}

// fleetSub is the upstream subscriber: every message of the group, its bytes, and each DDATA
// metric's delay from its timestamp.
type fleetSub struct {
	mu      sync.Mutex
	record  bool
	seen    map[string]bool // devices that sent a DDATA
	all     chan struct{}   // closed once every device has
	n       int
	delays  []time.Duration
	msgs    int
	bytes   int // payload + topic
	metrics int
}

func (s *fleetSub) handle(t *testing.T, m paho.Message) {
	now := time.Now()
	tp, err := sparkplug.ParseTopic(m.Topic())
	if err != nil || tp.Type != sparkplug.DDATA {
		s.count(m)
		return
	}
	p, err := sparkplug.Unmarshal(m.Payload())
	if err != nil {
		t.Errorf("undecodable DDATA: %v", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.seen[tp.Device] {
		s.seen[tp.Device] = true
		if len(s.seen) == s.n {
			close(s.all)
		}
	}
	if !s.record {
		return
	}
	s.msgs++
	s.bytes += len(m.Payload()) + len(m.Topic())
	s.metrics += len(p.Metrics)
	for _, mm := range p.Metrics {
		if mm.HasTimestamp && !mm.IsNull {
			s.delays = append(s.delays, now.Sub(time.UnixMilli(int64(mm.Timestamp))))
		}
	}
}

func (s *fleetSub) count(m paho.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.record {
		s.msgs++
		s.bytes += len(m.Payload()) + len(m.Topic())
	}
}

func TestFleetLoad(t *testing.T) {
	span, err := time.ParseDuration(os.Getenv("WELLGATE_LOAD"))
	if err != nil {
		t.Skip("set WELLGATE_LOAD=30s to measure simulated Modbus fleets through a gateway to mosquitto")
	}
	spec := os.Getenv("WELLGATE_FLEET")
	if spec == "" {
		spec = "50x200@1s,50x200@100ms,200x200@1s"
	}
	for _, f := range parseFleets(t, spec) {
		t.Run(f.String(), func(t *testing.T) { measureFleet(t, f, span) })
	}
}

func measureFleet(t *testing.T, f fleet, span time.Duration) {
	mosq := peers.StartMosquitto(t)
	dir := t.TempDir()
	path := startFleet(t, dir, mosq.URL(), f)

	sub := &fleetSub{seen: map[string]bool{}, all: make(chan struct{}), n: f.devices}
	opts := paho.NewClientOptions().AddBroker(mosq.URL()).SetClientID("fleet-subscriber").SetCleanSession(true)
	client := paho.NewClient(opts)
	if tok := client.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v", tok.Error())
	}
	defer client.Disconnect(100)
	if tok := client.Subscribe("spBv1.0/"+sim.Group+"/#", 0, func(_ paho.Client, m paho.Message) { sub.handle(t, m) }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	start := time.Now()
	child := startFleetChild(t, path)
	pid := child.cmd.Process.Pid
	select {
	case <-sub.all:
	case <-time.After(120 * time.Second):
		t.Fatalf("DDATA from %d of %d devices within 120s", len(sub.seen), f.devices)
	}
	up := time.Since(start)
	rssStart, hwmStart, anonStart := procStatusKB(pid, "VmRSS"), procStatusKB(pid, "VmHWM"), procStatusKB(pid, "RssAnon")

	// Let start-up settle (births, the first full DDATA, the heap's first cycles) before the
	// window: this sleep is part of the measurement, not synchronisation.
	time.Sleep(5 * time.Second)
	prof := os.Getenv("WELLGATE_FLEET_PROFILE")
	if prof != "" {
		child.tell(t, "cpu "+filepath.Join(prof, "cpu-"+f.String()+".pprof"))
	}
	sub.mu.Lock()
	sub.record = true
	sub.mu.Unlock()
	cpu0, wall0 := procStat(pid), time.Now()
	var rssMax int
	for end := wall0.Add(span); time.Now().Before(end); {
		time.Sleep(min(time.Second, time.Until(end)))
		rssMax = max(rssMax, procStatusKB(pid, "VmRSS"))
	}
	cpu, wall := procStat(pid)-cpu0, time.Since(wall0)
	sub.mu.Lock()
	sub.record = false
	got := slices.Clone(sub.delays)
	msgs, bytes, metrics := sub.msgs, sub.bytes, sub.metrics
	sub.mu.Unlock()
	rss, hwm, anon := procStatusKB(pid, "VmRSS"), procStatusKB(pid, "VmHWM"), procStatusKB(pid, "RssAnon")
	metricsFile := filepath.Join(dir, "metrics.txt")
	child.tell(t, "metrics "+metricsFile)
	metricsText, _ := os.ReadFile(metricsFile)
	if prof != "" {
		child.tell(t, "heap "+filepath.Join(prof, "heap-"+f.String()+".pprof"))
	}

	slices.Sort(got)
	pct := func(p float64) time.Duration {
		if len(got) == 0 {
			return 0
		}
		return got[min(len(got)-1, int(p*float64(len(got))))]
	}
	tagsTotal := f.devices * f.tags
	polled := float64(tagsTotal) * wall.Seconds() / f.interval.Seconds() // nominal: every tag every interval
	t.Logf("%v: %d tags; every device's first DDATA %v after start; window %v", f, tagsTotal, up.Round(time.Millisecond), wall.Round(time.Millisecond))
	t.Logf("  CPU per polled value     %.3f µs (%v CPU, %.1f%% of one core, %.0f values polled/s)",
		cpu.Seconds()*1e6/polled, cpu.Round(10*time.Millisecond), 100*cpu.Seconds()/wall.Seconds(), polled/wall.Seconds())
	// RssAnon leaves out the mapped binary: a test binary's text is larger than wellgate's.
	t.Logf("  RSS steady               %.1f MB, anonymous %.1f MB (max in window %.1f MB; peak since start %.1f MB)", mb(rss), mb(anon), mb(rssMax), mb(hwm))
	t.Logf("  RSS after start          %.1f MB = %.2f kB per tag; anonymous %.1f MB = %.2f kB per tag (peak by then %.1f MB)",
		mb(rssStart), float64(rssStart)/float64(tagsTotal), mb(anonStart), float64(anonStart)/float64(tagsTotal), mb(hwmStart))
	t.Logf("  upstream bytes per value %.3f (payload+topic; %d messages, %d metrics = %.1f%% of polled values)",
		float64(bytes)/polled, msgs, metrics, 100*float64(metrics)/polled)
	t.Logf("  poll → subscriber        p50 %v, p99 %v, max %v (%d values; ms timestamps)",
		pct(0.5).Round(100*time.Microsecond), pct(0.99).Round(100*time.Microsecond), pct(1).Round(100*time.Microsecond), len(got))
	// The gateway's own histogram, since start: each value from its poll to its publication.
	for _, session := range []string{"local", "upstream"} {
		p50, p99, n := latencyQuantiles(string(metricsText), session)
		t.Logf("  poll → publish %-9s p50 ≤ %gs, p99 ≤ %gs (%.0f values since start; wellgate_publish_latency_seconds buckets)", session, p50, p99, n)
	}
	// A tenth of the registers change per second, so about that many values must arrive.
	if want := 0.05 * float64(tagsTotal) * wall.Seconds(); float64(len(got)) < want {
		t.Errorf("%d values arrived, want at least %.0f", len(got), want)
	}
}

func procStatusKB(pid int, field string) int {
	kb, _ := procfs.StatusKB(pid, field)
	return kb
}

func mb(kb int) float64 { return float64(kb) / 1024 }
