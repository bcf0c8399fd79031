package sparkplug

import (
	"strings"
	"sync"
)

// messageCounts counts the messages a session published, by message type, for the status
// page and /metrics. Safe for concurrent use.
type messageCounts struct {
	mu sync.Mutex
	n  map[string]uint64
}

// add counts one message published on topic ("spBv1.0/<group>/<TYPE>/…").
func (c *messageCounts) add(topic string) {
	typ := topic
	for range 2 { // skip the namespace and the group
		if i := strings.IndexByte(typ, '/'); i >= 0 {
			typ = typ[i+1:]
		}
	}
	if i := strings.IndexByte(typ, '/'); i >= 0 {
		typ = typ[:i]
	}
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]uint64{}
	}
	c.n[typ]++
	c.mu.Unlock()
}

// Messages returns how many messages of each type ("NBIRTH", "DDATA", …) the session has
// published since it was made; the map is the caller's.
func (s *Session) Messages() map[string]uint64 {
	s.counts.mu.Lock()
	defer s.counts.mu.Unlock()
	out := make(map[string]uint64, len(s.counts.n))
	for k, v := range s.counts.n {
		out[k] = v
	}
	return out
}
