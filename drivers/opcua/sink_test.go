package opcua

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wellgate/wellgate/drivers"
)

// event is one Sink call: a batch of samples or a device state.
type event struct {
	samples []drivers.Sample
	device  string
	up      bool
	err     error
	state   bool // a DeviceState call
}

// testSink records every call, in order.
type testSink struct {
	mu     sync.Mutex
	events []event
	latest map[string]drivers.Sample // "device/tag"
	count  map[string]int            // samples per "device/tag"
	notify chan struct{}
}

func newTestSink() *testSink {
	return &testSink{latest: map[string]drivers.Sample{}, count: map[string]int{}, notify: make(chan struct{}, 1)}
}

func (s *testSink) Samples(batch []drivers.Sample) {
	s.mu.Lock()
	s.events = append(s.events, event{samples: batch})
	for _, x := range batch {
		s.latest[x.Device+"/"+x.Tag] = x
		s.count[x.Device+"/"+x.Tag]++
	}
	s.mu.Unlock()
	s.ping()
}

func (s *testSink) DeviceState(device string, up bool, err error) {
	s.mu.Lock()
	s.events = append(s.events, event{device: device, up: up, err: err, state: true})
	s.mu.Unlock()
	s.ping()
}

func (s *testSink) ping() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *testSink) sample(device, tag string) (drivers.Sample, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.latest[device+"/"+tag]
	return x, ok
}

// state returns the last state reported for device: 1 up, -1 down, 0 none.
func (s *testSink) state(device string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.events) - 1; i >= 0; i-- {
		if e := s.events[i]; e.state && e.device == device {
			if e.up {
				return 1
			}
			return -1
		}
	}
	return 0
}

// lastErr returns the error of the last down state reported for device.
func (s *testSink) lastErr(device string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.events) - 1; i >= 0; i-- {
		if e := s.events[i]; e.state && e.device == device && !e.up {
			return e.err
		}
	}
	return nil
}

// snapshot returns the events so far.
func (s *testSink) snapshot() []event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]event(nil), s.events...)
}

// waitFor waits until cond holds, re-checking on every sink call and at least every 20ms,
// at most within.
func (s *testSink) waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-s.notify:
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
	}
}

// waitValue waits until device/tag has a sample of quality q whose value is want.
func (s *testSink) waitValue(t testing.TB, within time.Duration, device, tag string, q drivers.Quality, want drivers.Value) drivers.Sample {
	t.Helper()
	var got drivers.Sample
	s.waitFor(t, within, device+"/"+tag+" = "+want.String()+" "+q.String(), func() bool {
		x, ok := s.sample(device, tag)
		got = x
		return ok && x.Quality == q && x.Value.Equal(want)
	})
	return got
}

// logBuffer is a concurrency-safe log destination.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if os.Getenv("WELLGATE_TEST_LOG") != "" {
		os.Stderr.Write(p)
	}
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) contains(s string) bool { return strings.Contains(l.String(), s) }

// newLogger logs into a buffer the test can read (and to stderr with WELLGATE_TEST_LOG set).
func newLogger() (*slog.Logger, *logBuffer) {
	lb := &logBuffer{}
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// running is a driver run by a test.
type running struct {
	d    *Driver
	sink *testSink
	log  *logBuffer
}

// startDriver builds the driver and runs it until the test ends; Close must return soon.
func startDriver(t testing.TB, opts Options) *running {
	t.Helper()
	log, lb := newLogger()
	d, err := New(opts, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	sink := newTestSink()
	done := make(chan error, 1)
	go func() { done <- d.Run(context.Background(), sink) }()
	t.Cleanup(func() {
		start := time.Now()
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("Close took %v", took)
		}
	})
	return &running{d: d, sink: sink, log: lb}
}

// device is a device of the test server with short timings.
func (ts *testServer) device(name, mode string, tags ...TagOptions) DeviceOptions {
	return DeviceOptions{
		Name: name, Endpoint: ts.url, Mode: mode,
		Interval: 50 * time.Millisecond, Timeout: time.Second,
		KeepAlive: 200 * time.Millisecond, Watchdog: 400 * time.Millisecond,
		Where: "test.toml:1", Tags: tags,
	}
}
