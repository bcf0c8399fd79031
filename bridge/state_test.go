package bridge

import (
	"fmt"
	"testing"
	"time"

	"github.com/wellgate/wellgate/internal/peers"
	"github.com/wellgate/wellgate/sparkplug"
)

func countTopic(msgs []received, topic string) int {
	n := 0
	for _, m := range msgs {
		if m.topic == topic {
			n++
		}
	}
	return n
}

// TestPrimaryHostState: births only after the host's STATE online; on a valid offline NDEATH
// and store-and-forward; stale STATE ignored; back online → births, then the backlog.
func TestPrimaryHostState(t *testing.T) {
	m := peers.StartMosquitto(t)
	col := newCollector(t, m.Addr)
	h := newHarness(t, "", testOptions(m.URL()), func(o *Options, _ *sparkplug.Options) {
		o.PrimaryHostID = "scada"
	}).start()
	state := func(online bool, ts int) {
		payload := fmt.Sprintf(`{"online":%v,"timestamp":%d}`, online, ts)
		col.c.Publish(sparkplug.StateTopic("scada"), 1, true, payload).Wait()
	}
	h.waitState(StateWaitingHost, 10*time.Second)
	h.produce(50)
	h.waitFor(10*time.Second, "samples queued while the host is away", func() bool { return h.b.Status().Queued == 50 })
	if n := countTopic(col.all(), "spBv1.0/G/NBIRTH/E"); n != 0 {
		t.Fatalf("%d NBIRTH before the host was online", n)
	}
	state(true, 1000)
	h.waitState(StateOnline, 10*time.Second)
	h.waitFor(10*time.Second, "the backlog", func() bool { return allArrived(col.all(), 50) })

	state(false, 500) // older than the last one: ignored
	h.produce(10)
	h.waitFor(10*time.Second, "live data", func() bool { return allArrived(col.all(), 60) })
	if h.b.Status().State != StateOnline {
		t.Fatal("a stale STATE offline was obeyed")
	}

	state(false, 2000)
	h.waitFor(10*time.Second, "NDEATH", func() bool { return countTopic(col.all(), "spBv1.0/G/NDEATH/E") == 1 })
	h.waitState(StateWaitingHost, 10*time.Second)
	h.produce(40)
	h.waitFor(10*time.Second, "queued while the host is offline", func() bool { return h.b.Status().Queued >= 90 })
	state(true, 3000)
	h.waitFor(10*time.Second, "every value", func() bool { return allArrived(col.all(), 100) })
	msgs := col.all()
	checkAllArrived(t, h, msgs, 100)
	nb, values := analyze(msgs)
	if len(nb) != 2 {
		t.Fatalf("%d NBIRTHs, want 2", len(nb))
	}
	for _, cv := range values {
		if cv.v >= 60 && cv.index < nb[1] {
			t.Fatalf("value %d published before the second NBIRTH", cv.v)
		}
	}
}

// TestNextServer: "Node Control/Next Server" moves the edge node to the next server.
func TestNextServer(t *testing.T) {
	m1, m2 := peers.StartMosquitto(t), peers.StartMosquitto(t)
	col1, col2 := newCollector(t, m1.Addr), newCollector(t, m2.Addr)
	h := newHarness(t, "", testOptions(m1.URL(), m2.URL()), nil).start()
	h.waitState(StateOnline, 10*time.Second)
	if s := h.b.Status().Server; s != m1.URL() {
		t.Fatalf("connected to %s, want the first server %s", s, m1.URL())
	}
	p := sparkplug.Payload{Metrics: []sparkplug.Metric{{Name: "Node Control/Next Server", Datatype: sparkplug.TypeBoolean}}}
	p.Metrics[0].Value = sparkplug.WireValue{Kind: sparkplug.KindBool, Bits: 1}
	col1.c.Publish("spBv1.0/G/NCMD/E", 1, false, p.Marshal()).Wait()
	h.waitFor(10*time.Second, "NBIRTH on the second server", func() bool {
		return countTopic(col2.all(), "spBv1.0/G/NBIRTH/E") == 1
	})
	h.waitFor(10*time.Second, "NDEATH on the first server", func() bool {
		return countTopic(col1.all(), "spBv1.0/G/NDEATH/E") >= 1
	})
	h.waitState(StateOnline, 10*time.Second)
	if s := h.b.Status().Server; s != m2.URL() {
		t.Fatalf("status says %s, want %s", s, m2.URL())
	}
}

// TestConnectFailuresRetry: a refused password and a TLS failure are one log line per attempt
// and a retry, never a crash.
func TestConnectFailuresRetry(t *testing.T) {
	m := peers.StartMosquitto(t, "allow_anonymous false")
	cases := []struct{ name, url, want string }{
		{"not authorized", m.URL(), "not Authorized"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up := testOptions(tc.url)
			up.Username, up.Password = "gw", "wrong"
			h := newHarness(t, "", up, nil).start()
			h.waitFor(10*time.Second, "three attempts", func() bool { return h.log.count("upstream connect failed") >= 3 })
			st := h.b.Status()
			if st.State == StateOnline || st.LastError == "" {
				t.Fatalf("status %+v", st)
			}
			if h.log.count(tc.want) < 3 {
				t.Fatalf("log lines do not say %q:\n%s", tc.want, h.log.dump())
			}
		})
	}
	t.Run("missing CA file", func(t *testing.T) {
		up := testOptions("ssl://" + m.Addr)
		up.TLS.CAFile = "/nonexistent/ca.pem"
		h := newHarness(t, "", up, nil).start()
		h.waitFor(10*time.Second, "two attempts", func() bool { return h.log.count("read CA file") >= 2 })
	})
}
