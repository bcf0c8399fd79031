package bridge

import (
	"testing"
	"time"

	"github.com/wellgate/wellgate/internal/peers"
)

// A live bridge with nothing pending ticks every quietInterval, not every tickInterval: an
// idle gateway must not wake twenty times a second. A merged rebirth makes it tick fast until
// the rebirth is out, and then it is quiet again.
func TestQuietTick(t *testing.T) {
	t.Parallel()
	m := peers.StartMosquitto(t)
	col := newCollector(t, m.Addr)
	h := newHarness(t, "", testOptions(m.URL()), nil).start()
	h.waitState(StateOnline, 10*time.Second)
	quiet := func() (q, due bool) {
		h.onLoop(func(b *Bridge) { q, due = b.loop.quiet, b.loop.rebirthDue })
		return q, due
	}
	h.waitFor(10*time.Second, "an idle live bridge's quiet tick", func() bool { q, _ := quiet(); return q })

	// The first request is served at once; the second, inside the hold-off, is merged.
	col.c.Publish("spBv1.0/G/NCMD/E", 0, false, rebirthCmd())
	h.waitFor(10*time.Second, "the first rebirth", func() bool { return countTopic(col.all(), "spBv1.0/G/NBIRTH/E") >= 2 })
	col.c.Publish("spBv1.0/G/NCMD/E", 0, false, rebirthCmd())
	h.waitFor(10*time.Second, "the second request", func() bool { return h.b.Status().Commands >= 2 })
	if q, due := quiet(); q || !due {
		t.Fatalf("after a merged rebirth request: quiet %v, rebirth due %v; want a fast tick until it is published", q, due)
	}
	h.waitSkipping(10*time.Second, "the merged rebirth", func() bool { return countTopic(col.all(), "spBv1.0/G/NBIRTH/E") >= 3 })
	h.waitFor(10*time.Second, "the quiet tick again", func() bool { q, due := quiet(); return q && !due })
}
