package bridge

import (
	"math"
	"testing"
	"time"

	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/internal/peers"
	"github.com/wellgate/wellgate/sparkplug"
)

// birthValue returns the value of metric name in the last message on topic, and whether it
// was there and not null.
func birthValue(msgs []received, topic, name string) (sparkplug.Metric, bool) {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].topic != topic || msgs[i].payload == nil {
			continue
		}
		for _, m := range msgs[i].payload.Metrics {
			if m.Name == name {
				return m, !m.IsNull
			}
		}
	}
	return sparkplug.Metric{}, false
}

func historicalCount(msgs []received) int {
	n := 0
	for _, m := range msgs {
		if m.payload == nil {
			continue
		}
		for _, mt := range m.payload.Metrics {
			if mt.IsHistorical {
				n++
			}
		}
	}
	return n
}

// The first births wait (bounded) for the devices' first poll, so that they carry the
// device's values rather than nulls, and the values of that poll are not sent again as
// history; a rebirth carries the latest values.
func TestBirthsWaitForFirstPoll(t *testing.T) {
	t.Parallel()
	m := peers.StartMosquitto(t)
	col := newCollector(t, m.Addr)
	up := testOptions(m.URL())
	up.FirstPollWait = time.Hour // bounded in production (5 s); here the poll must end it
	h := newHarness(t, "", up, nil).start()
	h.waitState(StateWaitingPoll, 10*time.Second)
	if n := countTopic(col.all(), "spBv1.0/G/NBIRTH/E"); n != 0 {
		t.Fatalf("%d NBIRTH before the first poll", n)
	}
	poll := func(counter int64, setpoint float64) {
		h.b.Samples([]drivers.Sample{
			{Device: "well1", Tag: "counter", Value: drivers.IntValue(drivers.Int64, counter), Quality: drivers.Good, Time: h.clk.Now()},
			{Device: "well1", Tag: "setpoint", Value: drivers.DoubleValue(setpoint), Quality: drivers.Good, Time: h.clk.Now()},
		})
	}
	poll(42, 7.5)
	h.waitState(StateOnline, 10*time.Second)
	h.waitFor(10*time.Second, "DBIRTH", func() bool { return countTopic(col.all(), "spBv1.0/G/DBIRTH/E/well1") == 1 })
	msgs := col.all()
	c, ok := birthValue(msgs, "spBv1.0/G/DBIRTH/E/well1", "counter")
	sp, ok2 := birthValue(msgs, "spBv1.0/G/DBIRTH/E/well1", "setpoint")
	if !ok || !ok2 || c.Value.Bits != 42 || sp.Value.Bits != math.Float64bits(7.5) {
		t.Fatalf("DBIRTH counter %+v, setpoint %+v: want the polled 42 and 7.5, not nulls (docs/sparkplug.md [births-after-first-poll])", c, sp)
	}
	// A later value, then a rebirth: the births carry the latest values.
	poll(43, 8.5)
	h.waitFor(10*time.Second, "DDATA 43", func() bool { return hasCounter(col.all(), 43) })
	h.clk.Advance(2 * time.Second) // past the rebirth hold-off
	rb := sparkplug.Payload{Metrics: []sparkplug.Metric{{Name: sparkplug.MetricRebirth, Datatype: sparkplug.TypeBoolean, Value: sparkplug.WireValue{Kind: sparkplug.KindBool, Bits: 1}}}}
	col.c.Publish("spBv1.0/G/NCMD/E", 1, false, rb.Marshal()).Wait()
	h.waitFor(10*time.Second, "the rebirth", func() bool { return countTopic(col.all(), "spBv1.0/G/DBIRTH/E/well1") == 2 })
	if c, _ := birthValue(col.all(), "spBv1.0/G/DBIRTH/E/well1", "counter"); c.Value.Bits != 43 {
		t.Errorf("rebirth DBIRTH counter %+v, want the latest 43", c)
	}
	if n := historicalCount(col.all()); n != 0 {
		t.Errorf("%d historical metrics: the first poll's values went out again as history (docs/sparkplug.md [historical-covered-by-birth])", n)
	}
}

func hasCounter(msgs []received, v int64) bool {
	_, values := analyze(msgs)
	for _, cv := range values {
		if cv.v == v {
			return true
		}
	}
	return false
}

// With no poll at all, the births go out when FirstPollWait has passed, with nulls.
func TestBirthsFirstPollWaitBounded(t *testing.T) {
	t.Parallel()
	m := peers.StartMosquitto(t)
	col := newCollector(t, m.Addr)
	up := testOptions(m.URL())
	up.FirstPollWait = 5 * time.Second
	h := newHarness(t, "", up, nil).start()
	h.waitState(StateWaitingPoll, 10*time.Second)
	h.waitSkipping(10*time.Second, "births after the first-poll wait", func() bool {
		return countTopic(col.all(), "spBv1.0/G/DBIRTH/E/well1") == 1
	})
	if h.clk.Since(h.base) < 5*time.Second {
		t.Errorf("births after %v, before FirstPollWait", h.clk.Since(h.base))
	}
}

