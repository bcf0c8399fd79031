package bridge

import (
	"sync"
	"time"

	"github.com/wellgate/wellgate/bridge/queue"
	"github.com/wellgate/wellgate/internal/clock"
	"github.com/wellgate/wellgate/internal/logx"
)

// State is the upstream connection's state.
type State string

// States, in the order a connection goes through them.
const (
	StateDisconnected State = "disconnected" // waiting to retry
	StateConnecting   State = "connecting"   // CONNECT sent
	StateWaitingHost  State = "waiting-host" // connected, primary host not online yet
	StateWaitingPoll  State = "waiting-poll" // connected, the devices' first poll not in yet (bounded)
	StateOnline       State = "online"       // births published: data flows
)

// Status is the bridge's state for the status page and metrics.
type Status struct {
	State     State
	Server    string    // the server connected or being tried
	Since     time.Time // when State last changed
	Connects  uint64    // successful CONNECTs since start
	Attempts  uint64    // connection attempts since start
	LastError string    // cut to logx.MaxValue bytes
	LastErrAt time.Time
	BdSeq     uint64 // of the current or last connection

	PublishedLive       uint64 // samples published live
	PublishedHistorical uint64 // samples replayed from the queue
	Queued              uint64 // records (samples and forwarded messages) appended to the queue
	QueueErrors         uint64 // records lost because the queue refused them (nothing left to free)
	Forwarded           uint64 // local messages forwarded upstream (live or replayed)
	ForwardedDown       uint64 // upstream messages forwarded to the local broker
	Commands            uint64 // NCMD/DCMD received
	CommandErrors       uint64
	CommandsRetained    uint64 // retained NCMD/DCMD ignored (Sparkplug commands are never retained)
	NextServerRefused   uint64 // Next Server requests refused: one per nextServerHoldoff
	Reconfigures        uint64 // new device sets taken (Reconfigure)
	HistoricalSkipped   uint64 // queued samples of devices or tags no longer configured, skipped on replay

	// Delivery of what was published (samples and forwarded messages, live or replayed):
	// Confirmed by a PUBACK or by proof that the broker read it; ConfirmedByWindow only because
	// the detection window passed without proof; Requeued queued again because the connection
	// ended before any proof (the only records the host may get twice); Unconfirmed held now.
	Confirmed         uint64
	ConfirmedByWindow uint64
	Requeued          uint64
	Unconfirmed       int

	// The mailbox's policy when full (see Options.MailboxEntries): samples and written values
	// go straight to the queue (MailboxOverflow, also counted in Queued); local messages to
	// forward and upstream commands or down-rule messages are dropped.
	MailboxOverflow uint64 // samples queued directly because the mailbox was full
	ForwardDropped  uint64 // local messages not forwarded because the mailbox was full
	InboundDropped  uint64 // upstream messages dropped because the mailbox was full
	MailboxEntries  int    // events waiting for the run loop now
	MailboxBytes    int

	Queue queue.Stats
}

type statusBox struct {
	clk clock.Clock
	mu  sync.Mutex
	s   Status
}

func (b *statusBox) update(fn func(*Status)) {
	b.mu.Lock()
	fn(&b.s)
	b.mu.Unlock()
}

func (b *statusBox) setState(st State, server string) {
	b.update(func(s *Status) {
		if s.State != st || s.Server != server {
			s.State, s.Server, s.Since = st, server, b.clk.Now()
		}
	})
}

func (b *statusBox) setError(err error) {
	now := b.clk.Now()
	b.update(func(s *Status) { s.LastError, s.LastErrAt = logx.Err(err), now })
}

// Status returns a snapshot of the bridge's state and counters. Safe for concurrent use.
func (b *Bridge) Status() Status {
	b.stat.mu.Lock()
	s := b.stat.s
	b.stat.mu.Unlock()
	s.Queue = b.opts.Queue.Stats()
	s.MailboxEntries, s.MailboxBytes = b.mail.size()
	return s
}
