package bridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/wellgate/wellgate/bridge/queue"
	"github.com/wellgate/wellgate/sparkplug"
)

// tickInterval paces replay and retires confirmed samples.
const tickInterval = 50 * time.Millisecond

// loopState is the run loop's own state; only Run's goroutine touches it.
type loopState struct {
	gen         uint64
	dialing     bool
	bg          sync.WaitGroup // dialing and disconnecting goroutines
	client      mqtt.Client
	pub         *publisher
	server      int // index of the server in use or next to try
	bdSeq       uint64
	connectedAt time.Time
	live        bool // the session is started on client
	dead        bool // NDEATH was published: disconnect cleanly (no will)
	host        *sparkplug.HostTracker
	retry       *time.Timer
	back        backoff
	ring        []ringEntry // published live, not yet confirmed
	inflight    []flight    // replayed from the queue, not yet confirmed
	budget      float64     // replay budget in records
	lastTick    time.Time
	writes      mailbox[writeReq]
	lastQErr    time.Time
}

// ringEntry is what one live publish carried, kept until confirmed: by PUBACK (tokens) or,
// at QoS 0, by the detection window passing.
type ringEntry struct {
	records [][]byte
	at      time.Time
	tokens  []mqtt.Token
}

// flight is a replayed queue transaction, acked once confirmed like a ringEntry.
type flight struct {
	tx     *queue.Tx
	at     time.Time
	tokens []mqtt.Token
}

type writeReq struct {
	topic string
	w     sparkplug.Write
}

// Run connects and keeps the upstream connection and the Sparkplug session going until ctx
// is cancelled; then it publishes NDEATH, queues whatever was not confirmed, disconnects and
// returns nil. It returns an error only when it cannot start (a local rule subscription
// failed). Run is called once.
func (b *Bridge) Run(ctx context.Context) error {
	if err := b.subscribeLocal(); err != nil {
		return err
	}
	l := &b.loop
	l.back = backoff{min: b.opts.ReconnectMin, max: b.opts.ReconnectMax}
	if b.opts.PrimaryHostID != "" {
		l.host = sparkplug.NewHostTracker(b.opts.PrimaryHostID)
	}
	l.writes.init()
	l.retry = time.NewTimer(0)
	defer l.retry.Stop()
	var writer sync.WaitGroup
	writer.Add(1)
	go func() { defer writer.Done(); b.runWrites(ctx) }()
	defer writer.Wait()
	tick := time.NewTicker(tickInterval)
	defer tick.Stop()
	l.lastTick = time.Now()
	for {
		select {
		case <-ctx.Done():
			b.shutdown()
			return nil
		case <-l.retry.C:
			b.dial(ctx)
		case <-b.mail.notify:
			for _, ev := range b.mail.take() {
				b.handle(ctx, ev)
			}
		case now := <-tick.C:
			b.retire(now)
			b.replay(now)
			l.lastTick = now
		}
	}
}

func (b *Bridge) handle(ctx context.Context, ev any) {
	if b.onData(ev) {
		return
	}
	l := &b.loop
	switch ev := ev.(type) {
	case connEvent:
		b.onConnect(ctx, ev)
	case lostEvent:
		if ev.client == l.client && l.client != nil {
			b.lost(fmt.Errorf("connection lost: %w", ev.err), -1)
		}
	case inboundEvent:
		if ev.client == l.client && l.client != nil {
			b.onInbound(ev)
		}
	case nextServerEvent:
		b.nextServer()
	}
}

// onData handles what the drivers and the local broker deliver (samples, device states,
// messages to forward) and reports whether ev was one of those.
func (b *Bridge) onData(ev any) bool {
	switch ev := ev.(type) {
	case samplesEvent:
		b.onSamples(ev)
	case deviceEvent:
		b.onDevice(ev)
	case message:
		b.onForward(ev)
	default:
		return false
	}
	return true
}

// dial starts one connection attempt on a goroutine; its result comes back as a connEvent.
func (b *Bridge) dial(ctx context.Context) {
	l := &b.loop
	if l.dialing || l.client != nil || ctx.Err() != nil {
		return
	}
	l.dialing = true
	l.gen++
	ev := connEvent{gen: l.gen, server: b.opts.Upstream.Servers[l.server]}
	b.stat.setState(StateConnecting, ev.server)
	b.stat.update(func(s *Status) { s.Attempts++ })
	l.bg.Add(1)
	go func() {
		defer l.bg.Done()
		ev.bdSeq, ev.err = b.opts.BdSeq.Next()
		if ev.err != nil {
			ev.err = fmt.Errorf("next bdSeq: %w", ev.err)
		} else {
			ev.client, ev.err = b.connect(ctx, ev.server, ev.bdSeq)
		}
		b.mail.put(ev)
	}()
}

