package bridge

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/wellgate/wellgate/bridge/queue"
	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/internal/peers"
	"github.com/wellgate/wellgate/internal/procfs"
	"github.com/wellgate/wellgate/sparkplug"
)

// The fleet's shape (gateway's TestFleetLoad): devices × int16 registers, a tenth changing
// per poll, every device polled at the same instant.
const (
	burstDevices = 200
	burstTags    = 200
	burstChange  = 10 // one register in burstChange changes per poll
)

// BenchmarkBurst pushes one fleet poll — 200 batches (one per device) of 200 int16 samples,
// 10 % changed — through a real Bridge (real Session with aliases, Disk queue) to mosquitto,
// and waits until a subscriber has every device's DDATA. One op is one burst. Besides ns/op it
// reports ns/value (wall time of the burst per polled value), cpu-ns/value (this process's
// CPU: bridge, paho, the subscriber), the batch latency (Samples call → DDATA at the
// subscriber) p50/p99/max over all batches, where a batch waited (wait: in the mailbox; out:
// from the end of its Update to the subscriber), the loop's Session.Update time per burst, and
// the most records (and ring bytes) the bridge held unconfirmed. Bursts follow each other at
// once; WELLGATE_BURST_EVERY=1s paces them like the fleet, for the ring's size there.
//
//	go test -run '^$' -bench Burst -benchtime 100x ./bridge/
func BenchmarkBurst(b *testing.B) {
	// Without TCP_NODELAY mosquitto's writes to the subscriber wait for its delayed ACKs:
	// bursts then end 40 ms late now and then (measured: burst-max ~50 ms, p99 ~47 ms, both
	// ~14 ms with it), which is the subscriber's socket, not the bridge.
	m := peers.StartMosquitto(b, "set_tcp_nodelay true")
	devices, names := burstDeviceSet()
	sess, err := sparkplug.NewSession(sparkplug.Options{GroupID: "Load", EdgeNodeID: "Node", Aliases: true, Devices: devices})
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	q, err := queue.OpenDisk(filepath.Join(dir, "queue"), queue.Options{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	seq, err := sparkplug.NewBdSeqStore(filepath.Join(dir, "bdseq"))
	if err != nil {
		b.Fatal(err)
	}
	sub := newBurstSub(b, m.Addr)
	ts := &timedSession{Session: sess, took: make([]time.Time, burstDevices), done: make([]time.Time, burstDevices)}
	br, err := New(Options{Servers: []string{m.URL()}, Session: ts, Queue: q, BdSeq: seq, FirstPollWait: -1})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- br.Run(ctx) }()
	defer func() { cancel(); <-done; _ = br.Close() }()
	waitFor(b, 10*time.Second, "online", func() bool { return br.Status().State == StateOnline })

	var waits, outs []time.Duration
	var work time.Duration
	burst := func(k int, timed bool) (lat []time.Duration, cpu, wall time.Duration) {
		batches := burstBatches(names, k)
		sub.arm(burstDevices)
		if timed {
			b.StartTimer()
		}
		cpu0, wall0 := cpuTime(), time.Now()
		sent := make([]time.Time, burstDevices)
		for i, batch := range batches {
			sent[i] = time.Now()
			br.Samples(batch)
		}
		arrived := sub.wait(b, 10*time.Second)
		cpu, wall = cpuTime()-cpu0, time.Since(wall0)
		if timed {
			b.StopTimer()
		}
		ts.mu.Lock()
		for i := range sent {
			lat = append(lat, arrived[i].Sub(sent[i]))
			if timed {
				waits = append(waits, ts.took[i].Sub(sent[i]))
				outs = append(outs, arrived[i].Sub(ts.done[i]))
				work += ts.done[i].Sub(ts.took[i])
			}
		}
		ts.mu.Unlock()
		return lat, cpu, wall
	}
	b.StopTimer()
	burst(0, false) // every value is new: the first report of each
	burst(1, false)
	// The first burst reports every value: let the ring empty, so that held-max is the steady one.
	waitFor(b, 30*time.Second, "the warm-up confirmed", func() bool { return br.Status().Unconfirmed == 0 })
	b.ReportAllocs()
	var lats []time.Duration
	var cpu, slowest time.Duration
	held, ringMax := 0, 0
	var every time.Duration
	if s := os.Getenv("WELLGATE_BURST_EVERY"); s != "" {
		if every, err = time.ParseDuration(s); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	b.ResetTimer()
	b.StopTimer()
	for k := range b.N {
		l, c, w := burst(k+2, true)
		lats = append(lats, l...)
		cpu += c
		slowest = max(slowest, w)
		held = max(held, br.Status().Unconfirmed)
		ringMax = max(ringMax, ringBytes(b, br))
		if every > 0 {
			time.Sleep(every - time.Since(start)%every) // paced like the fleet: a poll a second
		}
	}
	if st := br.Status(); st.MailboxOverflow > 0 || st.Queued > 0 {
		b.Errorf("overflow %d, queued %d: every value should go out live", st.MailboxOverflow, st.Queued)
	}
	pctOf := func(d []time.Duration, p float64) float64 {
		slices.Sort(d)
		return float64(d[min(len(d)-1, int(p*float64(len(d))))]) / 1e6
	}
	pct := func(p float64) float64 { return pctOf(lats, p) }
	values := float64(b.N * burstDevices * burstTags)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/values, "ns/value")
	b.ReportMetric(float64(cpu.Nanoseconds())/values, "cpu-ns/value")
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
	b.ReportMetric(float64(slowest.Nanoseconds())/1e6, "burst-max-ms")
	b.ReportMetric(float64(held), "held-max")
	b.ReportMetric(float64(ringMax)/1024, "ring-kB-max")
	b.ReportMetric(pctOf(waits, 0.99), "wait-p99-ms")
	b.ReportMetric(pctOf(outs, 0.99), "out-p99-ms")
	b.ReportMetric(float64(work.Nanoseconds())/1e6/float64(b.N), "update-ms/burst")
}

// ringBytes is what the ring of records published live and not confirmed takes: its entries
// and the records they hold.
func ringBytes(b *testing.B, br *Bridge) int {
	done := make(chan struct{})
	n := 0
	if !br.mail.put(loopFunc{func(br *Bridge) {
		l := &br.loop
		n = cap(l.ring) * int(unsafe.Sizeof(ringEntry{}))
		for _, e := range l.ring {
			n += cap(e.records)
		}
	}, done}) {
		b.Fatal("the loop has stopped")
	}
	<-done
	return n
}

func burstDeviceSet() ([]drivers.DeviceInfo, [][2]string) {
	var devs []drivers.DeviceInfo
	var names [][2]string
	for i := range burstDevices {
		d := drivers.DeviceInfo{Name: fmt.Sprintf("D%03d", i), Driver: "test"}
		for j := range burstTags {
			d.Tags = append(d.Tags, drivers.TagInfo{Name: fmt.Sprintf("R%03d", j), Type: drivers.Int16})
			names = append(names, [2]string{d.Name, d.Tags[j].Name})
		}
		devs = append(devs, d)
	}
	return devs, names
}

// burstBatches is poll k of every device: register j holds the number of the last poll
// (j+poll) % burstChange == 0, so that a tenth of them change per poll.
func burstBatches(names [][2]string, k int) [][]drivers.Sample {
	now := time.Now()
	out := make([][]drivers.Sample, burstDevices)
	for i := range out {
		batch := make([]drivers.Sample, burstTags)
		for j := range batch {
			v := k - (j+k)%burstChange
			n := names[i*burstTags+j]
			batch[j] = drivers.Sample{Device: n[0], Tag: n[1], Value: drivers.IntValue(drivers.Int16, int64(v%30000)), Quality: drivers.Good, Time: now}
		}
		out[i] = batch
	}
	return out
}

// timedSession notes when the loop starts and ends each device's Update: the batch's wait in
// the mailbox, the loop's work, and the way out (outbox, sender, paho, mosquitto, subscriber).
type timedSession struct {
	Session
	mu         sync.Mutex
	took, done []time.Time
}

func (s *timedSession) AppendReported(dst, batch []drivers.Sample, written bool) ([]drivers.Sample, error) {
	t0 := time.Now()
	rep, err := s.Session.AppendReported(dst, batch, written)
	t1 := time.Now()
	if i, perr := strconv.Atoi(strings.TrimPrefix(batch[0].Device, "D")); perr == nil && i < burstDevices {
		s.mu.Lock()
		s.took[i], s.done[i] = t0, t1
		s.mu.Unlock()
	}
	return rep, err
}

// burstSub notes when each device's DDATA arrives.
type burstSub struct {
	mu      sync.Mutex
	arrived []time.Time
	want    int
	all     chan struct{}
}

func newBurstSub(b *testing.B, addr string) *burstSub {
	s := &burstSub{arrived: make([]time.Time, burstDevices)}
	o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("burst-sub").SetAutoReconnect(false)
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatalf("subscriber connect: %v", tok.Error())
	}
	b.Cleanup(func() { c.Disconnect(0) })
	tok := c.Subscribe("spBv1.0/Load/DDATA/Node/#", 0, func(_ mqtt.Client, m mqtt.Message) {
		i, err := strconv.Atoi(strings.TrimPrefix(m.Topic()[strings.LastIndexByte(m.Topic(), '/')+1:], "D"))
		if err != nil || i >= burstDevices {
			return
		}
		now := time.Now()
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.want > 0 && s.arrived[i].IsZero() {
			s.arrived[i] = now
			if s.want--; s.want == 0 {
				close(s.all)
			}
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatalf("subscribe: %v", tok.Error())
	}
	return s
}

func (s *burstSub) arm(n int) {
	s.mu.Lock()
	clear(s.arrived)
	s.want, s.all = n, make(chan struct{})
	s.mu.Unlock()
}

func (s *burstSub) wait(b *testing.B, d time.Duration) []time.Time {
	s.mu.Lock()
	all := s.all
	s.mu.Unlock()
	select {
	case <-all:
	case <-time.After(d):
		b.Fatalf("a burst's DDATA did not all arrive within %v", d)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.arrived)
}

// cpuTime is this process's user + system CPU time.
func cpuTime() time.Duration { return procfs.SelfCPUTime() }
