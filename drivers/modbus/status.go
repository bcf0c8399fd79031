package modbus

import (
	"maps"
	"sync"
	"time"

	"github.com/wellgate/wellgate/drivers"
)

// stats are one device's communication counters. The endpoint goroutine writes them; Status
// reads them from anywhere.
type stats struct {
	mu        sync.Mutex
	up        bool
	requests  uint64
	errors    uint64
	byKind    map[string]uint64
	lastErr   string
	lastErrAt time.Time
	lastGood  time.Time
	response  time.Duration
	cycles    uint64 // poll cycles that completed without a communication error
}

// ok records a request that got an answer (data or a Modbus exception).
func (s *stats) ok(took time.Duration) {
	s.mu.Lock()
	s.requests++
	s.response = took
	s.mu.Unlock()
}

// failed records a request that failed with err of the given kind.
func (s *stats) failed(kind string, err error, at time.Time) {
	s.mu.Lock()
	s.requests++
	s.errors++
	if s.byKind == nil {
		s.byKind = map[string]uint64{}
	}
	s.byKind[kind]++
	s.lastErr, s.lastErrAt = err.Error(), at
	s.mu.Unlock()
}

// late records a frame discarded because it did not answer the request in flight (see
// kindLate); it is not a failed request. It reports whether it was the first.
func (s *stats) late() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byKind == nil {
		s.byKind = map[string]uint64{}
	}
	s.byKind[kindLate]++
	return s.byKind[kindLate] == 1
}

// cycle records the end of a poll cycle.
func (s *stats) cycle(good bool, at time.Time) {
	s.mu.Lock()
	if good {
		s.cycles++
		s.lastGood = at
	}
	s.mu.Unlock()
}

func (s *stats) setUp(up bool) {
	s.mu.Lock()
	s.up = up
	s.mu.Unlock()
}

func (s *stats) snapshot(name string) drivers.DeviceStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return drivers.DeviceStatus{
		Device: name, Up: s.up, Requests: s.requests, Errors: s.errors,
		ErrorsByKind: maps.Clone(s.byKind), LastError: s.lastErr, LastErrorAt: s.lastErrAt,
		LastGood: s.lastGood, ResponseTime: s.response,
	}
}

// Status returns every device's counters (drivers.StatusReporter). Safe for concurrent use.
func (d *Driver) Status() []drivers.DeviceStatus {
	out := make([]drivers.DeviceStatus, len(d.devices))
	for i, dev := range d.devices {
		out[i] = dev.stats.snapshot(dev.name)
	}
	return out
}
