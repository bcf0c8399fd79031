package modbus

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
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
		t := &tag{index: int32(i), table: holdingRegisters, start: uint16(at), kind: k, order: byteOrder(i % 4), bit: -1}
		t.size = uint16(k.registers())
		if k == kBool {
			t.bit = int8(i % 16)
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

// BenchmarkPollCycle measures whole poll cycles through the driver, as fast as the peer
// answers: one Modbus TCP device of 100 registers against the in-process server on loopback,
// and one RTU device of 10 registers against the in-test slave over a pty pair at 19200 baud
// (the silent interval between frames, 1.8 ms, bounds it). Allocations include the peer's.
func BenchmarkPollCycle(b *testing.B) {
	regs := func(n int) []TagOptions {
		var tags []TagOptions
		for i := range n {
			tags = append(tags, TagOptions{Name: "r" + strconv.Itoa(i), Address: "hr:" + strconv.Itoa(i)})
		}
		return tags
	}
	run := func(b *testing.B, dev DeviceOptions) {
		dev.PollInterval = time.Nanosecond
		_, sink := startDriver(b, Options{Devices: []DeviceOptions{dev}})
		eventually(b, 5*time.Second, "up", func() bool { return sink.lastState(dev.Name) == 1 })
		b.ReportAllocs()
		b.ResetTimer()
		start := sink.batchCount(dev.Name)
		for sink.batchCount(dev.Name) < start+b.N {
			time.Sleep(100 * time.Microsecond) // waiting for the driver's cycles
		}
	}
	b.Run("tcp", func(b *testing.B) {
		srv := newTestServer(b, 1)
		run(b, tcpDevice("plc", srv, 1, regs(100)...))
	})
	b.Run("rtu", func(b *testing.B) {
		a, p := ptyPair(b)
		newRTUSlave(b, p, 1)
		run(b, rtuDevice("plc", a, 1, regs(10)...))
	})
}

// fleetOptions are devices × tags int16 holding registers ("40001"…), one TCP device per
// port: the shape of the load test's fleet and of config's BenchmarkLoad40k.
func fleetOptions(devices, tags int) Options {
	var opts Options
	for i := range devices {
		dev := DeviceOptions{Name: fmt.Sprintf("D%03d", i), Address: "127.0.0.1:" + strconv.Itoa(10000+i),
			UnitID: 1, PollInterval: time.Second, Timeout: time.Second, ByteOrder: "ABCD",
			MaxRegisters: maxReadRegisters, MaxBits: maxReadBits, WriteSingleRegister: DefaultWriteSingleRegister,
			WriteCoil: DefaultWriteCoil, MaxBackoff: DefaultMaxBackoff}
		for j := range tags {
			dev.Tags = append(dev.Tags, TagOptions{Name: fmt.Sprintf("R%03d", j), Address: strconv.Itoa(40001 + j), Type: "int16"})
		}
		opts.Devices = append(opts.Devices, dev)
	}
	return opts
}

// BenchmarkDriverHeap builds a driver of 200 devices × 200 int16 tags with the descriptions
// the gateway keeps (Devices) and reports the live heap they hold per tag after a collection
// (live-B/tag: the driver, its plans and the TagInfo slices, tag names included), beside what
// building one costs (B/op, allocs/op).
func BenchmarkDriverHeap(b *testing.B) {
	const devices, tags = 200, 200
	b.ReportAllocs()
	for b.Loop() {
		d, err := New(fleetOptions(devices, tags), nil)
		if err != nil {
			b.Fatal(err)
		}
		_ = d.Devices()
	}
	b.StopTimer()
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	d, err := New(fleetOptions(devices, tags), nil)
	if err != nil {
		b.Fatal(err)
	}
	infos := d.Devices()
	runtime.GC()
	runtime.ReadMemStats(&m1)
	runtime.KeepAlive(d)
	runtime.KeepAlive(infos)
	b.ReportMetric(float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc))/(devices*tags), "live-B/tag")
}

// BenchmarkStart40k checks (validate, which config.Load calls) and builds (build, which the
// gateway calls) the devices of a loaded 40,000-tag configuration (200 devices × 200 int16
// tags, config's BenchmarkLoad40k file): B/op and allocs/op are what the driver adds to the
// start-up's peak.
func BenchmarkStart40k(b *testing.B) {
	var text strings.Builder
	text.WriteString("[gateway]\ndata_dir = \"/tmp/wellgate\"\n[sparkplug]\ngroup_id = \"Load\"\nedge_node_id = \"Node\"\n")
	for i := range 200 {
		fmt.Fprintf(&text, "[[device]]\nname = \"D%03d\"\ndriver = \"modbus-tcp\"\naddress = \"127.0.0.1:%d\"\npoll_interval = \"1s\"\ntimeout = \"1s\"\n",
			i, 10000+i)
		for j := range 200 {
			fmt.Fprintf(&text, "  [[device.tag]]\n  name = \"R%03d\"\n  address = \"%d\"\n  type = \"int16\"\n", j, 40001+j)
		}
	}
	file := filepath.Join(b.TempDir(), "wellgate.toml")
	if err := os.WriteFile(file, []byte(text.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	c, err := config.Load(file)
	if err != nil {
		b.Fatal(err)
	}
	devs := c.Enabled(NameTCP)
	b.Run("validate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if errs := validate(devs); len(errs) > 0 {
				b.Fatal(errs)
			}
		}
	})
	b.Run("build", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := build(devs, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
