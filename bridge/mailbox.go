package bridge

import "sync"

// mailbox is an unbounded FIFO that never blocks the sender: paho's and mochi's callbacks and
// the drivers' poll loops put, the run loop takes everything at once. Its growth is bounded
// by how long the run loop can be busy (a publish waits at most the write timeout).
type mailbox[T any] struct {
	mu     sync.Mutex
	items  []T
	notify chan struct{}
}

func (m *mailbox[T]) init() { m.notify = make(chan struct{}, 1) }

func (m *mailbox[T]) put(v T) {
	m.mu.Lock()
	m.items = append(m.items, v)
	m.mu.Unlock()
	select {
	case m.notify <- struct{}{}:
	default:
	}
}

// take returns everything queued, oldest first.
func (m *mailbox[T]) take() []T {
	m.mu.Lock()
	defer m.mu.Unlock()
	items := m.items
	m.items = nil
	return items
}
