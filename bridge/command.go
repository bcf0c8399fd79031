package bridge

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/wellgate/wellgate/internal/logx"
	"github.com/wellgate/wellgate/sparkplug"
)

// maxStateBytes is the largest STATE payload taken as a control event; a STATE message is
// never dropped for a full mailbox (a lost one could leave the bridge waiting for the host).
const maxStateBytes = 4 << 10

// inbound hands a message from upstream (paho's goroutine) to the run loop: STATE always,
// commands and messages for down rules only while the mailbox has room (else counted and
// dropped; the host resends what matters).
func (b *Bridge) inbound(c *conn, topic string, payload []byte, retained bool) {
	ev := inboundEvent{c: c, topic: topic, payload: payload, retained: retained}
	if b.isState(topic) && len(payload) <= maxStateBytes {
		b.mail.put(ev)
		return
	}
	if b.mail.offer(ev, len(topic)+len(payload)) {
		return
	}
	b.stat.update(func(s *Status) { s.InboundDropped++ })
	b.limit.Log(b.log, slog.LevelWarn, "inbound dropped", "bridge busy: upstream message dropped", "topic", logx.Value(topic))
}

func (b *Bridge) isState(topic string) bool {
	h := b.opts.PrimaryHostID
	return h != "" && (topic == sparkplug.StateTopic(h) || (b.opts.LegacyState && topic == sparkplug.LegacyStateTopic(h)))
}

func (b *Bridge) onInbound(ev inboundEvent) {
	l := &b.loop
	switch {
	case ev.c == nil || l.stopping:
		return
	case ev.c != l.conn && l.dialing && ev.c.gen == l.gen && len(l.early) < maxEarly:
		l.early = append(l.early, ev) // its subscriptions' retained messages can beat the dialedEvent
		return
	case ev.c != l.conn:
		return // from a connection that has ended
	}
	ncmd, dcmd := b.opts.Session.Topics()
	switch {
	case (ev.topic == ncmd || strings.HasPrefix(ev.topic, strings.TrimSuffix(dcmd, "#"))) && ev.retained:
		b.retainedCommand(ev)
	case ev.topic == ncmd || strings.HasPrefix(ev.topic, strings.TrimSuffix(dcmd, "#")):
		b.onCommand(ev)
	case b.loop.host != nil && b.isState(ev.topic):
		b.onState(ev)
	case !b.forwardDown(ev.topic, ev.payload):
		b.limit.Log(b.log, slog.LevelDebug, "unknown topic", "upstream message on no known topic", "topic", logx.Value(ev.topic))
	}
}

var errHostOffline = errors.New("primary host went offline")

func (b *Bridge) onState(ev inboundEvent) {
	l := &b.loop
	st, err := sparkplug.ParseState(ev.topic, ev.payload)
	if err != nil {
		b.limit.Log(b.log, slog.LevelWarn, "bad state", "ignoring STATE", "topic", logx.Value(ev.topic), "err", logx.Err(err))
		return
	}
	_, online := l.host.Observe(st)
	l.hostOnline = online
	switch {
	case online && !l.live:
		b.maybeGoLive()
	case !online && l.live:
		b.log.Info("primary host offline: NDEATH, disconnect, wait for it", "host", logx.Value(st.HostID))
		b.death()
		b.lost(errHostOffline, b.opts.ReconnectMin)
	}
}

// onCommand hands an NCMD/DCMD to the session, which performs a Rebirth on this connection,
// and passes the writes it returns to OnCommand. Refused commands are counted and logged
// rate-limited: a flood of garbage writes a line per logEvery, not per message.
func (b *Bridge) onCommand(ev inboundEvent) {
	l := &b.loop
	writes, err := b.opts.Session.HandleCommand(ev.topic, ev.payload)
	if _, merged := b.opts.Session.DeferredRebirth(); merged {
		l.rebirthDue = true // FlushRebirth publishes it on a tick once the hold-off has passed
	}
	b.stat.update(func(s *Status) {
		s.Commands++
		if err != nil {
			s.CommandErrors++
		}
	})
	if l.live && l.conn.err != nil { // a rebirth could not be published
		b.lost(l.conn.err, -1)
		return
	}
	l.conn.seal()
	if err != nil {
		b.limit.Log(b.log, slog.LevelWarn, "command refused", "command not fully applied",
			"topic", logx.Value(ev.topic), "err", logx.Err(err))
	}
	if len(writes) == 0 {
		return
	}
	if b.opts.OnCommand == nil {
		b.limit.Log(b.log, slog.LevelWarn, "no command handler", "command writes ignored: no handler configured",
			"topic", logx.Value(ev.topic), "writes", len(writes))
		return
	}
	b.opts.OnCommand(writes)
}