func (b *Bridge) onConnect(ctx context.Context, ev connEvent) {
	l := &b.loop
	l.dialing = false
	if ev.err == nil && (ev.gen != l.gen || ctx.Err() != nil) {
		b.disconnect(ev.client, 0)
		return
	}
	if ev.err != nil {
		if ctx.Err() != nil {
			return
		}
		l.server = (l.server + 1) % len(b.opts.Upstream.Servers)
		delay := time.Duration(0)
		if l.server == 0 { // a whole round failed
			delay = l.back.next()
		}
		b.stat.setError(ev.err)
		b.stat.setState(StateDisconnected, ev.server)
		b.log.Warn("upstream connect failed", "server", ev.server, "err", ev.err, "retry_in", delay.Round(time.Millisecond))
		l.retry.Reset(delay)
		return
	}
	l.client, l.bdSeq, l.connectedAt = ev.client, ev.bdSeq, time.Now()
	l.pub = &publisher{client: ev.client, timeout: b.opts.Upstream.ConnectTimeout.D()}
	b.stat.update(func(s *Status) { s.Connects++; s.BdSeq = ev.bdSeq })
	b.log.Info("upstream connected", "server", ev.server, "bdSeq", ev.bdSeq)
	if l.host == nil {
		b.goLive()
		return
	}
	b.stat.setState(StateWaitingHost, ev.server)
}

// goLive starts the session on the connection: births, then the backlog on the next ticks.
func (b *Bridge) goLive() {
	l := &b.loop
	if err := b.opts.Session.Start(l.pub, l.bdSeq); err != nil {
		b.lost(fmt.Errorf("births: %w", err), -1)
		return
	}
	l.pub.take()
	l.live, l.budget = true, 0
	b.stat.setState(StateOnline, b.opts.Upstream.Servers[l.server])
	b.log.Info("sparkplug session online", "bdSeq", l.bdSeq, "backlog", b.opts.Queue.Stats().Records)
}

// lost ends the connection: the session goes offline, everything not confirmed goes back to
// the queue, and a reconnect is scheduled after delay (negative: the backoff's next delay).
func (b *Bridge) lost(cause error, delay time.Duration) {
	l := &b.loop
	if l.client == nil {
		return
	}
	b.opts.Session.Stop()
	l.live = false
	b.requeue()
	server := b.opts.Upstream.Servers[l.server]
	quiesce := uint(0)
	if l.dead { // send DISCONNECT, so that the broker does not publish the will as well
		quiesce = 500
	}
	b.disconnect(l.client, quiesce)
	l.client, l.pub, l.dead = nil, nil, false
	if time.Since(l.connectedAt) >= b.opts.ReconnectMax {
		l.back.reset() // it was a good connection: start over at the shortest delay
	}
	if delay < 0 {
		delay = l.back.next()
	}
	b.stat.setError(cause)
	b.stat.setState(StateDisconnected, server)
	b.log.Warn("upstream connection ended", "server", server, "err", cause, "retry_in", delay.Round(time.Millisecond))
	l.retry.Reset(delay)
}

// requeue gives back what was published but not confirmed: replayed transactions are rolled
// back (they are still at the head of the queue) and the ring's live samples are appended.
func (b *Bridge) requeue() {
	l := &b.loop
	if len(l.inflight) > 0 {
		b.opts.Queue.Nack(l.inflight[0].tx)
	}
	l.inflight = nil
	for _, e := range l.ring {
		b.enqueue(e.records)
	}
	l.ring = nil
}

// disconnect closes a paho client without blocking the run loop.
func (b *Bridge) disconnect(c mqtt.Client, quiesce uint) {
	if c == nil {
		return
	}
	b.loop.bg.Add(1)
	go func() { defer b.loop.bg.Done(); c.Disconnect(quiesce) }()
}

// death publishes NDEATH for an intentional disconnect and waits (briefly) for its PUBACK.
func (b *Bridge) death() {
	l := &b.loop
	if err := b.opts.Session.Death(); err != nil {
		b.log.Warn("NDEATH not published", "err", err)
	}
	for _, t := range l.pub.take() {
		t.WaitTimeout(2 * time.Second)
	}
	l.live, l.dead = false, true
}

func (b *Bridge) onInbound(ev inboundEvent) {
	ncmd, dcmd := b.opts.Session.Topics()
	switch {
	case ev.topic == ncmd || strings.HasPrefix(ev.topic, strings.TrimSuffix(dcmd, "#")):
		b.onCommand(ev)
	case b.loop.host != nil && (ev.topic == sparkplug.StateTopic(b.opts.PrimaryHostID) ||
		ev.topic == sparkplug.LegacyStateTopic(b.opts.PrimaryHostID)):
		b.onState(ev)
	case !b.forwardDown(ev.topic, ev.payload):
		b.log.Debug("upstream message on no known topic", "topic", ev.topic)
	}
}

var errHostOffline = errors.New("primary host went offline")

func (b *Bridge) onState(ev inboundEvent) {
	l := &b.loop
	st, err := sparkplug.ParseState(ev.topic, ev.payload)
	if err != nil {
		b.log.Warn("ignoring STATE", "topic", ev.topic, "err", err)
		return
	}
	_, online := l.host.Observe(st)
	switch {
	case online && !l.live:
		b.goLive()
	case !online && l.live:
		b.log.Info("primary host offline: NDEATH, disconnect, wait for it", "host", st.HostID)
		b.death()
		b.lost(errHostOffline, b.opts.ReconnectMin)
	}
}
