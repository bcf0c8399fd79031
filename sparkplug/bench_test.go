package sparkplug

import (
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/wellgate/wellgate/drivers"
)

type discard struct{}

func (discard) Publish(string, byte, bool, []byte) error { return nil }

func benchOptions(n int, aliases bool) Options {
	tags := make([]drivers.TagInfo, n)
	for i := range tags {
		tags[i] = drivers.TagInfo{Name: "Well " + strconv.Itoa(i/10) + "/Tag " + strconv.Itoa(i), Type: drivers.Double, Deadband: 0.5}
	}
	return Options{GroupID: "g", EdgeNodeID: "e", Aliases: aliases, Devices: []drivers.DeviceInfo{{Name: "d", Tags: tags}}}
}

// BenchmarkEncodeDDATA100: one DDATA of 100 changed metrics, through Session.Update (RBE,
// encoding, publish to a discarding Publisher). Reports ns and allocs per metric.
func BenchmarkEncodeDDATA100(b *testing.B) {
	for _, aliases := range []bool{false, true} {
		b.Run("aliases="+strconv.FormatBool(aliases), func(b *testing.B) {
			const n = 100
			s, err := NewSession(benchOptions(n, aliases))
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Start(discard{}, 0); err != nil {
				b.Fatal(err)
			}
			batches := [2][]drivers.Sample{}
			for k := range batches {
				for i := range n {
					batches[k] = append(batches[k], drivers.Sample{Device: "d", Tag: s.devices[0].tags[i].Name,
						Value: drivers.DoubleValue(float64(i + 10*k)), Quality: drivers.Good, Time: t0})
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := 0; b.Loop(); i++ {
				rep, err := s.Update(batches[i%2])
				if err != nil || len(rep) != n {
					b.Fatalf("reported %d, %v", len(rep), err)
				}
			}
			b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N*n), "ns/metric")
		})
	}
}

// BenchmarkMarshalDDATA100: the codec alone, 100 metrics into a reused buffer.
func BenchmarkMarshalDDATA100(b *testing.B) {
	p := Payload{Timestamp: 1700000000000, HasTimestamp: true, Seq: 5, HasSeq: true}
	for i := range 100 {
		m := Metric{Name: "Well 1/Tag " + strconv.Itoa(i), Timestamp: 1700000000000, HasTimestamp: true}
		m.SetValue(drivers.DoubleValue(float64(i)))
		p.Metrics = append(p.Metrics, m)
	}
	buf := make([]byte, 0, 8192)
	b.ReportAllocs()
	for b.Loop() {
		buf = p.AppendMarshal(buf[:0])
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkRBE: 100,000 tag updates of which 10 % change (beyond the deadband).
func BenchmarkRBE(b *testing.B) {
	const tags, updates = 10000, 100000
	s, err := NewSession(benchOptions(tags, true))
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(discard{}, 0); err != nil {
		b.Fatal(err)
	}
	batch := make([]drivers.Sample, 1000)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	round := 0
	for b.Loop() {
		for u := 0; u < updates; u += len(batch) {
			for j := range batch {
				k := u + j
				v := float64(round) * 0.1 // within the deadband
				if k%10 == 0 {
					v = float64(round)*10 + float64(k) // a change
				}
				batch[j] = drivers.Sample{Device: "d", Tag: s.devices[0].tags[k%tags].Name,
					Value: drivers.DoubleValue(v), Quality: drivers.Good, Time: t0}
			}
			if _, err := s.Update(batch); err != nil {
				b.Fatal(err)
			}
		}
		round++
	}
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N*updates), "ns/update")
}

// fleetDevices: devices × tags, as the gateway hands them over (Double, Float, Int32, UInt16
// and Boolean tags, every 50th a String), named as the gateway names them.
func fleetDevices(devices, tags int) []drivers.DeviceInfo {
	types := []drivers.Type{drivers.Double, drivers.Float, drivers.Int32, drivers.UInt16, drivers.Boolean}
	out := make([]drivers.DeviceInfo, devices)
	for d := range out {
		out[d].Name = "Well " + strconv.Itoa(d)
		out[d].Tags = make([]drivers.TagInfo, tags)
		for i := range out[d].Tags {
			ti := drivers.TagInfo{Name: "Group " + strconv.Itoa(i/20) + "/Tag " + strconv.Itoa(i), Type: types[i%len(types)], Deadband: 0.5}
			if i%50 == 49 {
				ti.Type, ti.Deadband = drivers.String, 0
			}
			out[d].Tags[i] = ti
		}
	}
	return out
}

// fleetBatch is one poll of dev: every tag, in configuration order, value k.
func fleetBatch(dev drivers.DeviceInfo, k int, at time.Time) []drivers.Sample {
	batch := make([]drivers.Sample, len(dev.Tags))
	for i, ti := range dev.Tags {
		var v drivers.Value
		switch ti.Type {
		case drivers.Double:
			v = drivers.DoubleValue(float64(k + i))
		case drivers.Float:
			v = drivers.FloatValue(float32(k + i))
		case drivers.Int32:
			v = drivers.IntValue(drivers.Int32, int64(k+i))
		case drivers.UInt16:
			v = drivers.UintValue(drivers.UInt16, uint64(k+i))
		case drivers.Boolean:
			v = drivers.BoolValue((k+i)%2 == 0)
		case drivers.String:
			v = drivers.StringValue("state " + strconv.Itoa(k+i))
		}
		batch[i] = drivers.Sample{Device: dev.Name, Tag: ti.Name, Value: v, Quality: drivers.Good, Time: at}
	}
	return batch
}

// BenchmarkUpdateUnchanged: the common case, one device's poll of 200 tags in configuration
// order where nothing changed, through Session.Update online (1 of 200 devices configured).
// Reports ns per sample; there should be no allocation.
func BenchmarkUpdateUnchanged(b *testing.B) {
	devs := fleetDevices(200, 200)
	s, err := NewSession(Options{GroupID: "g", EdgeNodeID: "e", Aliases: true, Devices: devs})
	if err != nil {
		b.Fatal(err)
	}
	for _, d := range devs {
		if _, err := s.Update(fleetBatch(d, 0, t0)); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Start(discard{}, 0); err != nil {
		b.Fatal(err)
	}
	batch := fleetBatch(devs[100], 0, t0)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		rep, err := s.Update(batch)
		if err != nil || len(rep) != 0 {
			b.Fatalf("reported %d, %v", len(rep), err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N*len(batch)), "ns/sample")
}

// BenchmarkSessionMemory: the heap one session keeps for 200 devices × 200 tags after every
// tag was polled and the session was born (the DeviceInfo slices are the caller's and not
// counted). Reports bytes per tag.
func BenchmarkSessionMemory(b *testing.B) {
	const devices, tags = 200, 200
	devs := fleetDevices(devices, tags)
	batches := make([][]drivers.Sample, devices)
	for i, d := range devs {
		batches[i] = fleetBatch(d, 0, t0)
	}
	var perTag float64
	for b.Loop() {
		before := heapInUse()
		s, err := NewSession(Options{GroupID: "g", EdgeNodeID: "e", Aliases: true, Devices: devs})
		if err != nil {
			b.Fatal(err)
		}
		for _, batch := range batches {
			if _, err := s.Update(batch); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.Start(discard{}, 0); err != nil {
			b.Fatal(err)
		}
		perTag = float64(heapInUse()-before) / (devices * tags)
		runtime.KeepAlive(s)
	}
	b.ReportMetric(perTag, "B/tag")
}

// heapInUse is the live heap after a full collection (twice: sync.Pool keeps a victim cache
// for one more cycle).
func heapInUse() int64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
