package modbus

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wellgate/wellgate/config"
	"github.com/wellgate/wellgate/drivers"
)

// BenchmarkPlan10k plans a 10,000-tag map (one table, runs of mixed types with holes, max_gap 2)
// and reports the reads per cycle next to the exact optimum (they must be equal).
func BenchmarkPlan10k(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	tags, rules := bigMap(r, 10000)
	rules.gap = 2
	want := optimum(tags, rules)
	var reqs []*request
	b.ReportAllocs()
	for b.Loop() {
		reqs = planTable(tags, rules)
	}
	if len(reqs) != want {
		b.Fatalf("planner %d reads, optimum %d", len(reqs), want)
	}
	b.ReportMetric(float64(len(reqs)), "reads")
	b.ReportMetric(float64(want), "optimum")
}

// BenchmarkDecode decodes one full 125-register read holding a mix of tags and reports the
// time and allocations per tag.
func BenchmarkDecode(b *testing.B) {
	kinds := []kind{kUint16, kInt16, kInt32, kUint32, kFloat32, kFloat64, kInt64, kBool}
	r := &request{table: holdingRegisters}
	at := 0
	for i := 0; ; i++ {
		k := kinds[i%len(kinds)]
		t := &tag{index: i, table: holdingRegisters, start: uint16(at), kind: k, order: byteOrder(i % 4), bit: -1}
		t.size = uint16(k.registers())
		if k == kBool {
			t.bit = i % 16
		}
		if at+int(t.size) > 125 {
			break
		}
		r.tags = append(r.tags, t)
		at += int(t.size)
	}
	r.count = uint16(at)
	data := make([]byte, 2*at)
	for i := range data {
		data[i] = byte(i * 7)
	}
	out := make([]drivers.Sample, len(r.tags))
	b.ReportAllocs()
	for b.Loop() {
		if err := decodeResponse(r, data, time.Time{}, out); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(r.tags)), "ns/tag")
}

// Load harness: 50 devices × 200 tags polled every second over loopback. The servers run in a
// child process (this test binary again), so the figures are the driver's alone.
//
//	WELLGATE_LOAD=20s go test -run TestPollLoad -v ./drivers/modbus/
const (
	loadDevices = 50
	loadTags    = 200
)

// TestLoadServers is the child process of TestPollLoad: it serves loadDevices Modbus TCP
// servers, prints their addresses and runs until its stdin closes.
func TestLoadServers(t *testing.T) {
	if os.Getenv("WELLGATE_LOAD_SERVERS") == "" {
		t.Skip("child process of TestPollLoad")
	}
	for range loadDevices {
		s := newTestServer(t, 1)
		s.with(1, func(b *bank) {
			for i := range b.holding[:1000] {
				b.holding[i] = uint16(i)
			}
		})
		fmt.Println("ADDR", s.addr)
	}
	fmt.Println("READY")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
}

func TestPollLoad(t *testing.T) {
	span, err := time.ParseDuration(os.Getenv("WELLGATE_LOAD"))
	if err != nil {
		t.Skip("set WELLGATE_LOAD=20s to measure polling 50 devices × 200 tags at 1 s")
	}
	addrs := startLoadServers(t)
	cfg := &config.Config{}
	types := []string{"uint16", "int16", "float32", "int32", "uint32"}
	for i, addr := range addrs {
		dev := config.Device{Name: "dev" + strconv.Itoa(i), Driver: config.DriverModbusTCP, Address: addr, UnitID: 1,
			PollInterval: config.Duration(time.Second), Timeout: config.Duration(time.Second), MaxGap: 0}
		at := 0
		for j := range loadTags {
			typ := types[j%len(types)]
			dev.Tags = append(dev.Tags, config.Tag{Name: fmt.Sprintf("tag%03d", j), Address: config.Address(fmt.Sprintf("hr:%d", at)), Type: typ})
			at += map[string]int{"uint16": 1, "int16": 1, "float32": 2, "int32": 2, "uint32": 2}[typ]
		}
		cfg.Devices = append(cfg.Devices, dev)
	}
	d, sink := startDriver(t, cfg)
	eventually(t, 10*time.Second, "all devices up", func() bool {
		for i := range addrs {
			if sink.lastState("dev"+strconv.Itoa(i)) != 1 {
				return false
			}
		}
		return true
	})
	cpu0, wall0 := cpuTime(), time.Now()
	var reqs0 uint64
	for _, s := range d.Status() {
		reqs0 += s.Requests
	}
	time.Sleep(span) // the measurement window itself, not synchronisation
	cpu, wall := cpuTime()-cpu0, time.Since(wall0)
	var reqs, errs uint64
	for _, s := range d.Status() {
		reqs += s.Requests
		errs += s.Errors
	}
	var plan strings.Builder
	d.WritePlan(&plan)
	lines := strings.Split(strings.TrimSpace(plan.String()), "\n")
	t.Logf("%d devices × %d tags at 1 s for %v: %s; %d requests (%.0f/s), %d errors",
		loadDevices, loadTags, wall.Round(time.Millisecond), lines[len(lines)-1], reqs-reqs0, float64(reqs-reqs0)/wall.Seconds(), errs)
	t.Logf("driver CPU %.2f%% of one core (%v); RSS %s", 100*cpu.Seconds()/wall.Seconds(), cpu.Round(time.Millisecond), rss())
}

func startLoadServers(t *testing.T) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLoadServers$", "-test.v")
	cmd.Env = append(os.Environ(), "WELLGATE_LOAD_SERVERS=1")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	var addrs []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if a, ok := strings.CutPrefix(line, "ADDR "); ok {
			addrs = append(addrs, a)
		}
		if line == "READY" {
			break
		}
	}
	if len(addrs) != loadDevices {
		t.Fatalf("child started %d servers", len(addrs))
	}
	go func() { // keep draining the child's output
		for sc.Scan() {
		}
	}()
	return addrs
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rss reads the resident set size from /proc/self/status.
func rss() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
