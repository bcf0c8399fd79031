package bridge

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wellgate/wellgate/internal/peers"
	"github.com/wellgate/wellgate/sparkplug"
)

// duplicates counts the counter values 0..n-1 that arrived in DATA more than once (a birth
// carrying the latest value again is no delivery), and checks that every copy after the first
// is historical.
func duplicates(t *testing.T, msgs []received, n int) int {
	t.Helper()
	_, values := analyze(msgs)
	seen := make([]int, n)
	dups := 0
	for _, cv := range values {
		if cv.v < 0 || cv.v >= int64(n) || cv.birth {
			continue
		}
		if seen[cv.v]++; seen[cv.v] == 2 {
			dups++
		}
		if seen[cv.v] > 1 && !cv.historical {
			t.Errorf("value %d arrived again live: a repeat must be historical", cv.v)
		}
	}
	return dups
}

// outage cuts the link (the proxy refuses and drops its connections), lets samples queue,
// and heals it; it returns when the backlog is replayed.
func (h *harness) outage(px *proxy, what string) {
	h.t.Helper()
	px.setMode("refuse")
	h.waitState(StateDisconnected, 10*time.Second)
	before := h.produced()
	h.waitFor(10*time.Second, what+": a backlog", func() bool { return h.produced() > before+200 })
	px.setMode("pass")
	h.waitState(StateOnline, 10*time.Second)
	h.waitSkipping(20*time.Second, what+": the backlog replayed", func() bool { return h.b.Status().Queue.Records == 0 })
}

// Two outages ten seconds apart, values flowing all along: only values without proof of
// delivery when a link went down may arrive twice (historical, original timestamps), never
// the ones the broker had read. With the detection window alone (50 s at the default
// keepalive) every value of the ten seconds came again.
func TestDuplicatesAcrossTwoOutages(t *testing.T) {
	t.Parallel()
	m := peers.StartMosquitto(t)
	px := newProxy(t, m.Addr)
	col := newCollector(t, m.Addr)
	up := testOptions(px.url())
	up.DetectionWindow = 50 * time.Second // the default keepalive's, so that only proof retires early
	h := newHarness(t, "", up, nil).start()
	h.waitState(StateOnline, 10*time.Second)
	ctx, stop := context.WithCancel(context.Background())
	done := h.producer(ctx)
	h.waitFor(10*time.Second, "live data", func() bool { return h.b.Status().PublishedLive > 200 })

	h.outage(px, "first outage")
	t1 := h.clk.Now()
	h.waitSkipping(20*time.Second, "ten seconds", func() bool { return h.clk.Since(t1) >= 10*time.Second })
	h.outage(px, "second outage")
	after := h.produced()
	h.waitFor(10*time.Second, "live data after the outages", func() bool { return h.produced() > after+100 })
	stop()
	<-done
	n := h.produced()
	h.waitFor(20*time.Second, "every value", func() bool { return allArrived(col.all(), n) })
	h.waitSkipping(20*time.Second, "the last values proven", func() bool { return h.b.Status().Unconfirmed == 0 })

	msgs := col.all()
	live, hist := checkAllArrived(t, h, msgs, n)
	dups := duplicates(t, msgs, n)
	st := h.b.Status()
	t.Logf("%d values (%d live, %d historical): %d arrived twice; %d records requeued without proof, %d confirmed by proof, %d by the window alone",
		n, live, hist, dups, st.Requeued, st.Confirmed, st.ConfirmedByWindow)
	if dups > int(st.Requeued) {
		t.Errorf("%d values arrived twice, but only %d were queued again for want of proof: values the broker had read were sent again", dups, st.Requeued)
	}
	if st.ConfirmedByWindow != 0 {
		t.Errorf("%d records retired by the detection window alone: proof should have come first", st.ConfirmedByWindow)
	}
}

// A clean stop publishes NDEATH; its PUBACK proves everything published before it, so nothing
// is queued, and the next start sends no history at all.
func TestCleanStopResendsNothing(t *testing.T) {
	m := peers.StartMosquitto(t)
	col := newCollector(t, m.Addr)
	up := testOptions(m.URL())
	up.DetectionWindow = 50 * time.Second
	up.ProofInterval = time.Hour // no probe after the births': the NDEATH alone must prove the last values
	h := newHarness(t, "", up, nil).start()
	h.waitState(StateOnline, 10*time.Second)
	h.waitFirstProbe(10 * time.Second) // it proves the births; a later one would prove values
	h.produce(500)
	h.waitFor(10*time.Second, "500 live values", func() bool { return allArrived(col.all(), 500) })
	h.waitFor(10*time.Second, "values waiting for proof", func() bool { return h.b.Status().Unconfirmed == 500 })
	h.stop()
	if st := h.b.Status(); st.Queue.Records != 0 || st.Requeued != 0 {
		t.Fatalf("after a clean stop: %d records queued, %d requeued; want none", st.Queue.Records, st.Requeued)
	}
	h2 := newHarness(t, h.dir, up, nil)
	h2.next = 500
	h2.start().waitState(StateOnline, 10*time.Second)
	h2.produce(1) // value 500, live: marks the point by which history would have come
	h2.waitFor(10*time.Second, "a live value after the restart", func() bool { return allArrived(col.all(), 501) })
	if n := historicalCount(col.all()); n != 0 {
		t.Errorf("%d historical values after a clean stop and start, want 0", n)
	}
	if d := duplicates(t, col.all(), 501); d != 0 {
		t.Errorf("%d values arrived twice after a clean stop, want 0", d)
	}
}

