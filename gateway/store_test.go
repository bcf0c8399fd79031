package gateway

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/wellgate/wellgate/drivers"
)

// storeFleet describes n devices of tags Int16 tags each, and one poll's batch per device.
func storeFleet(n, tags int) ([]storeDevice, [][]drivers.Sample) {
	devs := make([]storeDevice, n)
	batches := make([][]drivers.Sample, n)
	now := time.Now()
	for i := range devs {
		info := drivers.DeviceInfo{Name: fmt.Sprintf("D%03d", i), Driver: "modbus-tcp", Tags: make([]drivers.TagInfo, tags)}
		batch := make([]drivers.Sample, tags)
		for j := range info.Tags {
			info.Tags[j] = drivers.TagInfo{Name: fmt.Sprintf("R%03d", j), Type: drivers.Int16, Address: fmt.Sprintf("hr:%d", 40001+j)}
			batch[j] = drivers.Sample{Device: info.Name, Tag: info.Tags[j].Name, Value: drivers.IntValue(drivers.Int16, int64(j)),
				Quality: drivers.Good, Time: now}
		}
		devs[i], batches[i] = storeDevice{info: info, interval: time.Second}, batch
	}
	return devs, batches
}

// TestStoreSamples: the fast paths (the previous device, the next tag) and the maps record the
// same samples, a tag out of order or unknown included, and keep the sample's time and zone.
func TestStoreSamples(t *testing.T) {
	devs, _ := storeFleet(2, 3)
	st := newStore(devs, time.Now())
	utc := time.Date(2026, 1, 2, 3, 4, 5, 6_789_000, time.UTC)
	local := utc.Add(time.Second).Local()
	st.samples([]drivers.Sample{
		{Device: "D000", Tag: "R002", Value: drivers.IntValue(drivers.Int16, 2), Quality: drivers.Good, Time: utc},
		{Device: "D000", Tag: "R000", Value: drivers.IntValue(drivers.Int16, 0), Quality: drivers.Good, Time: local},
		{Device: "D001", Tag: "R001", Value: drivers.IntValue(drivers.Int16, 11), Quality: drivers.Good, Time: utc},
		{Device: "D001", Tag: "nope", Value: drivers.IntValue(drivers.Int16, 9), Quality: drivers.Good, Time: utc},
		{Device: "D009", Tag: "R000", Value: drivers.IntValue(drivers.Int16, 9), Quality: drivers.Good, Time: utc},
		{Device: "D001", Tag: "R002", Value: drivers.Null(drivers.Int16), Quality: drivers.Bad},
		{Device: "D000", Tag: "R001", Value: drivers.IntValue(drivers.Int16, 1), Quality: drivers.Good, Time: utc},
	})
	v := st.view(nil, time.Now())
	want := map[string]string{
		"D000/R000": "good 0 " + local.Truncate(time.Millisecond).Format(time.RFC3339Nano),
		"D000/R001": "good 1 2026-01-02T03:04:05.006Z",
		"D000/R002": "good 2 2026-01-02T03:04:05.006Z",
		"D001/R000": "stale  0001-01-01T00:00:00Z",
		"D001/R001": "good 11 2026-01-02T03:04:05.006Z",
		"D001/R002": "bad  0001-01-01T00:00:00Z",
	}
	for _, d := range v {
		for _, tg := range d.Tags {
			got := tg.Quality + " " + tg.Display + " " + tg.Time.Format(time.RFC3339Nano)
			if w := want[d.Name+"/"+tg.Name]; got != w {
				t.Errorf("%s/%s: %q, want %q", d.Name, tg.Name, got, w)
			}
		}
	}
}

// BenchmarkStoreSamples: one 200-tag poll of unchanged values, per sample; and what the store
// keeps per tag at 40,000 tags (200 devices × 200), beyond the drivers' TagInfo.
func BenchmarkStoreSamples(b *testing.B) {
	devs, batches := storeFleet(200, 200)
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	st := newStore(devs, time.Now())
	runtime.GC()
	runtime.ReadMemStats(&m1)
	perTag := float64(m1.HeapAlloc-m0.HeapAlloc) / (200 * 200)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		st.samples(batches[i%len(batches)])
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*200), "ns/sample")
	b.ReportMetric(perTag, "B/tag")
	runtime.KeepAlive(st)
}
