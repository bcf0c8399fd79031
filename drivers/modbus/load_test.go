//go:build load

package modbus

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wellgate/wellgate/internal/procfs"
)

// Load harness: 50 devices × 200 tags polled every second over loopback. The servers run in a
// child process (this test binary again), so the figures are the driver's alone.
//
//	make load (WELLGATE_LOAD=20s go test -tags load -run TestPollLoad -v ./drivers/modbus/)
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
	var cfg Options
	types := []string{"uint16", "int16", "float32", "int32", "uint32"}
	for i, addr := range addrs {
		dev := tcpOptions("dev"+strconv.Itoa(i), addr, 1)
		at := 0
		for j := range loadTags {
			typ := types[j%len(types)]
			dev.Tags = append(dev.Tags, TagOptions{Name: fmt.Sprintf("tag%03d", j), Address: fmt.Sprintf("hr:%d", at), Type: typ})
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
func cpuTime() time.Duration { return procfs.SelfCPUTime() }

// rss reads the resident set size from /proc/self/status.
func rss() string {
	if v, ok := procfs.Status(os.Getpid(), "VmRSS"); ok {
		return v
	}
	return "unknown"
}
