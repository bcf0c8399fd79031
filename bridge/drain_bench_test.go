//go:build load

package bridge

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/wellgate/wellgate/bridge/queue"
	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/internal/peers"
	"github.com/wellgate/wellgate/sparkplug"
)

// TestDrainAfterOutage1M measures how long a bridge takes to deliver a 1,000,000-sample backlog
// to mosquitto on loopback. Run it with `make load`, or with -tags load and
// WELLGATE_BENCH_DRAIN=1 (and WELLGATE_BENCH_RATE=n for a replay rate in samples/s; default
// unlimited).
func TestDrainAfterOutage1M(t *testing.T) {
	if os.Getenv("WELLGATE_BENCH_DRAIN") == "" {
		t.Skip("set WELLGATE_BENCH_DRAIN=1 to time draining a 1M-sample backlog to mosquitto")
	}
	const n = 1_000_000
	rate := -1
	if s := os.Getenv("WELLGATE_BENCH_RATE"); s != "" {
		rate, _ = strconv.Atoi(s)
	}
	m := peers.StartMosquitto(t, "max_queued_messages 0", "max_inflight_messages 0")
	col := newCollector(t, m.Addr)
	up := testOptions(m.URL())
	up.ReplayRate = rate
	h := newHarness(t, "", up, func(_ *Options, so *sparkplug.Options) { so.Aliases = true })
	recs := make([][]byte, 0, 1000)
	for i := 0; i < n; i++ {
		recs = append(recs, queue.EncodeSample(nil, drivers.Sample{
			Device: "well1", Tag: "counter", Value: drivers.IntValue(drivers.Int64, int64(i)),
			Quality: drivers.Good, Time: h.base.Add(time.Duration(i) * time.Millisecond)}))
		if len(recs) == cap(recs) {
			if err := h.q.Add(recs...); err != nil {
				t.Fatal(err)
			}
			recs = recs[:0]
		}
	}
	count := func() int {
		k := 0
		for _, r := range col.all() {
			if r.topic == "spBv1.0/G/DDATA/E/well1" && r.payload != nil {
				for _, mt := range r.payload.Metrics {
					if mt.IsHistorical {
						k++
					}
				}
			}
		}
		return k
	}
	start := time.Now()
	h.start()
	h.waitState(StateOnline, 10*time.Second)
	online := time.Since(start)
	h.waitFor(10*time.Minute, "the whole backlog", func() bool { return count() >= n })
	d := time.Since(start)
	t.Logf("1,000,000 samples: online after %v, delivered in %v (%.0f samples/s, replay rate %d)",
		online, d, n/d.Seconds(), rate)
}
