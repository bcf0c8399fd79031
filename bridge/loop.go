package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/wellgate/wellgate/bridge/queue"
	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/internal/backoff"
	"github.com/wellgate/wellgate/internal/clock"
	"github.com/wellgate/wellgate/internal/logx"
	"github.com/wellgate/wellgate/sparkplug"
)

// tickInterval paces replay, the first-poll wait and merged rebirths while one of them is
// pending (see busy); quietInterval paces the rest (stamping what was written, retiring what is
// confirmed, asking for proof), which only hold memory a little longer when late. A gateway
// at rest so wakes once a second instead of twenty times: every wake-up of an otherwise idle
// process costs the Go scheduler and sysmon far more than the tick's own work.
const (
	tickInterval  = 50 * time.Millisecond
	quietInterval = time.Second
)

// loopState is the run loop's own state; only Run's goroutine touches it.
//
// Disk: the loop calls Queue.Add, Begin, Ack and Nack itself. queue.Disk never syncs inside
// them (its group commit fsyncs on a goroutine of its own, without holding the lock Add
// takes), so they cost a buffered write or read, not a wait for the disk.
type loopState struct {
	ctx         context.Context
	gen         uint64
	dialing     bool
	bg          sync.WaitGroup // dialing goroutines and connections being shut
	conn        *conn          // the connection in use; nil while disconnected
	prev        *conn          // the last connection released (a new attempt waits for it)
	server      int            // index of the server in use or next to try
	connectedAt time.Time
	live        bool   // the session is started on conn
	dead        bool   // NDEATH was published: disconnect cleanly (no will)
	deathBatch  uint64 // the NDEATH's batch on conn, waited for before DISCONNECT
	stopping    bool
	host        *sparkplug.HostTracker
	retry       clock.Timer
	back        backoff.Backoff
	ring        []ringEntry      // published live, not yet confirmed
	inflight    []flight         // replayed from the queue, not yet confirmed
	ringDone    int              // ring entries at the front known written (proof.written set)
	flightDone  int              // same for inflight
	held        int              // records in ring and inflight
	scratch     []byte           // packSamples' buffer
	reported    []drivers.Sample // the session's reported samples of the batch at hand (onSamples)
	budget      float64          // replay budget in records
	lastTick    time.Time
	lastProbe   time.Time      // when the last proof was asked for
	startedAt   time.Time      // when Run started (FirstPollWait)
	polled      bool           // the first births need wait no more for the first poll
	hostOnline  bool           // the primary host's last valid STATE on this connection said online
	early       []inboundEvent // received on the connection being dialed, before its dialedEvent
	backlog     bool           // the queue may hold records to replay (live only)
	rebirthDue  bool           // a merged rebirth waits for FlushRebirth
	quiet       bool           // the tick is armed for quietInterval
}

// maxEarly bounds the messages kept for a connection being dialed: the retained ones its
// subscriptions bring (STATE, a stray retained command).
const maxEarly = 64

// ringEntry is what one live publish carried, kept until confirmed: its records as the queue
// encodes them, packed (see packedRecords), so that the ring holds one pointer-free buffer per
// batch rather than a slice per record.
type ringEntry struct {
	records packedRecords
	n       int // its records
	proof
}

// flight is a replayed queue transaction, acked once confirmed like a ringEntry.
type flight struct {
	tx *queue.Tx
	n  int // its records
	proof
}

// lifecycle guards Run and Close.
type lifecycle struct {
	mu      sync.Mutex
	started bool
	closed  bool
	stop    chan struct{} // closed by Close
	done    chan struct{} // closed when Run returns
}

func (lc *lifecycle) init() {
	lc.stop, lc.done = make(chan struct{}), make(chan struct{})
}

var errClosed = errors.New("bridge: closed")

// closeTimeout bounds Close's wait for Run; Run's shutdown waits at most deathWait for the
// NDEATH, paho's quiesce and a publish's write timeout.
func (b *Bridge) closeTimeout() time.Duration {
	return deathWait + b.opts.ConnectTimeout + 5*time.Second
}

