package modbus

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

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
