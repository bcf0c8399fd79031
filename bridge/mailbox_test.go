package bridge

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/wellgate/wellgate/bridge/queue"
	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/internal/peers"
	"github.com/wellgate/wellgate/sparkplug"
)

func TestMailboxBounds(t *testing.T) {
	var m mailbox
	m.init(3, 1000)
	for range 2 {
		if !m.offer(nextServerEvent{}, 400) {
			t.Fatal("offers within the bounds refused")
		}
	}
	if m.offer(nextServerEvent{}, 400) {
		t.Fatal("an offer past the byte bound was taken")
	}
	if !m.offer(nextServerEvent{}, 100) {
		t.Fatal("an offer within both bounds refused")
	}
	if m.offer(nextServerEvent{}, 1) {
		t.Fatal("an offer past the entry bound was taken")
	}
	if !m.put(nextServerEvent{}) {
		t.Fatal("a control event was refused by a full mailbox")
	}
	if n, _ := m.size(); n != 4 {
		t.Fatalf("%d entries, want 4", n)
	}
	if got := len(m.take()); got != 4 {
		t.Fatalf("took %d, want 4", got)
	}
	if !m.offer(nextServerEvent{}, 900) {
		t.Fatal("an emptied mailbox refused an offer")
	}
	if left := m.close(); len(left) != 1 {
		t.Fatalf("close returned %d events, want 1", len(left))
	}
	if m.offer(nextServerEvent{}, 1) || m.put(nextServerEvent{}) {
		t.Fatal("a closed mailbox took an event")
	}
}

// queuedCounters returns the counter values in the queue, in queue order.
func queuedCounters(t *testing.T, q *queue.Disk) []int64 {
	t.Helper()
	tx, err := q.Begin(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Nack(tx)
	var out []int64
	for _, r := range tx.Records {
		s, err := queue.DecodeSample(r)
		if err != nil {
			t.Fatal(err)
		}
		if s.Tag == "counter" {
			out = append(out, s.Value.Int())
		}
	}
	return out
}

// TestMailboxFullPolicy: with nothing draining the mailbox (Run not started), samples past its
// bounds go straight to the queue, counted, with one log line; what the mailbox held reaches
// the queue on Close. Local messages to forward and upstream commands are dropped and counted;
// device states and STATE are taken whatever the bounds.
func TestMailboxFullPolicy(t *testing.T) {
	for _, tc := range []struct {
		name           string
		entries, bytes int
		held           int
	}{
		{"entries", 4, 0, 4},
		{"bytes", 0, 2*(sampleOverhead+len("well1")+len("counter")) + 1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, "", testOptions("tcp://"+peers.FreePort(t)), func(o *Options, _ *sparkplug.Options) {
				o.MailboxEntries, o.MailboxBytes, o.PrimaryHostID = tc.entries, tc.bytes, "scada"
			})
			h.produce(10)
			st := h.b.Status()
			if st.MailboxEntries != tc.held || st.MailboxOverflow != uint64(10-tc.held) || st.Queued != st.MailboxOverflow {
				t.Fatalf("mailbox %d entries, overflow %d, queued %d; want %d held and %d overflowed",
					st.MailboxEntries, st.MailboxOverflow, st.Queued, tc.held, 10-tc.held)
			}
			if n := h.log.count("bridge busy: samples go straight to the store-and-forward queue"); n != 1 {
				t.Fatalf("%d overflow log lines, want 1 (rate-limited):\n%s", n, h.log.dump())
			}
			h.b.offerForward(message{topic: "site7/a", payload: []byte("x")})
			h.b.inbound(nil, "spBv1.0/G/DCMD/E/well1", []byte{1}, false)
			h.b.inbound(nil, sparkplug.StateTopic("scada"), []byte(`{"online":true,"timestamp":1}`), true)
			h.b.DeviceState("well1", false, nil)
			st = h.b.Status()
			if st.ForwardDropped != 1 || st.InboundDropped != 1 || st.MailboxEntries != tc.held+2 {
				t.Fatalf("forward dropped %d, inbound dropped %d, entries %d; want 1, 1, %d",
					st.ForwardDropped, st.InboundDropped, st.MailboxEntries, tc.held+2)
			}
			if err := h.b.Close(); err != nil {
				t.Fatal(err)
			}
			got := queuedCounters(t, h.q)
			slices.Sort(got)
			if want := []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}; !slices.Equal(got, want) {
				t.Fatalf("queued counters %v, want %v", got, want)
			}
		})
	}
}

// TestCloseWithoutRun: Close on a bridge that never ran queues what it was given, is
// idempotent, and Run afterwards refuses to start.
func TestCloseWithoutRun(t *testing.T) {
	h := newHarness(t, "", testOptions("tcp://"+peers.FreePort(t)), nil)
	h.produce(3)
	for range 2 {
		if err := h.b.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.b.Run(context.Background()); err == nil {
		t.Fatal("Run after Close started")
	}
	if got := queuedCounters(t, h.q); !slices.Equal(got, []int64{0, 1, 2}) {
		t.Fatalf("queued %v, want [0 1 2]", got)
	}
	h.b.Samples([]drivers.Sample{{Device: "well1", Tag: "counter", Value: drivers.IntValue(drivers.Int64, 3), Quality: drivers.Good}})
	if got := queuedCounters(t, h.q); !slices.Equal(got, []int64{0, 1, 2, 3}) {
		t.Fatalf("a sample after Close: queued %v, want [0 1 2 3]", got)
	}
}

// TestCloseStopsRun: Close ends a running bridge as a cancelled context does: NDEATH, then
// Run returns.
func TestCloseStopsRun(t *testing.T) {
	m := peers.StartMosquitto(t)
	col := newCollector(t, m.Addr)
	h := newHarness(t, "", testOptions(m.URL()), nil).start()
	h.waitState(StateOnline, 10*time.Second)
	if err := h.b.Close(); err != nil {
		t.Fatal(err)
	}
	select { // Run has returned; its goroutine hands the result over just after
	case err := <-h.done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		h.cancel()
		h.cancel = nil
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after Close")
	}
	if n := countTopic(col.all(), "spBv1.0/G/NDEATH/E"); n != 1 {
		waitFor(t, 10*time.Second, "NDEATH", func() bool { return countTopic(col.all(), "spBv1.0/G/NDEATH/E") == 1 })
	}
	if err := h.b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestReconnectDelayOnTheClock: after a failed round the next attempt waits for the backoff
// on the bridge's clock, not on real time.
func TestReconnectDelayOnTheClock(t *testing.T) {
	h := newHarness(t, "", testOptions("tcp://"+peers.FreePort(t)), func(o *Options, _ *sparkplug.Options) {
		o.ReconnectMin, o.ReconnectMax = time.Minute, time.Hour
	}).start()
	h.waitFor(10*time.Second, "the first attempt to fail", func() bool {
		st := h.b.Status()
		return st.Attempts == 1 && st.State == StateDisconnected
	})
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) { // real time passes, the bridge's clock does not
		if n := h.b.Status().Attempts; n != 1 {
			t.Fatalf("%d attempts without the clock moving", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.clk.Advance(73 * time.Second) // the first delay is 1m ± 20%
	waitFor(t, 10*time.Second, "the second attempt", func() bool { return h.b.Status().Attempts == 2 })
}
