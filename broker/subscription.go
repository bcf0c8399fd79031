package broker

import (
	"log/slog"
	"sync"
)

// maxPending and maxPendingBytes bound the messages a subscription holds for a handler that
// has fallen behind. Past either the oldest are dropped, counted and logged: the broker must
// never grow without bound on a 256 MB box, and a publisher must never be blocked by an
// in-process consumer.
const (
	maxPending      = 100_000
	maxPendingBytes = 32 << 20
)

// subscription hands messages from mochi's publisher goroutines to one handler goroutine, in
// the order they were published.
type subscription struct {
	filter string
	fn     func(Message)
	log    *slog.Logger

	mu      sync.Mutex
	cond    *sync.Cond
	queue   []Message
	bytes   int
	closed  bool
	dropped uint64
	done    chan struct{}
}

func newSubscription(filter string, fn func(Message), log *slog.Logger) *subscription {
	s := &subscription{filter: filter, fn: fn, log: log, done: make(chan struct{})}
	s.cond = sync.NewCond(&s.mu)
	go s.loop()
	return s
}

func (s *subscription) push(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	size := len(m.Topic) + len(m.Payload)
	for len(s.queue) > 0 && (len(s.queue) >= maxPending || s.bytes+size > maxPendingBytes) {
		s.bytes -= len(s.queue[0].Topic) + len(s.queue[0].Payload)
		s.queue[0] = Message{}
		s.queue = s.queue[1:]
		s.dropped++
		if s.dropped == 1 || s.dropped%10_000 == 0 {
			s.log.Warn("in-process subscriber is behind; dropping oldest messages",
				"filter", s.filter, "dropped", s.dropped)
		}
	}
	s.queue = append(s.queue, m)
	s.bytes += size
	s.cond.Signal()
}

func (s *subscription) loop() {
	defer close(s.done)
	for {
		s.mu.Lock()
		for len(s.queue) == 0 && !s.closed {
			s.cond.Wait()
		}
		if len(s.queue) == 0 && s.closed {
			s.mu.Unlock()
			return
		}
		batch := s.queue
		s.queue, s.bytes = nil, 0
		s.mu.Unlock()
		for _, m := range batch {
			s.fn(m)
		}
	}
}

// close stops accepting messages, lets the handler finish what is queued, and waits for it.
func (s *subscription) close() {
	s.mu.Lock()
	s.closed = true
	s.cond.Signal()
	s.mu.Unlock()
	<-s.done
}
