package modbus

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/wellgate/wellgate/drivers"
)

// stateEvent is one Sink.DeviceState call.
type stateEvent struct {
	device string
	up     bool
	err    error
}

// testSink records what the driver delivers.
type testSink struct {
	mu      sync.Mutex
	latest  map[tagKey]drivers.Sample
	batches map[string]int       // device → batches
	bad     map[string]int       // device → samples delivered with bad quality
	check   func(drivers.Sample) // when set, sees every sample (under the lock)
	states  []stateEvent
}

// tagKey names a device's tag without building a string (the benchmarks count allocations).
type tagKey struct{ device, tag string }

func newTestSink() *testSink {
	return &testSink{latest: map[tagKey]drivers.Sample{}, batches: map[string]int{}, bad: map[string]int{}}
}

func (s *testSink) Samples(batch []drivers.Sample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range batch {
		s.latest[tagKey{x.Device, x.Tag}] = x
		if x.Quality != drivers.Good {
			s.bad[x.Device]++
		}
		if s.check != nil {
			s.check(x)
		}
	}
	if len(batch) > 0 {
		s.batches[batch[0].Device]++
	}
}

func (s *testSink) DeviceState(device string, up bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.states = append(s.states, stateEvent{device, up, err})
}

func (s *testSink) sample(device, tag string) (drivers.Sample, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.latest[tagKey{device, tag}]
	return x, ok
}

// lastState returns the last state reported for device: 1 up, -1 down, 0 none.
func (s *testSink) lastState(device string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.states) - 1; i >= 0; i-- {
		if s.states[i].device == device {
			if s.states[i].up {
				return 1
			}
			return -1
		}
	}
	return 0
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
}

// testLogger logs to stderr with -v and WELLGATE_TEST_LOG set, else nowhere.
func testLogger() *slog.Logger {
	if os.Getenv("WELLGATE_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startDriver builds the driver for opts and runs it until the test ends.
func startDriver(t testing.TB, opts Options) (*Driver, *testSink) {
	t.Helper()
	d, err := New(opts, testLogger())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	sink := newTestSink()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, sink) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
	return d, sink
}

// tcpDevice returns a modbus-tcp device for server s.
func tcpDevice(name string, s *testServer, unit int, tags ...TagOptions) DeviceOptions {
	o := tcpOptions(name, s.addr, unit, tags...)
	o.PollInterval, o.Timeout = 50*time.Millisecond, 500*time.Millisecond
	return o
}

// tcpOptions returns a modbus-tcp device at addr with the configuration's defaults.
func tcpOptions(name, addr string, unit int, tags ...TagOptions) DeviceOptions {
	return DeviceOptions{
		Name: name, Address: addr, UnitID: unit, PollInterval: time.Second, PollSchedule: "clock", Timeout: time.Second,
		ByteOrder: "ABCD", MaxRegisters: maxReadRegisters, MaxBits: maxReadBits, Tags: tags,
		WriteSingleRegister: DefaultWriteSingleRegister, WriteCoil: DefaultWriteCoil, MaxBackoff: DefaultMaxBackoff,
	}
}

func f64(v float64) *float64 { return &v }

// batchCount returns how many sample batches device has delivered.
func (s *testSink) batchCount(device string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.batches[device]
}

// badCount returns how many samples of device were delivered with bad quality.
func (s *testSink) badCount(device string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bad[device]
}

// onSample makes f see every sample delivered from now on.
func (s *testSink) onSample(f func(drivers.Sample)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.check = f
}