// A forwarded QoS 1 message is retired on its PUBACK, even behind QoS 0 samples still waiting
// for proof, and that PUBACK proves those samples: after an outage none is sent again.
func TestForwardedQoS1RetiredOnPuback(t *testing.T) {
	m := peers.StartMosquitto(t)
	px := newProxy(t, m.Addr)
	local, localAddr := startMochi(t)
	col := newCollector(t, m.Addr, "spBv1.0/#", "site7/#")
	up := testOptions(px.url())
	up.DetectionWindow = time.Hour
	up.ProofInterval = time.Hour // no probes: only PUBACKs prove
	h := newHarness(t, "", up, func(o *Options, _ *sparkplug.Options) {
		o.Local = local
		o.Rules = []Rule{{Direction: Up, Filter: "sensors/#", Prefix: "site7/", QoS: 1}}
	}).start()
	h.waitState(StateOnline, 10*time.Second)
	h.produce(5) // QoS 0: wait for proof
	dev := pahoClient(t, localAddr, "local-device")
	for i := range 20 {
		dev.Publish("sensors/flow", 1, false, fmt.Sprint(i)).Wait()
	}
	h.waitFor(10*time.Second, "the forwarded messages and samples confirmed", func() bool {
		return countTopic(col.all(), "site7/sensors/flow") == 20 && h.b.Status().Unconfirmed == 0
	})
	px.setMode("refuse")
	h.waitState(StateDisconnected, 10*time.Second)
	px.setMode("pass")
	h.waitState(StateOnline, 10*time.Second)
	h.produce(1) // a live value marks the point by which a resend would have come
	h.waitFor(10*time.Second, "value 5", func() bool { return allArrived(col.all(), 6) })
	if n := countTopic(col.all(), "site7/sensors/flow"); n != 20 {
		t.Errorf("%d forwarded messages upstream, want 20: PUBACKed ones were sent again", n)
	}
	if d := duplicates(t, col.all(), 6); d != 0 {
		t.Errorf("%d samples sent again although a later PUBACK proved them", d)
	}
	if st := h.b.Status(); st.Requeued != 0 {
		t.Errorf("%d records requeued, want 0", st.Requeued)
	}
}

// The detection window has a margin over paho's worst case at every keepalive.
func TestDetectionWindowFormula(t *testing.T) {
	for k := time.Second; k <= 2*time.Minute; k += 500 * time.Millisecond {
		w := detectionWindow(k, 0)
		if margin := w - pahoDetection(k); margin < 2*time.Second {
			t.Errorf("keepalive %v: window %v, paho may take %v: margin %v, want at least 2s", k, w, pahoDetection(k), margin)
		}
		if w2 := detectionWindow(k, w-time.Second); w2 != w {
			t.Errorf("keepalive %v: a configured window below the minimum was taken (%v)", k, w2)
		}
	}
	for _, c := range []struct{ k, want time.Duration }{
		{30 * time.Second, 57 * time.Second}, {5 * time.Second, 15750 * time.Millisecond}, {time.Second, 4750 * time.Millisecond},
	} {
		if w := detectionWindow(c.k, 0); w != c.want {
			t.Errorf("keepalive %v: window %v, want %v (keepalive + ping timeout + 3 × check + 2 s)", c.k, w, c.want)
		}
	}
}

// At a 5 s keepalive a black-holed link loses nothing: the values written into the hole are
// never proven, and the window (15.75 s) outlasts paho's detection (at most 12.5 s).
func TestBlackHoleKeepalive5s(t *testing.T) {
	t.Parallel()
	m := peers.StartMosquitto(t)
	px := newProxy(t, m.Addr)
	col := newCollector(t, m.Addr)
	up := testOptions(px.url())
	up.Keepalive, up.DetectionWindow = 5*time.Second, 0
	h := newHarness(t, "", up, nil).start()
	h.waitState(StateOnline, 10*time.Second)
	ctx, stop := context.WithCancel(context.Background())
	done := h.producer(ctx)
	h.waitFor(10*time.Second, "live data", func() bool { return h.b.Status().PublishedLive > 100 })
	px.setMode("blackhole")
	start, holeStart := time.Now(), h.b.Status().PublishedLive
	h.waitState(StateDisconnected, 30*time.Second)
	detected := time.Since(start)
	intoHole := h.b.Status().PublishedLive - holeStart
	px.setMode("pass")
	h.waitState(StateOnline, 10*time.Second)
	h.waitSkipping(20*time.Second, "the backlog replayed", func() bool { return h.b.Status().Queue.Records == 0 })
	stop()
	<-done
	n := h.produced()
	h.waitFor(20*time.Second, "every value", func() bool { return allArrived(col.all(), n) })
	live, hist := checkAllArrived(t, h, col.all(), n)
	st := h.b.Status()
	t.Logf("keepalive 5s: hole detected after %v (window %v); %d samples published into it; %d values: %d live, %d historical; requeued %d, by window %d",
		detected.Round(100*time.Millisecond), h.b.window, intoHole, n, live, hist, st.Requeued, st.ConfirmedByWindow)
	if st.ConfirmedByWindow != 0 {
		t.Errorf("%d records retired by the window: the window ran out before paho noticed the hole", st.ConfirmedByWindow)
	}
}
