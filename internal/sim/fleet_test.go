package sim

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goburrow/modbus"

	"github.com/wellgate/wellgate/config"
	_ "github.com/wellgate/wellgate/drivers/all" // the drivers decode their keys of the written config
)

func startFleet(t *testing.T, o FleetOptions) *Fleet {
	t.Helper()
	f, err := StartFleet(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	})
	return f
}

func modbusClient(t *testing.T, addr string) modbus.Client {
	t.Helper()
	h := modbus.NewTCPClientHandler(addr)
	h.Timeout = 5 * time.Second
	if err := h.Connect(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return modbus.NewClient(h)
}

// readAll reads every holding register of a device, 125 at a time.
func readAll(t *testing.T, c modbus.Client, tags int) []uint16 {
	t.Helper()
	out := make([]uint16, 0, tags)
	for at := 0; at < tags; at += 125 {
		n := min(125, tags-at)
		b, err := c.ReadHoldingRegisters(uint16(at), uint16(n))
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			out = append(out, binary.BigEndian.Uint16(b[2*i:]))
		}
	}
	return out
}

// TestFleetChangesAtItsRate counts the registers that change over about a second: at 20 % of
// 50 tags a second, 10 a second per device, one each tick; no register changes twice within
// the second, and a changed one has gone up by one.
func TestFleetChangesAtItsRate(t *testing.T) {
	const devices, tags, percent = 3, 50, 20
	f := startFleet(t, FleetOptions{Devices: devices, Tags: tags, ChangePercent: percent})
	if len(f.Addrs()) != devices {
		t.Fatalf("%d addresses, want %d", len(f.Addrs()), devices)
	}
	clients := make([]modbus.Client, devices)
	before := make([][]uint16, devices)
	start := time.Now()
	for i, addr := range f.Addrs() {
		clients[i] = modbusClient(t, addr)
		before[i] = readAll(t, clients[i], tags)
	}
	// Wait out about a second (a measurement, not a synchronisation: any length would do).
	for time.Since(start) < time.Second {
		readAll(t, clients[0], tags)
	}
	after := make([][]uint16, devices)
	for i := range clients {
		after[i] = readAll(t, clients[i], tags)
	}
	elapsed := time.Since(start)
	ticks := int(elapsed/changeTick) + 1 // at most, one change each
	for i := range devices {
		changed := 0
		for j := range tags {
			if d := after[i][j] - before[i][j]; d != 0 {
				changed++
				if d != 1 {
					t.Errorf("device %d register %d went from %d to %d: want +1", i, j, before[i][j], after[i][j])
				}
			}
		}
		// On a loaded machine the ticker drops ticks: a third of the rate is enough.
		if changed < ticks/3 || changed > ticks {
			t.Errorf("device %d: %d registers changed in %v, want about %d", i, changed, elapsed, ticks-1)
		}
		t.Logf("device %d: %d registers changed in %v", i, changed, elapsed)
	}
}

func TestFleetWritesReadBack(t *testing.T) {
	f := startFleet(t, FleetOptions{Devices: 2, Tags: 20}) // nothing changes: what we write stays
	c := modbusClient(t, f.Addrs()[1])
	if got := readAll(t, c, 20); got[0] != 0 || got[19] != 19 {
		t.Fatalf("initial registers %v: want 0…19", got)
	}
	if _, err := c.WriteSingleRegister(7, 0xBEEF); err != nil { // FC6
		t.Fatal(err)
	}
	if _, err := c.WriteMultipleRegisters(17, 3, []byte{0, 1, 0x80, 0, 0xff, 0xff}); err != nil { // FC16
		t.Fatal(err)
	}
	got := readAll(t, c, 20)
	if got[7] != 0xBEEF || got[17] != 1 || got[18] != 0x8000 || got[19] != 0xffff {
		t.Errorf("registers after the writes: %v", got)
	}
	if other := readAll(t, modbusClient(t, f.Addrs()[0]), 20); other[7] != 7 {
		t.Errorf("device 0 register 7 = %d: a write to device 1 reached it", other[7])
	}
	if _, err := c.ReadHoldingRegisters(15, 6); err == nil || !strings.Contains(err.Error(), "exception '2'") {
		t.Errorf("read past the last register: %v, want illegal data address", err)
	}
	if _, err := c.ReadInputRegisters(0, 1); err == nil {
		t.Error("input registers read: want illegal function")
	}
}

