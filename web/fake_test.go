package web

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSource is a Source whose snapshot a test changes while the page is open.
type fakeSource struct {
	mu   sync.Mutex
	snap Snapshot
}

func newFake(s Snapshot) *fakeSource { return &fakeSource{snap: s} }

// Snapshot returns a deep copy, as the gateway's does.
func (f *fakeSource) Snapshot() Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return cloneSnapshot(f.snap)
}

func (f *fakeSource) update(fn func(*Snapshot)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.snap)
}

func cloneSnapshot(s Snapshot) Snapshot {
	out := s
	out.Health = slices.Clone(s.Health)
	out.Local.Messages = maps.Clone(s.Local.Messages)
	out.Upstream.Messages = maps.Clone(s.Upstream.Messages)
	out.Upstream.DroppedByReason = maps.Clone(s.Upstream.DroppedByReason)
	out.Devices = make([]Device, len(s.Devices))
	for i, d := range s.Devices {
		d.Tags = slices.Clone(d.Tags)
		d.ErrorsByKind = maps.Clone(d.ErrorsByKind)
		d.Latency = d.Latency.Clone()
		out.Devices[i] = d
	}
	return out
}

// fixed is a Source that never changes.
type fixed Snapshot

func (f fixed) Snapshot() Snapshot { return Snapshot(f) }

// t0 is the test's wall clock: the page's ages are counted from it when a test pins the clock.
var t0 = time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)

// site is a snapshot with one device of every state, a bad tag with a last good value, a tag
// never read, and names that would be markup if they were not escaped.
func site() Snapshot {
	good := func(dev, name string, v float64, units string) Tag {
		d := fmt.Sprintf("%.2f", v)
		return Tag{Device: dev, Name: name, Type: "Float", Value: v, Display: d, Units: units, Quality: QualityGood,
			Time: t0.Add(-2 * time.Second), LastGoodDisplay: d, LastGoodTime: t0.Add(-2 * time.Second),
			Address: "hr:40001 (2 registers, float32 abcd)"}
	}
	rtu := `RTU "A"`
	return Snapshot{
		Group: "Field", EdgeNode: "PAD-1", Version: "v1.2.3", Started: t0.Add(-90 * time.Minute),
		Broker: "127.0.0.1:1883", Local: LocalBroker{Clients: 2, BdSeq: 7, Messages: map[string]uint64{"NBIRTH": 1, "DDATA": 40}},
		Upstream: Upstream{Enabled: true, Connected: true, State: UpstreamOnline, Server: "tls://scada:8883",
			Since: t0.Add(-time.Hour), BdSeq: 12, Connects: 3, Attempts: 5,
			LastError: "not authorized: bad user name or password", LastErrorAt: t0.Add(-61 * time.Minute),
			PrimaryHost: "SCADA", PrimaryHostState: "online", PrimaryHostSince: t0.Add(-time.Hour),
			Queued: 12, QueueBytes: 3 << 20, QueueOldest: 95 * time.Second, Dropped: 3,
			DroppedByReason: map[string]uint64{"age": 3}, Messages: map[string]uint64{"NBIRTH": 3, "DDATA": 1200}},
		Devices: []Device{
			{Name: rtu, Driver: "modbus-tcp", Endpoint: "10.0.0.5:502 unit 1", State: StateCommunicating,
				StateSince: t0.Add(-80 * time.Minute), Up: true, LastGood: t0.Add(-2 * time.Second),
				ResponseTime: 12 * time.Millisecond, Requests: 10, Errors: 2, ErrorsByKind: map[string]uint64{"timeout": 2},
				LastError:   `illegal data address reading hr:49000 (1 register) for tag "Bogus/Out Of Range"`,
				LastErrorAt: t0.Add(-time.Minute),
				Tags: []Tag{
					good(rtu, "Wellhead/Tubing Pressure", 851.25, "psi"),
					{Device: rtu, Name: "Tank/Level", Type: "Float", Quality: "bad", Time: t0.Add(-time.Minute),
						LastGoodDisplay: "12.50", LastGoodTime: t0.Add(-5 * time.Minute), Units: "ft", Address: "hr:40003"},
					{Device: rtu, Name: "<script>alert(1)</script>", Type: "Boolean", Quality: "stale", Writable: true},
				}},
			{Name: "Flow <b>computer</b>", Driver: "opcua", Endpoint: "opc.tcp://fc:4840", State: StateConnecting,
				Tags: []Tag{{Device: "Flow <b>computer</b>", Name: "Gas/Rate", Type: "Double", Quality: "stale", Units: "mscf/d"}}},
			{Name: "Separator", Driver: "modbus-rtu", Endpoint: "/dev/ttyUSB0 9600 8N1 unit 3", State: StateDown,
				LastGood: t0.Add(-10 * time.Minute), ResponseTime: 40 * time.Millisecond, Requests: 100, Errors: 40,
				ErrorsByKind: map[string]uint64{"timeout": 38, "crc": 2}, LastError: "timeout reading hr:40001 (4 registers)",
				LastErrorAt: t0.Add(-3 * time.Second),
				Tags: []Tag{{Device: "Separator", Name: "Level", Type: "Float", Quality: "bad", Time: t0.Add(-3 * time.Second),
					LastGoodDisplay: "4.10", LastGoodTime: t0.Add(-10 * time.Minute), Units: "ft"}}},
			{Name: "Spare", Driver: "modbus-tcp", Endpoint: "10.0.0.9:502 unit 1", State: StateDisabled,
				Tags: []Tag{{Device: "Spare", Name: "Pressure", Type: "Float", Quality: "stale"}}},
		},
	}
}

// serveOpts starts a server with o on a free loopback port, stopped when the test ends.
func serveOpts(t testing.TB, o Options, src Source) *Server {
	t.Helper()
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	s, err := NewWithOptions(o, src, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	s.clock = func() time.Time { return t0 }
	run(t, s)
	return s
}

func run(t testing.TB, s *Server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return within 10 s of cancel")
		}
	})
}

func serve(t testing.TB, src Source) string {
	t.Helper()
	return "http://" + serveOpts(t, Options{}, src).Addr().String()
}

// get fetches url without asking for compression and fails t unless the status is 200.
func get(t testing.TB, url string) (string, http.Header) {
	t.Helper()
	body, h, code := fetch(t, url, nil)
	if code != 200 {
		t.Fatalf("GET %s: %d %s", url, code, body)
	}
	return body, h
}

func fetch(t testing.TB, url string, hdr map[string]string) (string, http.Header, int) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), resp.Header, resp.StatusCode
}

func mustContain(t testing.TB, what, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("%s lacks %q", what, w)
		}
	}
}