// Node metrics reported while the bridge is not online (here: waiting for the primary host)
// are covered by the NBIRTH, not queued and replayed as historical NDATA.
func TestNodeMetricsNotQueued(t *testing.T) {
	m := peers.StartMosquitto(t)
	col := newCollector(t, m.Addr)
	h := newHarness(t, "", testOptions(m.URL()), func(o *Options, _ *sparkplug.Options) { o.PrimaryHostID = "scada" }).start()
	h.waitState(StateWaitingHost, 10*time.Second)
	node := func(v bool) {
		h.b.Samples([]drivers.Sample{{Tag: metricNextServer, Value: drivers.BoolValue(v), Quality: drivers.Good, Time: h.clk.Now()}})
	}
	node(true)
	node(false)
	h.produce(3) // device samples are queued, as before
	h.waitFor(10*time.Second, "device samples queued", func() bool { return h.b.Status().Queued == 3 })
	col.c.Publish(sparkplug.StateTopic("scada"), 1, true, `{"online":true,"timestamp":1}`).Wait()
	t.Cleanup(func() { col.c.Publish(sparkplug.StateTopic("scada"), 1, true, []byte{}).Wait() })
	h.waitFor(10*time.Second, "the backlog", func() bool { return allArrived(col.all(), 3) })
	for _, r := range col.all() {
		if r.topic == "spBv1.0/G/NDATA/E" {
			t.Fatalf("NDATA %+v after the NBIRTH: node metrics were queued (docs/sparkplug.md [node-metrics-not-queued])", r.payload)
		}
	}
	if v, ok := birthValue(col.all(), "spBv1.0/G/NBIRTH/E", metricNextServer); !ok || v.Value.Bits != 0 {
		t.Errorf("NBIRTH %s %+v, want the latest, false", metricNextServer, v)
	}
	if q := h.b.Status().Queued; q != 3 {
		t.Errorf("%d records queued, want the 3 device samples", q)
	}
}

// bdSeq moves on only when a CONNECT carrying the will went out: three refused dials spend
// none, and the first NBIRTH of a new data dir has bdSeq 0.
func TestBdSeqNotSpentOnRefusedDials(t *testing.T) {
	addr := peers.FreePort(t) // nothing listens yet: every dial is refused
	h := newHarness(t, "", testOptions("tcp://"+addr), nil).start()
	h.waitFor(10*time.Second, "three refused dials", func() bool { return h.log.count("upstream connect failed") >= 3 })
	m := peers.StartMosquittoAt(t, addr)
	col := newCollector(t, m.Addr)
	h.waitState(StateOnline, 10*time.Second)
	attempts := h.b.Status().Attempts
	if st := h.b.Status(); st.BdSeq != 0 {
		t.Fatalf("bdSeq %d after %d attempts, 1 CONNECT: want 0 (docs/sparkplug.md [topics-nbirth-bdseq-increment])", st.BdSeq, attempts)
	}
	h.stop()
	h2 := newHarness(t, h.dir, testOptions(m.URL()), nil).start()
	h2.waitState(StateOnline, 10*time.Second)
	h2.waitFor(10*time.Second, "the second NBIRTH", func() bool { return countTopic(col.all(), "spBv1.0/G/NBIRTH/E") == 2 })
	var seqs []uint64
	for _, r := range col.all() {
		if r.topic == "spBv1.0/G/NBIRTH/E" {
			bd, _ := birthValue([]received{r}, r.topic, sparkplug.MetricBdSeq)
			seqs = append(seqs, bd.Value.Bits)
		}
	}
	if len(seqs) != 2 || seqs[0] != 0 || seqs[1] != 1 {
		t.Errorf("NBIRTH bdSeqs %v after %d attempts and a restart, want [0 1]", seqs, attempts)
	}
	t.Logf("%d connection attempts (%d refused), NBIRTH bdSeqs %v", attempts, attempts-1, seqs)
}

// The first poll is queued while the births wait for it; once they have carried it, its
// records go out as nothing, and they must not wait for the replay rate: the backlog they
// leave is read through in one tick (before, at 2,000 records a second, a 40,000-tag start
// kept the queue busy for 20 s).
func TestFirstPollBacklogReadAtOnce(t *testing.T) {
	t.Parallel()
	m := peers.StartMosquitto(t)
	col := newCollector(t, m.Addr)
	up := testOptions(m.URL())
	up.FirstPollWait = time.Hour
	up.ReplayRate = 1 // one record a second, were they charged
	h := newHarness(t, "", up, nil).start()
	h.waitState(StateWaitingPoll, 10*time.Second)
	h.b.Samples([]drivers.Sample{
		{Device: "well1", Tag: "counter", Value: drivers.IntValue(drivers.Int64, 42), Quality: drivers.Good, Time: h.clk.Now()},
		{Device: "well1", Tag: "setpoint", Value: drivers.DoubleValue(7.5), Quality: drivers.Good, Time: h.clk.Now()},
	})
	h.waitState(StateOnline, 10*time.Second)
	h.waitFor(10*time.Second, "DBIRTH", func() bool { return countTopic(col.all(), "spBv1.0/G/DBIRTH/E/well1") == 1 })
	if n := h.q.Len(); n != 2 {
		t.Fatalf("queue holds %d records after the births, want the first poll's 2", n)
	}
	// One replay a second after the last tick: a budget of one record. Charged, the records
	// would go one a second; the births carried both, so both are read now.
	h.onLoop(func(b *Bridge) { b.replay(b.loop.lastTick.Add(time.Second)) })
	if n := h.sess.HistoricalCovered(); n != 2 {
		t.Errorf("%d of the first poll's 2 records read in one replay with a budget of one (HistoricalCovered): the births' records were charged to the replay rate", n)
	}
	if n := historicalCount(col.all()); n != 0 {
		t.Errorf("%d historical metrics sent for values the births carried", n)
	}
}
