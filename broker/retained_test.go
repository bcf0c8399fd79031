package broker

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble"
	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	mochipebble "github.com/mochi-mqtt/server/v2/hooks/storage/pebble"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// retainedOf subscribes a new client to filter and returns the retained messages it gets. A
// marker the client publishes itself ends the list: mochi queues the retained messages after
// the SUBACK, but before it reads the client's next packet.
func retainedOf(t *testing.T, b *Broker, filter string) map[string]string {
	t.Helper()
	in := newInbox()
	c := dial(t, pahoOpts("tcp://"+b.Addr().String(), "late-"+strconv.FormatInt(time.Now().UnixNano(), 36), true))
	subscribe(t, c, filter, 1, in.handle)
	marker := strings.TrimSuffix(filter, "#") + "zz-marker"
	c.Publish(marker, 1, false, "end").Wait()
	out := map[string]string{}
	for i := 1; ; i++ {
		m := in.wait(t, i, 10*time.Second)[i-1]
		if m.Topic() == marker {
			return out
		}
		if !m.Retained() {
			t.Fatalf("%s arrived not retained before the marker", m.Topic())
		}
		out[m.Topic()] = string(m.Payload())
	}
}

// Retained messages are bounded in size, count and total bytes. A retained publish past a
// bound is delivered but not retained, and clears the topic's older value so that a late
// subscriber never gets a stale one.
func TestRetainedBounds(t *testing.T) {
	logs := &logBuffer{}
	b := start(t, Options{MaxRetained: 3, MaxRetainedSize: 100, MaxRetainedBytes: 250, Logger: logs.logger()})
	live := newInbox()
	subscribe(t, dial(t, pahoOpts("tcp://"+b.Addr().String(), "live", true)), "r/#", 1, live.handle)
	pub := dial(t, pahoOpts("tcp://"+b.Addr().String(), "publisher", true))
	for _, p := range []struct {
		topic string
		size  int
	}{
		{"r/a", 50},  // kept: 53 bytes
		{"r/b", 150}, // larger than max_retained_size
		{"r/c", 80},  // kept: 136 bytes
		{"r/d", 80},  // kept: 219 bytes, 3 messages
		{"r/e", 10},  // a fourth topic
		{"r/a", 90},  // 259 bytes: past max_retained_bytes, and r/a's 50 bytes are stale now
	} {
		pub.Publish(p.topic, 1, true, strings.Repeat("x", p.size)).Wait()
	}
	if got := live.wait(t, 6, 10*time.Second); len(got) != 6 {
		t.Fatalf("a live subscriber got %d of 6", len(got))
	}
	got := retainedOf(t, b, "r/#")
	if len(got) != 2 || len(got["r/c"]) != 80 || len(got["r/d"]) != 80 {
		t.Fatalf("late subscriber got retained %v", keys(got))
	}
	st := b.Stats()
	if st.Retained != 2 || st.RetainedBytes != 166 || st.RetainedRefused != 3 {
		t.Fatalf("retained %d (%d bytes), refused %d", st.Retained, st.RetainedBytes, st.RetainedRefused)
	}
	for _, reason := range []string{"larger than max_retained_size", "max_retained messages reached", "max_retained_bytes reached"} {
		if n := len(logs.lines("level=WARN", reason)); n != 1 {
			t.Errorf("%d lines for %q:\n%s", n, reason, logs)
		}
	}
	pub.Publish("r/c", 1, true, "").Wait() // an empty retained message clears the topic
	eventually(t, 5*time.Second, "r/c cleared", func() bool { return b.Stats().Retained == 1 })
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// writeOldStore runs the broker as wellgate had it (mochi with its own pebble hook) on dir:
// 100 retained 1 MiB messages, 20 small retained tags and a persistent session "legacy" with
// 10 queued QoS 1 messages.
func writeOldStore(t *testing.T, dir string) {
	t.Helper()
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: quietLogger()})
	_ = srv.AddHook(new(auth.AllowHook), nil)
	if err := srv.AddHook(new(mochipebble.Hook), &mochipebble.Options{Path: filepath.Join(dir, "broker"),
		Mode: mochipebble.Sync, Options: &pebbledb.Options{Logger: quietPebble{}}}); err != nil {
		t.Fatal(err)
	}
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "t", Address: "127.0.0.1:0"})); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	ln, _ := srv.Listeners.Get("t")
	c := dial(t, pahoOpts("tcp://"+ln.Address(), "legacy", false))
	subscribe(t, c, "tags/#", 1, nil)
	c.Disconnect(50)
	eventually(t, 5*time.Second, "legacy away", func() bool {
		cl, ok := srv.Clients.Get("legacy")
		return ok && cl.Closed()
	})
	big := make([]byte, 1<<20)
	for i := range 100 {
		if err := srv.Publish("big/"+strconv.Itoa(i), big, true, 0); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 {
		_ = srv.Publish("wellsite/tag"+strconv.Itoa(i), []byte("value "+strconv.Itoa(i)), true, 1)
	}
	for i := range 10 {
		_ = srv.Publish("tags/level", []byte(strconv.Itoa(i)), false, 1)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
}

type quietPebble struct{}

func (quietPebble) Infof(string, ...any)  {}
func (quietPebble) Fatalf(string, ...any) { panic("pebble fatal") }

// A data dir the old broker filled with 100 retained 1 MiB messages (a crash loop under the
// unit's memory cap, reloaded at every start) loads within the bounds: the broker starts,
// its heap stays small, the small retained tags and the queued session are kept, and the
// oversized records are deleted so that the next start does not read them again.
//
// How fast it starts is for a benchmark, not for this test (it only logs it). Its store
// timeout is generous: the default 5 s bounds Close's wait for pebble, and on a loaded box a
// compaction of the bloated store can outlast it; Close then returns with pebble still at
// work in the directory, and the next start (or the temporary directory's removal) meets it.
func TestStoredStateTooBigForTheBounds(t *testing.T) {
	dir := t.TempDir()
	writeOldStore(t, dir)
	opts := Options{DataDir: dir, storeTimeout: time.Minute}
	before := heapInUse()
	began := time.Now()
	b := start(t, opts)
	took := time.Since(began)
	if grew := int64(heapInUse()) - int64(before); grew > 32<<20 {
		t.Fatalf("heap grew by %d MiB loading the store", grew>>20)
	}
	st := b.Stats()
	if st.Retained != 20 || st.RetainedRefused != 100 || st.Sessions != 1 || st.QueuedMessages != 10 {
		t.Fatalf("loaded %d retained (refused %d), %d sessions with %d queued", st.Retained, st.RetainedRefused, st.Sessions, st.QueuedMessages)
	}
	t.Logf("started in %s", took)
	if got := retainedOf(t, b, "wellsite/#"); len(got) != 20 || got["wellsite/tag7"] != "value 7" {
		t.Fatalf("retained tags %v", got)
	}
	in := newInbox()
	o := pahoOpts("tcp://"+b.Addr().String(), "legacy", false).SetDefaultPublishHandler(in.handle)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	checkSequence(t, payloads(in.wait(t, 10, 10*time.Second)), 10)
	c.Disconnect(50)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b2 := start(t, opts)
	if st := b2.Stats(); st.Retained != 20 || st.RetainedRefused != 0 {
		t.Fatalf("second start: %d retained, %d refused: the oversized records are still there", st.Retained, st.RetainedRefused)
	}
	if err := b2.Close(); err != nil {
		t.Fatal(err)
	}
}