func TestFleetFirstPortAndPortInUse(t *testing.T) {
	// The port in use is the second device's (a fleet's); the first device's port, the one
	// below, must be stopped again. Another process may hold the port below: try again.
	for attempt := 0; ; attempt++ {
		f := startFleet(t, FleetOptions{Devices: 1, Tags: 1})
		_, port, _ := strings.Cut(f.Addrs()[0], ":")
		p, _ := strconv.Atoi(port)
		below := "127.0.0.1:" + strconv.Itoa(p-1)
		_, err := StartFleet(FleetOptions{Devices: 2, Tags: 1, FirstPort: p - 1})
		if err != nil && strings.Contains(err.Error(), below) && attempt < 5 {
			continue
		}
		if err == nil || !strings.Contains(err.Error(), f.Addrs()[0]) {
			t.Fatalf("port %d in use: error %v, want one naming %s", p, err, f.Addrs()[0])
		}
		g := startFleet(t, FleetOptions{Devices: 1, Tags: 1, FirstPort: p - 1}) // free again
		if g.Addrs()[0] != below {
			t.Errorf("address %s, want %s", g.Addrs()[0], below)
		}
		return
	}
}

func TestFleetOptionsCheck(t *testing.T) {
	for _, c := range []struct {
		o    FleetOptions
		want string
	}{
		{FleetOptions{Devices: 1, Tags: 0}, "tags 0"},
		{FleetOptions{Devices: 1, Tags: MaxTags + 1}, "tags 10001"},
		{FleetOptions{Devices: 1, Tags: 1, ChangePercent: 101}, "change 101"},
		{FleetOptions{Devices: 1, Tags: 1, ChangePercent: -1}, "change -1"},
		{FleetOptions{Devices: 1, Tags: 1, ChangePercent: math.NaN()}, "change NaN"},
		{FleetOptions{Tags: 1}, "devices 0: want at least one device"},
		{FleetOptions{Devices: -1, OPCUA: 1, Tags: 1}, "devices -1"},
		{FleetOptions{Devices: 10, Tags: 1, FirstPort: 65530}, "port 65530: want at most 65526"},
	} {
		if err := c.o.Check(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.o, err, c.want)
		}
	}
	if err := (FleetOptions{Devices: 10, Tags: MaxTags, ChangePercent: 100, FirstPort: 65526}).Check(); err != nil {
		t.Errorf("valid options: %v", err)
	}
}

func TestChangeScheduleSpreadsEvenly(t *testing.T) {
	for _, perSecond := range []int{1, 5, 10, 19, 20, 1000, 10000} {
		s := changeSchedule{milliPerSecond: int64(perSecond) * 1000}
		for second := range 3 {
			var counts []int
			for range 10 {
				counts = append(counts, s.next())
			}
			sum := 0
			for _, n := range counts {
				sum += n
			}
			if sum != perSecond || slices.Max(counts)-slices.Min(counts) > 1 {
				t.Errorf("%d a second, second %d: ticks %v", perSecond, second, counts)
			}
		}
	}
}

// TestChangeScheduleFraction: half a change a second is one every other second.
func TestChangeScheduleFraction(t *testing.T) {
	s := changeSchedule{milliPerSecond: 500}
	total := 0
	for second := range 100 {
		n := 0
		for range 10 {
			n += s.next()
		}
		if n > 1 {
			t.Fatalf("second %d: %d changes", second, n)
		}
		total += n
	}
	if total != 50 {
		t.Errorf("%d changes in 100 s, want 50", total)
	}
}

