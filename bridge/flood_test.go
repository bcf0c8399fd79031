package bridge

import (
	"strings"
	"testing"
	"time"

	"github.com/wellgate/wellgate/internal/peers"
)

// TestGarbageCommandFlood: thousands of undecodable commands, some on a 10,000-character
// topic, are counted and logged a bounded number of times, each line bounded.
func TestGarbageCommandFlood(t *testing.T) {
	m := peers.StartMosquitto(t)
	col := newCollector(t, m.Addr)
	h := newHarness(t, "", testOptions(m.URL()), nil).start()
	h.waitState(StateOnline, 10*time.Second)
	long := "spBv1.0/G/DCMD/E/" + strings.Repeat("x", 10000)
	const waves, per = 4, 500
	for w := range waves {
		for i := range per {
			topic := "spBv1.0/G/DCMD/E/well1"
			if i%2 == 1 {
				topic = long
			}
			col.c.Publish(topic, 0, false, []byte{0xff, 0xff, byte(i)})
		}
		want := uint64((w + 1) * per)
		h.waitFor(10*time.Second, "the wave counted", func() bool {
			st := h.b.Status()
			return st.Commands+st.InboundDropped == want
		})
	}
	st := h.b.Status()
	if st.CommandErrors != st.Commands {
		t.Errorf("%d commands, %d refused; every one was garbage", st.Commands, st.CommandErrors)
	}
	if n := h.log.count("command"); n > 2 {
		t.Errorf("%d log lines about commands for %d garbage commands, want at most 2", n, waves*per)
	}
	for _, l := range strings.Split(h.log.dump(), "\n") {
		if len(l) > 1000 {
			t.Errorf("a log line of %d bytes: %.200s…", len(l), l)
		}
	}
}
