package bridge

import "sync"

// mailbox is the run loop's inbox. Paho's and mochi's callbacks, the drivers' poll loops and
// the bridge's own goroutines put events here and never block; the run loop takes them all
// at once, in arrival order.
//
// It is bounded in entries and in bytes. Data is offered and refused when the mailbox is full
// (or closed); the caller then applies the policy, counted in Status and logged rate-limited:
//
//   - samples and written values go straight to the store-and-forward queue (never lost);
//   - local messages to forward upstream, and upstream commands and messages for down rules,
//     are dropped.
//
// Control events (connection attempts and failures, device states, STATE, Next Server) are
// put whatever the bounds: they are few and small, and losing one would stall the bridge.
// They still count, so that a mailbox full of them refuses data.
type mailbox struct {
	mu       sync.Mutex
	items    []event
	bytes    int
	maxItems int
	maxBytes int
	closed   bool
	notify   chan struct{}
}

// controlSize is what a control event counts for in the byte bound.
const controlSize = 64

func (m *mailbox) init(maxItems, maxBytes int) {
	m.maxItems, m.maxBytes = maxItems, maxBytes
	m.notify = make(chan struct{}, 1)
}

// offer adds a data event of about size bytes unless the mailbox is full or closed; it
// reports whether it did.
func (m *mailbox) offer(ev event, size int) bool {
	m.mu.Lock()
	ok := !m.closed && len(m.items) < m.maxItems && m.bytes+size <= m.maxBytes
	if ok {
		m.items = append(m.items, ev)
		m.bytes += size
	}
	m.mu.Unlock()
	if ok {
		m.wake()
	}
	return ok
}

// put adds a control event whatever the bounds; it reports false only when the mailbox is
// closed (the loop has stopped).
func (m *mailbox) put(ev event) bool {
	m.mu.Lock()
	ok := !m.closed
	if ok {
		m.items = append(m.items, ev)
		m.bytes += controlSize
	}
	m.mu.Unlock()
	if ok {
		m.wake()
	}
	return ok
}

func (m *mailbox) wake() {
	select {
	case m.notify <- struct{}{}:
	default:
	}
}

// take returns everything queued, oldest first.
func (m *mailbox) take() []event {
	m.mu.Lock()
	defer m.mu.Unlock()
	items := m.items
	m.items, m.bytes = nil, 0
	return items
}

// close refuses everything from now on and returns what was left, oldest first.
func (m *mailbox) close() []event {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	return m.take()
}

// size returns the entries and bytes queued.
func (m *mailbox) size() (entries, bytes int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.items), m.bytes
}
