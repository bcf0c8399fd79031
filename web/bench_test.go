package web

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wellgate/wellgate/internal/procfs"
)

// What an open page costs at 10,000 tags (50 devices × 200) with 10 % of them changing
// every second: BenchmarkStream10k measures one update (a snapshot, the diff, its gzip) in
// isolation; TestStreamCost10k (WELLGATE_BENCH_WEB=1) measures the bytes on the wire and
// the CPU the server adds, end to end over TCP, for 10 s.

// bigSite is devices × tagsPer tags with random values; the last device is down with every
// tag bad.
func bigSite(now time.Time, devices, tagsPer int) Snapshot {
	s := Snapshot{Group: "Permian", EdgeNode: "PAD-9", Version: "bench", Started: now.Add(-time.Hour),
		Upstream: Upstream{Enabled: true, Connected: true, State: UpstreamOnline, Server: "tcp://scada:1883", Since: now}}
	rng := rand.New(rand.NewPCG(1, 2))
	for d := range devices {
		dev := Device{Name: fmt.Sprintf("RTU-%02d", d+1), Driver: "modbus-tcp", Endpoint: fmt.Sprintf("10.0.1.%d:502 unit 1", d+1),
			State: StateCommunicating, LastGood: now, ResponseTime: 9 * time.Millisecond, Requests: 1000}
		down := d == devices-1
		if down {
			dev.State, dev.LastError, dev.LastErrorAt = StateDown, "timeout reading hr:40001 (100 registers)", now
		}
		for i := range tagsPer {
			v := rng.Float64() * 1000 // process values, as random as the gzip of the first load will meet
			disp := strconv.FormatFloat(v, 'f', 2, 64)
			tg := Tag{Device: dev.Name, Name: fmt.Sprintf("Well %d/Tag %03d", d+1, i), Type: "Float", Value: v, Display: disp,
				Units: "psi", Quality: QualityGood, Time: now, LastGoodDisplay: disp, LastGoodTime: now,
				Address: fmt.Sprintf("hr:%d (2 registers, float32 abcd)", 40001+2*i)}
			if down {
				tg.Value, tg.Display, tg.Quality = nil, "", "bad"
			}
			dev.Tags = append(dev.Tags, tg)
		}
		s.Devices = append(s.Devices, dev)
	}
	return s
}

// churn changes n good tags picked at random (a random walk of their values, as process
// values move), as a poll does; tick i seeds the choice so that runs repeat.
func churn(s *Snapshot, i, n int, now time.Time) {
	per := len(s.Devices[0].Tags)
	good := (len(s.Devices) - 1) * per
	rng := rand.New(rand.NewPCG(uint64(i), 42))
	for range n {
		j := rng.IntN(good)
		tg := &s.Devices[j/per].Tags[j%per]
		v := tg.Value.(float64) + rng.NormFloat64()*3
		tg.Value, tg.Display, tg.Time = v, strconv.FormatFloat(v, 'f', 2, 64), now.Add(-time.Duration(rng.IntN(100))*time.Millisecond)
		tg.LastGoodDisplay, tg.LastGoodTime = tg.Display, tg.Time
	}
	for d := range s.Devices {
		s.Devices[d].Requests++
		s.Devices[d].LastGood = now
	}
}

func BenchmarkStream10k(b *testing.B) {
	now := time.Now()
	src := newFake(bigSite(now, 50, 200))
	clock := now
	h := newHub(src, time.Second, 1, func() time.Time { return clock })
	c, full, err := h.subscribe()
	if err != nil {
		b.Fatal(err)
	}
	var wire bytes.Buffer
	zw := gzip.NewWriter(&wire)
	_, _ = zw.Write(full)
	_ = zw.Flush()
	fullRaw, fullGz := len(full), wire.Len()
	var raw, gz int
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		clock = clock.Add(time.Second)
		src.update(func(s *Snapshot) { churn(s, i, 1000, clock) })
		wire.Reset()
		b.StartTimer()
		h.tick() // one second's update: snapshot, diff, broadcast
		ev := <-c.ch
		_, _ = zw.Write(ev)
		_ = zw.Flush()
		raw += len(ev)
		gz += wire.Len()
	}
	b.ReportMetric(float64(raw)/float64(b.N), "B/s")
	b.ReportMetric(float64(gz)/float64(b.N), "gzB/s")
	b.ReportMetric(float64(fullRaw), "full-B")
	b.ReportMetric(float64(fullGz), "full-gzB")
}

// countingConn counts the bytes read from the server, as they cross the network.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func cpuTime() time.Duration { return procfs.SelfCPUTime() }

func TestStreamCost10k(t *testing.T) {
	if os.Getenv("WELLGATE_BENCH_WEB") == "" {
		t.Skip("set WELLGATE_BENCH_WEB=1 to measure (10 s per phase)")
	}
	const period = 10 * time.Second
	src := newFake(bigSite(time.Now(), 50, 200))
	s, err := NewWithOptions(Options{Listen: "127.0.0.1:0"}, src, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	run(t, s)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // 10 % of 10,000 tags per second, in 100 ms polls
		defer close(done)
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tk.C:
				src.update(func(s *Snapshot) { churn(s, i, 100, time.Now()) })
			}
		}
	}()
	defer func() { close(stop); <-done }()

	// The gateway without a page open.
	c0 := cpuTime()
	time.Sleep(period)
	idle := cpuTime() - c0

	// With one page open (gzip, as browsers ask).
	var wire atomic.Int64
	tr := &http.Transport{DisableCompression: true, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{c, &wire}, nil
	}}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL()+"api/events", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("stream not compressed: %v", resp.Header)
	}
	go func() { _, _ = io.Copy(io.Discard, resp.Body) }()
	// The first full event, then measure the steady state.
	deadline := time.Now().Add(10 * time.Second)
	for wire.Load() < 1000 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	first, firstRaw := wire.Load(), s.hub.bytes.Load()
	c1 := cpuTime()
	time.Sleep(period)
	open := cpuTime() - c1
	steady := wire.Load() - first
	rawPerSec := float64(s.hub.bytes.Load()-firstRaw) / period.Seconds()
	t.Logf("10,000 tags, 1,000 changing per second, one page open for %v:", period)
	t.Logf("  on the wire (gzip, headers included): %.1f KB/s; the stream's first 2 s (its full event and two updates) %.1f KB",
		float64(steady)/period.Seconds()/1e3, float64(first)/1e3)
	for _, path := range []string{"/", "/static/status.js", "/static/status.css"} {
		body, _, _ := fetch(t, s.URL()+path[1:], map[string]string{"Accept-Encoding": "gzip"})
		t.Logf("  GET %s: %.1f KB gzip", path, float64(len(body))/1e3)
	}
	t.Logf("  the same events before compression: %.1f KB/s", rawPerSec/1e3)
	t.Logf("  CPU of the process: %.1f%% of one core without a page, %.1f%% with one: the page adds %.1f%%",
		100*idle.Seconds()/period.Seconds(), 100*open.Seconds()/period.Seconds(), 100*(open-idle).Seconds()/period.Seconds())
}
