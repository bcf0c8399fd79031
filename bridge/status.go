package bridge

import (
	"sync"
	"time"

	"github.com/wellgate/wellgate/bridge/queue"
)

// State is the upstream connection's state.
type State string

// States, in the order a connection goes through them.
const (
	StateDisconnected State = "disconnected" // waiting to retry
	StateConnecting   State = "connecting"   // CONNECT sent
	StateWaitingHost  State = "waiting-host" // connected, primary host not online yet
	StateOnline       State = "online"       // births published: data flows
)

// Status is the bridge's state for the status page and metrics.
type Status struct {
	State     State
	Server    string    // the server connected or being tried
	Since     time.Time // when State last changed
	Connects  uint64    // successful CONNECTs since start
	Attempts  uint64    // connection attempts since start
	LastError string
	LastErrAt time.Time
	BdSeq     uint64 // of the current or last connection

	PublishedLive       uint64 // samples published live
	PublishedHistorical uint64 // samples replayed from the queue
	Queued              uint64 // records (samples and forwarded messages) appended to the queue
	QueueErrors         uint64 // records lost because the queue refused them (disk full)
	Forwarded           uint64 // local messages forwarded upstream (live or replayed)
	ForwardedDown       uint64 // upstream messages forwarded to the local broker
	Commands            uint64 // NCMD/DCMD received
	CommandErrors       uint64
	Queue               queue.Stats
}

type statusBox struct {
	mu sync.Mutex
	s  Status
}

func (b *statusBox) update(fn func(*Status)) {
	b.mu.Lock()
	fn(&b.s)
	b.mu.Unlock()
}

func (b *statusBox) setState(st State, server string) {
	b.update(func(s *Status) {
		if s.State != st || s.Server != server {
			s.State, s.Server, s.Since = st, server, time.Now()
		}
	})
}

func (b *statusBox) setError(err error) {
	b.update(func(s *Status) { s.LastError, s.LastErrAt = err.Error(), time.Now() })
}

// Status returns a snapshot of the bridge's state and counters. Safe for concurrent use.
func (b *Bridge) Status() Status {
	b.stat.mu.Lock()
	s := b.stat.s
	b.stat.mu.Unlock()
	s.Queue = b.opts.Queue.Stats()
	return s
}
