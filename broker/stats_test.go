package broker

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// Stats reports clients, subscriptions, retained messages, messages in and out, and each
// away session's queue; the in-process subscriber learns that the gateway sent a message.
func TestStats(t *testing.T) {
	b := start(t, Options{})
	url := "tcp://" + b.Addr().String()
	seen := make(chan Message, 10)
	if err := b.SubscribeMessages("s/#", func(m Message) { seen <- m }); err != nil {
		t.Fatal(err)
	}
	c1 := dial(t, pahoOpts(url, "c1", true))
	subscribe(t, c1, "s/#", 0, nil)
	subscribe(t, c1, "x/#", 0, nil)
	away := dial(t, pahoOpts(url, "away", false).SetUsername(""))
	subscribe(t, away, "s/#", 1, nil)
	away.Disconnect(50)
	eventually(t, 5*time.Second, "the session away", func() bool { return b.Stats().Sessions == 1 })
	for i := range 5 {
		if err := b.Publish("s/"+strconv.Itoa(i), 1, i == 0, []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if m := <-seen; !m.Sender.Gateway || m.Sender.ClientID != "" {
		t.Fatalf("the gateway's own publish came from %+v", m.Sender)
	}
	eventually(t, 5*time.Second, "messages out", func() bool { return b.Stats().MessagesOut >= 5 })
	st := b.Stats()
	if st.Clients != 1 || st.Sessions != 1 || st.Subscriptions != 3 || st.Retained != 1 || st.MessagesIn < 5 {
		t.Fatalf("stats %+v", st)
	}
	if st.QueuedMessages != 5 || len(st.Queued) != 1 || st.Queued[0].ClientID != "away" || st.Queued[0].Messages != 5 ||
		st.Queued[0].Bytes == 0 || time.Since(st.Queued[0].Since) > time.Minute {
		t.Fatalf("queued %d: %+v", st.QueuedMessages, st.Queued)
	}
	if st.Store.State != "memory" {
		t.Fatalf("store %+v without a data dir", st.Store)
	}
}

// An away session's queue is bounded in bytes, and all of them together; the newest messages
// are dropped and counted, and what was kept arrives in order.
func TestQueueBounds(t *testing.T) {
	const payload = 100
	size := payload + len("q/x") + messageOverhead
	b := start(t, Options{MaxQueuedBytes: int64(20 * size), MaxQueuedTotalBytes: int64(30 * size), MaxQueued: 1000})
	url := "tcp://" + b.Addr().String()
	for _, id := range []string{"a", "b"} {
		c := dial(t, pahoOpts(url, id, false))
		subscribe(t, c, "q/#", 1, nil)
		c.Disconnect(50)
	}
	eventually(t, 5*time.Second, "both away", func() bool { return b.Stats().Sessions == 2 })
	for i := range 100 {
		if err := b.Publish("q/x", 1, false, []byte(strconv.Itoa(i)+strings.Repeat(" ", payload-len(strconv.Itoa(i))))); err != nil {
			t.Fatal(err)
		}
	}
	st := b.Stats()
	if st.QueuedMessages != 30 || st.QueuedDropped != 170 {
		t.Fatalf("%d queued, %d dropped; want 30 and 170", st.QueuedMessages, st.QueuedDropped)
	}
	for _, q := range st.Queued {
		if q.Messages > 20 {
			t.Fatalf("session %s holds %d messages past its byte bound", q.ClientID, q.Messages)
		}
	}
	in := newInbox()
	dial(t, pahoOpts(url, st.Queued[0].ClientID, false).SetDefaultPublishHandler(in.handle))
	got := payloads(in.wait(t, st.Queued[0].Messages, 10*time.Second))
	for i := range got {
		got[i] = strings.TrimSpace(got[i])
	}
	checkSequence(t, got, st.Queued[0].Messages)
}

// mochi bounds an in-flight queue in messages (MaxQueued) and counts what it drops.
func TestQueueCountBound(t *testing.T) {
	b := start(t, Options{MaxQueued: 5})
	c := dial(t, pahoOpts("tcp://"+b.Addr().String(), "a", false))
	subscribe(t, c, "q/#", 1, nil)
	c.Disconnect(50)
	eventually(t, 5*time.Second, "away", func() bool { return b.Stats().Sessions == 1 })
	for i := range 8 {
		_ = b.Publish("q/x", 1, false, []byte(strconv.Itoa(i)))
	}
	if st := b.Stats(); st.QueuedMessages != 5 || st.QueuedDropped != 3 {
		t.Fatalf("%d queued, %d dropped", st.QueuedMessages, st.QueuedDropped)
	}
}

// An away session is kept for session_expiry and then removed: its subscriptions, its queue
// and its records in the store (mochi alone leaves the subscriptions in its index).
func TestSessionExpiry(t *testing.T) {
	logs := &logBuffer{}
	b := start(t, Options{DataDir: t.TempDir(), SessionExpiry: time.Second, Logger: logs.logger()})
	c := dial(t, pahoOpts("tcp://"+b.Addr().String(), "gone", false))
	subscribe(t, c, "e/#", 1, nil)
	c.Disconnect(50)
	eventually(t, 5*time.Second, "away", func() bool { return b.Stats().Sessions == 1 })
	for range 3 {
		_ = b.Publish("e/x", 1, false, []byte("v"))
	}
	eventually(t, 10*time.Second, "the session expired", func() bool {
		st := b.Stats()
		return st.Sessions == 0 && st.Subscriptions == 0 && st.QueuedMessages == 0
	})
	if len(logs.lines("mqtt session expired", "client=gone")) != 1 {
		t.Fatalf("expiry not logged:\n%s", logs)
	}
	if keys := storeKeys(t, b, "gone"); len(keys) != 0 {
		t.Fatalf("the expired session left records in the store: %q", keys)
	}
}

// An in-process subscriber that has fallen behind holds at most maxPendingBytes: the oldest
// messages go first, and the newest are handed over in order.
func TestInProcessSubscriberBoundedInBytes(t *testing.T) {
	b := start(t, Options{})
	release, entered := make(chan struct{}), make(chan struct{})
	got := make(chan string, 100)
	first := true
	if err := b.SubscribeMessages("big/#", func(m Message) {
		if first {
			first = false
			close(entered)
			<-release // the handler is stuck while messages pile up
		}
		got <- m.Topic
	}); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 1<<20)
	n := maxPendingBytes>>20 + 10
	if err := b.Publish("big/0", 0, false, payload); err != nil {
		t.Fatal(err)
	}
	<-entered
	for i := 1; i < n; i++ {
		if err := b.Publish("big/"+strconv.Itoa(i), 0, false, payload); err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	if m := <-got; m != "big/0" {
		t.Fatalf("the message the handler was on: %s", m)
	}
	m := <-got
	kept, _ := strconv.Atoi(strings.TrimPrefix(m, "big/"))
	if held := n - kept; held != maxPendingBytes>>20-1 { // 1 MiB and a few bytes of topic each
		t.Fatalf("the subscription held %d MiB (first kept message %s)", held, m)
	}
}