// Run connects and keeps the upstream connection and the Sparkplug session going until ctx
// is cancelled or Close is called; then it publishes NDEATH, queues whatever was not
// confirmed and whatever is still in the mailbox, disconnects and returns nil. It returns an
// error only when it cannot start (a local rule subscription failed, or Run was called twice
// or after Close).
func (b *Bridge) Run(ctx context.Context) error {
	b.life.mu.Lock()
	if b.life.started || b.life.closed {
		b.life.mu.Unlock()
		return errors.New("bridge: Run called twice or after Close")
	}
	b.life.started = true
	b.life.mu.Unlock()
	defer close(b.life.done)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-b.life.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := b.subscribeLocal(); err != nil {
		b.drainOffline()
		return err
	}
	b.loopRun(ctx)
	return nil
}

func (b *Bridge) loopRun(ctx context.Context) {
	l := &b.loop
	l.ctx = ctx
	l.back = backoff.Backoff{Min: b.opts.ReconnectMin, Max: b.opts.ReconnectMax, Clock: b.clk}
	if b.opts.PrimaryHostID != "" {
		l.host = sparkplug.NewHostTracker(b.opts.PrimaryHostID)
	}
	l.retry = b.clk.NewTimer(0)
	defer l.retry.Stop()
	tick := b.clk.NewTimer(tickInterval)
	defer tick.Stop()
	l.lastTick = b.clk.Now()
	l.startedAt = l.lastTick
	l.polled = b.opts.FirstPollWait < 0
	for {
		select {
		case <-ctx.Done():
			b.shutdown()
			return
		case <-l.retry.C():
			b.dial()
		case <-b.mail.notify:
			for _, ev := range b.mail.take() {
				ev.apply(b)
			}
			b.noteHeld()
			if l.quiet && b.busy() {
				l.quiet = false
				tick.Reset(tickInterval)
			}
		case now := <-tick.C():
			b.onTick(now)
			l.quiet = !b.busy()
			tick.Reset(pace(l.quiet))
		}
	}
}

// busy reports whether the next tick has work that must not wait for quietInterval: the
// first-poll wait, a merged rebirth, or a backlog to replay.
func (b *Bridge) busy() bool {
	l := &b.loop
	return !l.polled || l.live && (l.backlog || l.rebirthDue)
}

// pace is the tick's next period.
func pace(quiet bool) time.Duration {
	if quiet {
		return quietInterval
	}
	return tickInterval
}

// onTick paces what runs on the clock: the first-poll wait, merged rebirths, stamping what
// was written, retiring what is confirmed, asking for proof, and replay.
func (b *Bridge) onTick(now time.Time) {
	l := &b.loop
	b.pollCheck()
	b.flushRebirth()
	if c := l.conn; c != nil {
		b.stamp(c)
	}
	b.retire(now)
	b.askProof(now)
	b.replay(now)
	l.lastTick = now
}

// pollCheck ends the first births' wait for the first poll once every device has reported, or
// FirstPollWait has passed, and goes live if nothing else holds the births back.
func (b *Bridge) pollCheck() {
	l := &b.loop
	if l.polled {
		return
	}
	if !b.opts.Session.Polled() && b.clk.Since(l.startedAt) < b.opts.FirstPollWait {
		return
	}
	l.polled = true
	b.maybeGoLive()
}

// maybeGoLive publishes the births once connected, when the primary host (if any) is online
// and the first poll is in (or its wait is over).
func (b *Bridge) maybeGoLive() {
	l := &b.loop
	switch c := l.conn; {
	case c == nil || l.live || l.dead || l.stopping:
		return
	case l.host != nil && !l.hostOnline:
		b.stat.setState(StateWaitingHost, c.server)
	case !l.polled:
		b.stat.setState(StateWaitingPoll, c.server)
	default:
		b.goLive()
	}
}

// Close stops the bridge: it ends Run as a cancelled context does and waits for it, at most
// a bounded time. On a bridge whose Run never started it queues what the mailbox holds. It is
// idempotent; Run after Close returns an error.
func (b *Bridge) Close() error {
	b.life.mu.Lock()
	first, started := !b.life.closed, b.life.started
	if first {
		b.life.closed = true
		close(b.life.stop)
	}
	b.life.mu.Unlock()
	if !started {
		if first {
			b.drainOffline()
		}
		return nil
	}
	t := time.NewTimer(b.closeTimeout())
	defer t.Stop()
	select {
	case <-b.life.done:
		return nil
	case <-t.C:
		return fmt.Errorf("bridge: close: Run did not return within %v", b.closeTimeout())
	}
}

