package sparkplug

import (
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
					batches[k] = append(batches[k], drivers.Sample{Device: "d", Tag: s.devices[0].metrics[i].info.Name,
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
				batch[j] = drivers.Sample{Device: "d", Tag: s.devices[0].metrics[k%tags].info.Name,
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
