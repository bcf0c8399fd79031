package queue

import (
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wellgate/wellgate/drivers"
)

func benchSample(i int) drivers.Sample {
	return drivers.Sample{
		Device: "wellpad-3", Tag: "Casing/Pressure" + strconv.Itoa(i%50),
		Value: drivers.DoubleValue(float64(i) * 0.5), Quality: drivers.Good,
		Time: time.Unix(1772366400, 0).Add(time.Duration(i) * time.Millisecond),
	}
}

// BenchmarkDiskEnqueue adds samples in batches of 100 (one poll) with the default
// group-commit interval.
func BenchmarkDiskEnqueue(b *testing.B) {
	q, err := OpenDisk(b.TempDir(), Options{}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	recs := make([][]byte, 100)
	b.ResetTimer()
	for i := 0; i < b.N; i += 100 {
		for j := range recs {
			recs[j] = EncodeSample(recs[j][:0], benchSample(i+j))
		}
		if err := q.Add(recs...); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "samples/s")
	b.ReportMetric(float64(q.Bytes())/float64(q.Len()), "bytes/sample")
}

// BenchmarkDiskDrain reads, decodes and acks samples 1000 at a time.
func BenchmarkDiskDrain(b *testing.B) {
	q, err := OpenDisk(b.TempDir(), Options{}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	recs := make([][]byte, 1000)
	for i := 0; i < b.N; i += 1000 {
		for j := range recs {
			recs[j] = EncodeSample(nil, benchSample(i+j))
		}
		q.Add(recs...)
	}
	b.ResetTimer()
	for n := 0; n < b.N; {
		tx, err := q.Begin(1000)
		if err != nil || tx.Len() == 0 {
			b.Fatalf("Begin: %v, %d", err, tx.Len())
		}
		for _, r := range tx.Records {
			if _, err := DecodeSample(r); err != nil {
				b.Fatal(err)
			}
		}
		n += tx.Len()
		q.Ack(tx)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "samples/s")
}

func vmRSS() string {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			return strings.TrimSpace(strings.TrimPrefix(l, "VmRSS:"))
		}
	}
	return "?"
}

// TestDiskMemoryFlat10M queues 10 million samples and reports resident memory along the way.
// It writes about 500 MB; run it with WELLGATE_BENCH_10M=1.
func TestDiskMemoryFlat10M(t *testing.T) {
	if os.Getenv("WELLGATE_BENCH_10M") == "" {
		t.Skip("set WELLGATE_BENCH_10M=1 to queue 10 million samples and report memory")
	}
	q := mustOpen(t, t.TempDir(), Options{}, nil)
	recs := make([][]byte, 100)
	report := func(n int) uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		t.Logf("%9d samples queued: %6.1f MB on disk, heap in use %5.1f MB, VmRSS %s",
			n, float64(q.Bytes())/1e6, float64(ms.HeapInuse)/1e6, vmRSS())
		return ms.HeapInuse
	}
	start := time.Now()
	var heap1M uint64
	for i := 0; i < 10_000_000; i += 100 {
		for j := range recs {
			recs[j] = EncodeSample(recs[j][:0], benchSample(i+j))
		}
		if err := q.Add(recs...); err != nil {
			t.Fatal(err)
		}
		if n := i + 100; n == 1_000_000 || n%2_500_000 == 0 {
			h := report(n)
			if n == 1_000_000 {
				heap1M = h
			} else if h > heap1M+8<<20 {
				t.Errorf("heap grew from %d to %d bytes: the queue is not on disk", heap1M, h)
			}
		}
	}
	t.Logf("enqueued 10M in %v (%.0f samples/s), %.1f bytes/sample", time.Since(start),
		1e7/time.Since(start).Seconds(), float64(q.Bytes())/1e7)
	start = time.Now()
	n := 0
	for {
		tx, _ := q.Begin(1000)
		if tx.Len() == 0 {
			break
		}
		n += tx.Len()
		q.Ack(tx)
	}
	t.Logf("drained %d in %v (%.0f samples/s)", n, time.Since(start), float64(n)/time.Since(start).Seconds())
	report(0)
}