// drainOffline hands what the mailbox holds to the offline session and the queue, for a
// bridge whose loop is not running (and never will).
func (b *Bridge) drainOffline() {
	b.loop.stopping = true
	for _, ev := range b.mail.close() {
		ev.apply(b)
	}
}

// dial starts one connection attempt on a goroutine; its result comes back as a dialedEvent.
// An attempt to the server of the previous connection first waits for that one to be closed,
// so that the broker never sees the old client id taken over (and the old will published).
func (b *Bridge) dial() {
	l := &b.loop
	if l.dialing || l.conn != nil || l.ctx.Err() != nil {
		return
	}
	l.dialing = true
	l.gen++
	c := b.newConn(l.gen, b.opts.Servers[l.server])
	prev := l.prev
	b.stat.setState(StateConnecting, c.server)
	b.stat.update(func(s *Status) { s.Attempts++ })
	ctx := l.ctx
	l.bg.Add(1)
	go func() {
		defer l.bg.Done()
		if prev != nil && prev.server == c.server {
			select {
			case <-prev.closed:
			case <-ctx.Done():
			}
		}
		var err error
		if c.bdSeq, err = b.opts.BdSeq.Peek(); err != nil {
			err = fmt.Errorf("next bdSeq: %w", err)
		} else {
			err = b.connect(ctx, c)
		}
		if !b.mail.put(dialedEvent{c: c, err: err}) && err == nil {
			c.shut(0, 0) // the loop has stopped: nobody else will release it
		}
	}()
}

func (b *Bridge) onDialed(ev dialedEvent) {
	l := &b.loop
	c := ev.c
	early := l.early
	if c.gen == l.gen {
		l.dialing, l.early = false, nil
	}
	if ev.err == nil && (c.gen != l.gen || l.stopping || l.ctx.Err() != nil) {
		b.release(c, 0, 0)
		return
	}
	if ev.err == nil {
		ev.err = c.failed() // lost between CONNACK and now
		if ev.err != nil {
			b.release(c, 0, 0)
		}
	}
	if ev.err != nil {
		b.dialFailed(c, ev.err)
		return
	}
	l.conn, l.connectedAt, l.hostOnline = c, b.clk.Now(), false
	c.start()
	b.stat.update(func(s *Status) { s.Connects++; s.BdSeq = c.bdSeq })
	b.log.Info("upstream connected", "server", c.server, "bdSeq", c.bdSeq)
	for _, ev := range early {
		b.onInbound(ev) // retained STATE (and commands) that came with the subscriptions
	}
	b.maybeGoLive()
}

// dialFailed schedules the next attempt: the next server at once, or after a whole round has
// failed, the backoff's delay. One line per attempt: the backoff paces them.
func (b *Bridge) dialFailed(c *conn, err error) {
	l := &b.loop
	if l.ctx.Err() != nil || l.stopping {
		return
	}
	l.server = (l.server + 1) % len(b.opts.Servers)
	delay := time.Duration(0)
	if l.server == 0 {
		delay = l.back.Next()
	}
	b.stat.setError(err)
	b.stat.setState(StateDisconnected, c.server)
	b.log.Warn("upstream connect failed", "server", c.server, "err", logx.Err(err), "retry_in", delay.Round(time.Millisecond))
	l.retry.Reset(delay)
}

// goLive starts the session on the connection: births, then the backlog on the next ticks.
func (b *Bridge) goLive() {
	l := &b.loop
	c := l.conn
	if err := b.opts.Session.Start(c, c.bdSeq); err != nil {
		b.lost(fmt.Errorf("births: %w", err), -1)
		return
	}
	c.seal()
	l.live, l.budget, l.lastProbe, l.backlog = true, 0, time.Time{}, true
	b.stat.setState(StateOnline, c.server)
	b.log.Info("sparkplug session online", "bdSeq", c.bdSeq, "backlog", b.opts.Queue.Stats().Records)
}

// onFailed ends the connection that failed, if it is still the one in use.
func (b *Bridge) onFailed(c *conn) {
	c.noted.Store(false)
	if c != b.loop.conn {
		return
	}
	if err := c.failed(); err != nil {
		b.lost(err, -1)
	}
}

