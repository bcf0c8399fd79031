package drivers

import (
	"maps"
	"sync"
	"time"
)

// Counters are one device's communication counters, for the status page and /metrics: a
// driver's goroutines record into them, Status reads them from anywhere. The zero value is
// ready to use; it is safe for concurrent use.
type Counters struct {
	mu sync.Mutex
	s  DeviceStatus
}

// Answered records a request that got an answer (data, or a device's refusal such as a
// Modbus exception) after took.
func (c *Counters) Answered(took time.Duration) {
	c.mu.Lock()
	c.s.Requests++
	c.s.ResponseTime = took
	c.mu.Unlock()
}

// Failed records a request (or a connection attempt) that failed at at with err, of kind
// ("timeout", "connection", "crc", …).
func (c *Counters) Failed(kind string, err error, at time.Time) {
	c.mu.Lock()
	c.s.Requests++
	c.s.Errors++
	c.count(kind)
	c.s.LastError, c.s.LastErrorAt = err.Error(), at
	c.mu.Unlock()
}

// Count counts an event of kind that is not a failed request (a stale reply discarded) and
// returns how many of it there have been.
func (c *Counters) Count(kind string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count(kind)
}

func (c *Counters) count(kind string) uint64 {
	if c.s.ErrorsByKind == nil {
		c.s.ErrorsByKind = map[string]uint64{}
	}
	c.s.ErrorsByKind[kind]++
	return c.s.ErrorsByKind[kind]
}

// Good records data received at at: a poll cycle that succeeded, a subscription's
// notification.
func (c *Counters) Good(at time.Time) {
	c.mu.Lock()
	c.s.LastGood = at
	c.mu.Unlock()
}

// SetUp records whether the device is communicating.
func (c *Counters) SetUp(up bool) {
	c.mu.Lock()
	c.s.Up = up
	c.mu.Unlock()
}

// Status returns a copy of the counters as device's DeviceStatus.
func (c *Counters) Status(device string) DeviceStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.s
	s.Device = device
	s.ErrorsByKind = maps.Clone(c.s.ErrorsByKind)
	return s
}