// retainedCommand ignores an NCMD or DCMD that came with the retain flag: Sparkplug commands
// are never retained, and one left on the broker is replayed at every subscription (every
// reconnect, every restart). It is counted and logged, rate-limited, and never written.
func (b *Bridge) retainedCommand(ev inboundEvent) {
	b.stat.update(func(s *Status) { s.Commands++; s.CommandsRetained++ })
	b.limit.Log(b.log, slog.LevelWarn, "retained command", "retained command ignored: Sparkplug commands are never retained; clear it on the broker",
		"topic", logx.Value(ev.topic), "bytes", len(ev.payload))
}

// flushRebirth publishes a rebirth the session merged, once its hold-off has passed.
func (b *Bridge) flushRebirth() {
	l := &b.loop
	if !l.live {
		return
	}
	did, err := b.opts.Session.FlushRebirth()
	if !did {
		return
	}
	l.rebirthDue = false
	if l.conn.err != nil {
		b.lost(l.conn.err, -1)
		return
	}
	l.conn.seal()
	if err != nil {
		b.limit.Log(b.log, slog.LevelWarn, "rebirth", "merged rebirth failed", "err", logx.Err(err))
	}
}

// onReconfigure hands the session its new device set; a live session rebirths on the
// connection (a failed publish ends the connection, as for any birth).
func (b *Bridge) onReconfigure(ev reconfigureEvent) {
	l := &b.loop
	err := b.opts.Session.SetDevices(ev.devices)
	b.stat.update(func(s *Status) { s.Reconfigures++ })
	if l.live && l.conn != nil {
		if l.conn.err != nil {
			b.lost(l.conn.err, -1)
		} else {
			l.conn.seal()
		}
	}
	if err != nil {
		b.log.Warn("new device set", "err", logx.Err(err))
	} else {
		b.log.Info("new device set", "devices", len(ev.devices), "rebirth", l.live)
	}
	ev.done <- err
}

var errNextServer = errors.New("host asked for the next server")

// ErrNextServerTooSoon is returned by NextServer within nextServerHoldoff of the last move.
var ErrNextServerTooSoon = errors.New("next server asked for again too soon")

// nextServerHoldoff is the shortest time between two moves to the next server: a storm of
// Next Server commands cycles the upstream once, not once per command.
const nextServerHoldoff = 10 * time.Second

// NextServer moves the upstream connection to the next configured server (NDEATH, DISCONNECT,
// connect to the next one at once). The gateway calls it for "Node Control/Next Server",
// whichever session the NCMD came in on. It returns at once: ErrNextServerTooSoon (counted)
// when the last move is less than nextServerHoldoff ago, else nil.
func (b *Bridge) NextServer() error {
	now := b.clk.Now().UnixNano()
	for {
		last := b.lastMove.Load()
		if last != 0 && time.Duration(now-last) < nextServerHoldoff {
			b.stat.update(func(s *Status) { s.NextServerRefused++ })
			return fmt.Errorf("%w: one move per %v", ErrNextServerTooSoon, nextServerHoldoff)
		}
		if b.lastMove.CompareAndSwap(last, now) {
			break
		}
	}
	b.mail.put(nextServerEvent{})
	return nil
}

func (b *Bridge) nextServer() {
	l := &b.loop
	if l.stopping {
		return
	}
	if l.live {
		b.death()
	}
	b.lost(errNextServer, 0)
	l.server = (l.server + 1) % len(b.opts.Servers)
	b.log.Info("moving to the next server", "server", b.opts.Servers[l.server])
}
