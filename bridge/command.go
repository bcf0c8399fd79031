package bridge

import (
	"errors"
	"log/slog"
	"strings"

	"github.com/wellgate/wellgate/internal/logx"
	"github.com/wellgate/wellgate/sparkplug"
)

// maxStateBytes is the largest STATE payload taken as a control event; a STATE message is
// never dropped for a full mailbox (a lost one could leave the bridge waiting for the host).
const maxStateBytes = 4 << 10

// inbound hands a message from upstream (paho's goroutine) to the run loop: STATE always,
// commands and messages for down rules only while the mailbox has room (else counted and
// dropped; the host resends what matters).
func (b *Bridge) inbound(c *conn, topic string, payload []byte) {
	ev := inboundEvent{c: c, topic: topic, payload: payload}
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
	if ev.c != b.loop.conn || ev.c == nil {
		return // from a connection that has ended
	}
	ncmd, dcmd := b.opts.Session.Topics()
	switch {
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
	switch {
	case online && !l.live:
		b.goLive()
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

var errNextServer = errors.New("host asked for the next server")

// NextServer moves the upstream connection to the next configured server (NDEATH, DISCONNECT,
// connect to the next one at once). The gateway calls it for "Node Control/Next Server",
// whichever session the NCMD came in on. It returns at once.
func (b *Bridge) NextServer() { b.mail.put(nextServerEvent{}) }

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