func TestChangeOrderRepeats(t *testing.T) {
	a, b, c := changeOrder(100, 3), changeOrder(100, 3), changeOrder(100, 4)
	if !slices.Equal(a, b) || slices.Equal(a, c) {
		t.Error("orders: the same seed must give the same order, another seed another")
	}
	sorted := slices.Clone(a)
	slices.Sort(sorted)
	for j, v := range sorted {
		if int(v) != j {
			t.Fatalf("order %v is not a permutation of 0…99", a)
		}
	}
}

// TestFleetChangeAllocates nothing per tick.
func TestFleetChangeAllocatesNothing(t *testing.T) {
	d := newFleetDevice(200, 1)
	if n := testing.AllocsPerRun(100, func() { d.change(2) }); n != 0 {
		t.Errorf("%v allocations per change", n)
	}
}

func TestFleetConfigLoads(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "simulate.toml")
	c := FleetConfig{DataDir: filepath.Join(dir, `da"ta`), Broker: "127.0.0.1:1883", Web: Off,
		Upstream: "tcp://127.0.0.1:1884", Interval: 500 * time.Millisecond, Schedule: config.ScheduleStart,
		Tags: 3, Modbus: []string{"127.0.0.1:5020", "127.0.0.1:5021"}, OPCUA: []string{"opc.tcp://127.0.0.1:4840"}}
	if err := WriteFleetConfig(path, c); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		b, _ := os.ReadFile(path)
		t.Fatalf("%v\n%s", err, b)
	}
	if cfg.Gateway.DataDir != c.DataDir || cfg.Gateway.LogLevel != "warn" || cfg.Web.Enabled ||
		cfg.Broker.Listen != "127.0.0.1:1883" || !slices.Equal(cfg.Upstream.Servers, []string{c.Upstream}) ||
		cfg.Sparkplug.GroupID != "Simulated" || cfg.Sparkplug.EdgeNodeID != "Gateway" || !cfg.Sparkplug.Aliases {
		t.Errorf("sections: %+v %+v %+v %+v %+v", cfg.Gateway, cfg.Sparkplug, cfg.Broker.Listen, cfg.Web.Enabled, cfg.Upstream.Servers)
	}
	var got []string
	for _, d := range cfg.Devices {
		got = append(got, fmt.Sprintf("%s %s %v %s %d", d.Name, d.Driver, d.PollInterval.D(), d.PollSchedule, len(d.Tags)))
		if d.Tags[2].Name != "T0002" {
			t.Errorf("device %s tag 2 is %q", d.Name, d.Tags[2].Name)
		}
	}
	want := []string{"PLC001 modbus-tcp 500ms start 3", "PLC002 modbus-tcp 500ms start 3", "OPCUA01 opcua 500ms start 3"}
	if !slices.Equal(got, want) {
		t.Errorf("devices %q, want %q", got, want)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries: a temporary file stayed", len(entries))
	}
}

// BenchmarkFleetCPU measures the simulator's own CPU at 200 devices × 200 tags, 10 % a second,
// nobody polling: the changes alone. Run it with
//
//	go test -run '^$' -bench FleetCPU -benchtime 1x ./internal/sim/
//
// It reports the process's user+system CPU over a window as a percentage of one core.
func BenchmarkFleetCPU(b *testing.B) {
	const window = 5 * time.Second
	f, err := StartFleet(FleetOptions{Devices: 200, Tags: 200, ChangePercent: 10})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.ResetTimer()
	for range b.N {
		before, start := cpuTime(b), time.Now()
		<-time.After(window) // the measured window, not a synchronisation
		used, elapsed := cpuTime(b)-before, time.Since(start)
		b.ReportMetric(100*used.Seconds()/elapsed.Seconds(), "%cpu")
	}
}

// cpuTime is the user and system CPU the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