// stamp notes when the loop learnt that batches up to c.acked were written or acknowledged:
// on its tick, at most tickInterval late, which only starts the detection window later.
func (b *Bridge) stamp(c *conn) {
	l := &b.loop
	acked, now := c.acked.Load(), b.clk.Now()
	for ; l.ringDone < len(l.ring) && l.ring[l.ringDone].id <= acked; l.ringDone++ {
		l.ring[l.ringDone].written = now
	}
	for ; l.flightDone < len(l.inflight) && l.inflight[l.flightDone].id <= acked; l.flightDone++ {
		l.inflight[l.flightDone].written = now
	}
}

// lost ends the connection: the session goes offline, everything not confirmed goes back to
// the queue, and a reconnect is scheduled after delay (negative: the backoff's next delay).
// After an intentional NDEATH it first waits (bounded by deathWait) for the NDEATH's PUBACK,
// which proves everything published before it: then nothing needs queueing again.
func (b *Bridge) lost(cause error, delay time.Duration) {
	l := &b.loop
	c := l.conn
	if c == nil {
		return
	}
	b.opts.Session.Stop()
	l.live = false
	quiesce := uint(0)
	if l.dead { // send DISCONNECT after the NDEATH, so that the broker does not publish the will as well
		c.waitAcked(l.deathBatch, deathWait)
		quiesce = 500
	}
	b.requeue()
	b.release(c, 0, quiesce)
	l.conn, l.dead, l.deathBatch = nil, false, 0
	if b.clk.Since(l.connectedAt) >= b.opts.ReconnectMax {
		l.back.Reset() // it was a good connection: start over at the shortest delay
	}
	if delay < 0 {
		delay = l.back.Next()
	}
	b.stat.setError(cause)
	b.stat.setState(StateDisconnected, c.server)
	b.log.Warn("upstream connection ended", "server", c.server, "err", logx.Err(cause), "retry_in", delay.Round(time.Millisecond))
	l.retry.Reset(delay)
}

// requeue gives back what was published on the connection and is not confirmed, after taking
// the connection's last progress and proof: replayed transactions not confirmed are rolled
// back (they are still at the head of the queue) and the ring's live records are appended.
// Only these can reach the host twice.
func (b *Bridge) requeue() {
	l := &b.loop
	if c := l.conn; c != nil {
		b.stamp(c)
		b.retire(b.clk.Now())
	}
	n := 0
	if len(l.inflight) > 0 {
		b.opts.Queue.Nack(l.inflight[0].tx)
		for _, f := range l.inflight {
			n += f.n
		}
	}
	l.inflight, l.flightDone = nil, 0
	for _, e := range l.ring {
		b.enqueue(e.records.split(e.n))
		n += e.n
	}
	l.ring, l.ringDone, l.held = nil, 0, 0
	if n > 0 {
		b.stat.update(func(s *Status) { s.Requeued += uint64(n) })
	}
	b.noteHeld()
}

// release shuts a connection on a goroutine of its own (see conn.shut).
func (b *Bridge) release(c *conn, until uint64, quiesce uint) {
	l := &b.loop
	l.prev = c
	l.bg.Add(1)
	go func() { defer l.bg.Done(); c.shut(until, quiesce) }()
}

// death publishes NDEATH for an intentional disconnect; lost then waits for its PUBACK (off
// the loop, bounded) before DISCONNECT.
func (b *Bridge) death() {
	l := &b.loop
	if err := b.opts.Session.Death(); err != nil {
		b.limit.Log(b.log, slog.LevelWarn, "ndeath", "NDEATH not published", "err", logx.Err(err))
	}
	l.deathBatch = l.conn.seal().id
	l.live, l.dead = false, true
}

// shutdown ends Run: what the mailbox holds is published (or queued when not online), then
// NDEATH, whose PUBACK (awaited, bounded) proves everything published before it; whatever is
// still unconfirmed goes to the queue, then DISCONNECT. After a clean stop the next start has
// nothing of this run to send again.
func (b *Bridge) shutdown() {
	l := &b.loop
	l.stopping = true
	l.retry.Stop()
	for _, ev := range b.mail.close() {
		ev.apply(b) // live: published; a late connection is released
	}
	c := l.conn
	if l.live {
		b.death()
		c.waitAcked(l.deathBatch, deathWait)
	}
	b.opts.Session.Stop()
	l.live = false
	b.requeue()
	if c != nil {
		l.conn = nil
		c.shut(0, 250)
	}
	l.bg.Wait() // attempts in progress end with ctx; released connections finish closing
	b.stat.setState(StateDisconnected, "")
	b.log.Info("bridge stopped", "queued", b.opts.Queue.Stats().Records)
}
