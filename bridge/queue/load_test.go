//go:build load

package queue

import (
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

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
// It writes about 500 MB; run it with `make load` (-tags load and WELLGATE_BENCH_10M=1).
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
