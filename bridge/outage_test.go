package bridge

import (
	"context"
	"testing"
	"time"

	"github.com/wellgate/wellgate/internal/peers"
	"github.com/wellgate/wellgate/sparkplug"
)

// producer feeds counter samples every few milliseconds until stopped.
func (h *harness) producer(ctx context.Context) chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(2 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
				h.produce(1)
			}
		}
	}()
	return done
}

// TestWANOutage kills mosquitto while samples flow, restarts it, and checks that every value
// arrives — the outage's as historical, in order, with original timestamps, after the births —
// and that live data goes on.
func TestWANOutage(t *testing.T) {
	m := peers.StartMosquitto(t)
	// The bridge reaches mosquitto through a proxy, so that the test can resubscribe after the
	// restart before letting the bridge back in.
	px := newProxy(t, m.Addr)
	col := newCollector(t, m.Addr)
	h := newHarness(t, "", testOptions(px.url()), nil).start()
	h.waitState(StateOnline, 10*time.Second)
	ctx, stop := context.WithCancel(context.Background())
	done := h.producer(ctx)
	h.waitFor(10*time.Second, "live data", func() bool { return h.b.Status().PublishedLive > 100 })

	px.setMode("refuse")
	m.Stop()
	h.waitState(StateDisconnected, 10*time.Second)
	before := h.produced()
	h.waitFor(10*time.Second, "an outage backlog", func() bool { return h.produced() > before+500 })
	if h.b.Status().Queue.Records == 0 {
		t.Fatal("nothing queued during the outage")
	}
	m.Start()
	col.connect(t, m.Addr)
	mark := len(col.all())
	px.setMode("pass")
	h.waitState(StateOnline, 10*time.Second)
	h.waitSkipping(20*time.Second, "the backlog replayed", func() bool { return h.b.Status().Queue.Records == 0 })
	after := h.produced()
	h.waitFor(10*time.Second, "live data after the outage", func() bool { return h.produced() > after+100 })
	stop()
	<-done
	n := h.produced()
	h.waitFor(20*time.Second, "every value", func() bool { return allArrived(col.all(), n) })

	msgs := col.all()
	live, hist := checkAllArrived(t, h, msgs, n)
	nb, values := analyze(msgs[mark:])
	if len(nb) == 0 {
		t.Fatal("no NBIRTH after the outage")
	}
	for _, cv := range values {
		if cv.historical && cv.index < nb[0] {
			t.Fatalf("historical value %d before the NBIRTH", cv.v)
		}
	}
	lastLive := false
	for _, cv := range values {
		lastLive = !cv.historical
	}
	if !lastLive {
		t.Error("the last value after the outage was not live")
	}
	t.Logf("%d values: %d live, %d historical; status %+v", n, live, hist, h.b.Status())
}

// TestBlackHole stops forwarding without closing the connection: the samples published into
// the hole (detection window) arrive as historical after recovery.
// The two cases wait for the keepalive to notice the hole (real time, a few seconds each):
// they run side by side, each with its own broker and proxy.
func TestBlackHole(t *testing.T) {
	t.Run("qos0", func(t *testing.T) { t.Parallel(); testBlackHole(t, 0) })
	// With data_qos = 1 a sample is retired only on its PUBACK.
	t.Run("qos1", func(t *testing.T) { t.Parallel(); testBlackHole(t, 1) })
}

func testBlackHole(t *testing.T, qos byte) {
	m := peers.StartMosquitto(t)
	px := newProxy(t, m.Addr)
	col := newCollector(t, m.Addr)
	h := newHarness(t, "", testOptions(px.url()), func(_ *Options, so *sparkplug.Options) { so.DataQoS = qos }).start()
	h.waitState(StateOnline, 10*time.Second)
	ctx, stop := context.WithCancel(context.Background())
	done := h.producer(ctx)
	h.waitFor(10*time.Second, "live data", func() bool { return h.b.Status().PublishedLive > 100 })

	px.setMode("blackhole")
	holeStart := h.b.Status().PublishedLive
	h.waitState(StateDisconnected, 15*time.Second) // the keepalive notices
	if lost := h.b.Status().PublishedLive - holeStart; lost == 0 {
		t.Fatal("nothing was published into the black hole")
	} else {
		t.Logf("%d samples published into the black hole", lost)
	}
	px.setMode("pass")
	h.waitState(StateOnline, 10*time.Second)
	h.waitSkipping(20*time.Second, "the backlog replayed", func() bool { return h.b.Status().Queue.Records == 0 })
	stop()
	<-done
	n := h.produced()
	h.waitFor(20*time.Second, "every value", func() bool { return allArrived(col.all(), n) })
	live, hist := checkAllArrived(t, h, col.all(), n)
	t.Logf("%d values: %d live, %d historical", n, live, hist)

}
