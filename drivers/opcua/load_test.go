//go:build load

package opcua

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/internal/peers"
	"github.com/wellgate/wellgate/internal/procfs"
)

// Load harness: 5,000 monitored items on one gopcua server, every value changing every
// second. The server runs in a child process (this test binary again), so that the CPU and
// memory figures are the driver's alone; the delay is from each value's source timestamp
// (set by the server when it changes the value) to Sink.Samples.
//
//	WELLGATE_LOAD=20s go test -tags load -count=1 -run TestSubscribeLoad -v ./drivers/opcua/
//	(WELLGATE_LOAD_INTERVAL=100ms for a shorter publishing interval than the default 1s)
const loadItems = 5000

// TestLoadServer is the child process of TestSubscribeLoad.
func TestLoadServer(t *testing.T) {
	addr := os.Getenv("WELLGATE_OPCUA_LOAD_SERVER")
	if addr == "" {
		t.Skip("child process of TestSubscribeLoad")
	}
	ts, err := newTestServer(addr, serverLimits{})
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, loadItems)
	for i := range names {
		names[i] = fmt.Sprintf("v%04d", i)
		ts.add(names[i], ua.TypeIDDouble, 0.0, false)
	}
	fmt.Println("READY")
	go func() { _, _ = bufio.NewReader(os.Stdin).ReadString('\n'); os.Exit(0) }()
	tick := time.NewTicker(time.Second)
	for n := 1.0; ; n++ {
		<-tick.C
		for _, name := range names {
			ts.set(name, n, time.Now())
		}
	}
}

// delaySink records the delay of every good sample from its source timestamp.
type delaySink struct {
	mu      sync.Mutex
	delays  []time.Duration
	record  bool
	up      chan struct{}
	upOnce  sync.Once
	samples int
}

func (s *delaySink) Samples(batch []drivers.Sample) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range batch {
		if x.Quality == drivers.Good && s.record {
			s.delays = append(s.delays, now.Sub(x.Time))
		}
	}
	s.samples += len(batch)
}

func (s *delaySink) DeviceState(device string, up bool, err error) {
	if up {
		s.upOnce.Do(func() { close(s.up) })
	}
}

func TestSubscribeLoad(t *testing.T) {
	span, err := time.ParseDuration(os.Getenv("WELLGATE_LOAD"))
	if err != nil {
		t.Skip("set WELLGATE_LOAD=20s to measure 5,000 monitored items changing every second")
	}
	interval := time.Second
	if v := os.Getenv("WELLGATE_LOAD_INTERVAL"); v != "" {
		if interval, err = time.ParseDuration(v); err != nil {
			t.Fatal(err)
		}
	}
	addr := peers.FreePort(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestLoadServer$")
	cmd.Env = append(os.Environ(), "WELLGATE_OPCUA_LOAD_SERVER="+addr)
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); _ = cmd.Process.Signal(syscall.SIGKILL); _ = cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && sc.Text() != "READY" {
	}
	go func() {
		for sc.Scan() {
		}
	}()

	dev := DeviceOptions{Name: "load", Endpoint: "opc.tcp://" + addr, Interval: interval, Timeout: 10 * time.Second}
	for i := range loadItems {
		dev.Tags = append(dev.Tags, TagOptions{Name: fmt.Sprintf("v%04d", i), NodeID: fmt.Sprintf("nsu=urn:wellgate:test;s=v%04d", i), Type: "Double"})
	}
	log, _ := newLogger()
	d, err := New(Options{Devices: []DeviceOptions{dev}}, log)
	if err != nil {
		t.Fatal(err)
	}
	sink := &delaySink{up: make(chan struct{})}
	go d.Run(t.Context(), sink)
	defer d.Close()
	select {
	case <-sink.up:
	case <-time.After(60 * time.Second):
		t.Fatal("the device did not come up")
	}
	time.Sleep(3 * interval) // let the subscription settle: the measurement starts after it
	runtime.GC()
	sink.mu.Lock()
	sink.record = true
	sink.mu.Unlock()
	cpu0, wall0 := cpuTime(), time.Now()
	time.Sleep(span) // the measurement window itself, not synchronisation
	cpu, wall := cpuTime()-cpu0, time.Since(wall0)
	sink.mu.Lock()
	delays := slices.Clone(sink.delays)
	sink.record = false
	sink.mu.Unlock()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	slices.Sort(delays)
	pct := func(p float64) time.Duration {
		if len(delays) == 0 {
			return 0
		}
		return delays[min(len(delays)-1, int(p*float64(len(delays))))].Round(time.Millisecond)
	}
	st := d.Status()[0]
	t.Logf("%d monitored items changing every 1s, publishing interval %v, for %v: %d samples (%.0f/s), %d errors",
		loadItems, interval, wall.Round(time.Millisecond), len(delays), float64(len(delays))/wall.Seconds(), st.Errors)
	t.Logf("delay source timestamp → Sink.Samples: p50 %v, p99 %v, max %v", pct(0.5), pct(0.99), pct(1))
	t.Logf("driver CPU %.2f%% of one core (%v); RSS %s; Go heap in use %.1f MiB, %d goroutines",
		100*cpu.Seconds()/wall.Seconds(), cpu.Round(time.Millisecond), rss(), float64(ms.HeapInuse)/(1<<20), runtime.NumGoroutine())
	if want := float64(loadItems) * wall.Seconds() * 0.9; float64(len(delays)) < want {
		t.Errorf("%d samples, want at least %.0f", len(delays), want)
	}
	if !strings.Contains(st.LastError, "") {
		t.Log(st.LastError)
	}
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration { return procfs.SelfCPUTime() }

// rss reads the resident set size from /proc/self/status.
func rss() string {
	if v, ok := procfs.Status(os.Getpid(), "VmRSS"); ok {
		return v
	}
	return "unknown"
}
