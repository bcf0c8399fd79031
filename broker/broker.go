// Package broker runs the embedded MQTT broker (mochi-mqtt) that local HMIs, historians and an
// Ignition MQTT Engine connecting in to the gateway use. The gateway publishes into it and
// subscribes to it in process, through mochi's inline client, never through a loopback socket.
//
// Who may connect, subscribe and publish is decided here (users with bcrypt passwords, topic
// ACLs, anonymous access only where the options say so), and nobody but the gateway may
// publish under its own Sparkplug edge node. Every denial is logged and counted; every
// accepted command under the edge node is logged and counted with who sent it.
//
// Listeners (TCP, TLS, WebSocket) survive accept errors, bound the open sockets and drop those
// that send no CONNECT in time; packets, retained messages and session queues are bounded.
//
// Persistent sessions (clean session = false) and their queued QoS 1/2 messages, and the
// retained messages, live on disk in pebble, in sync mode, so that they survive a restart of
// the gateway; a returning session gets its messages in the order they were published. A
// failing disk degrades the store to memory and never stops the broker (see store.go).
package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/wellgate/wellgate/internal/logx"
)

// Handler receives messages published into the broker that match a subscription. It runs in
// the subscription's own goroutine, never in the publisher's, so it may take its time.
type Handler func(topic string, payload []byte, qos byte, retain bool)

// Message is a message published into the broker, with who published it.
type Message struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
	Sender  Sender
}

// Sender is who published a message: a network client (its client id, user name — empty
// for an anonymous client — and remote address), or the gateway itself.
type Sender struct {
	ClientID string
	User     string
	Remote   string
	Gateway  bool // published in process by the gateway (or by the broker itself)
}

// Broker is the embedded MQTT broker.
type Broker struct {
	opts     Options
	srv      *mqtt.Server
	log      *slog.Logger
	limit    *logx.Limiter
	stats    *counters
	conns    *conns
	access   *access
	sessions *sessions
	store    *store // nil without a data dir

	tcp, tls, ws net.Addr
	lns          []listeners.Listener
	served       bool

	mu     sync.Mutex
	subs   []*subscription
	nextID int
	closed bool
}

// sysInterval is how often, in seconds, mochi republishes its $SYS topics.
const sysInterval = 10

// New creates a broker: it checks the options, loads TLS files, opens (or, on a failing disk,
// degrades) the session store and binds its listeners, so that a bad address or certificate
// is reported at start. Call Serve to accept clients and Close to stop.
func New(opts Options) (*Broker, error) {
	o := opts.withDefaults()
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	log := o.Logger.With("part", "broker")
	b := &Broker{opts: o, log: log, limit: logx.NewLimiter(time.Minute), stats: newCounters(),
		conns: newConns(o.MaxClients + DefaultMaxPending)}
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumClients = int64(o.MaxClients)
	caps.MaximumPacketSize = uint32(o.MaxPacketSize)
	caps.MaximumSessionExpiryInterval = uint32(o.SessionExpiry / time.Second)
	caps.MaximumInflight = uint16(o.MaxQueued)
	caps.MaximumClientWritesPending = 1024
	// mochi's default drops queued and retained messages after a day whatever the session
	// expiry; sessions and retained values live as long as their own bounds say.
	caps.MaximumMessageExpiryInterval = 0
	// $SYS every 10 s, as mosquitto's default sys_interval, not mochi's every second: each
	// round stops the world (runtime.ReadMemStats) and republishes 20 retained topics, the
	// largest part of an idle gateway's work.
	b.srv = mqtt.New(&mqtt.Options{InlineClient: true, Logger: mochiLogger(log), Capabilities: caps, SysTopicResendInterval: sysInterval})

	b.access = newAccess(o, b.srv, log, b.stats)
	if o.DataDir != "" {
		b.store = openStore(filepath.Join(o.DataDir, "broker"), o.storeFS, o.storeRetry, o.storeTimeout, log)
	}
	b.sessions = newSessions(o, b.srv, b.store, log, b.stats)
	var pending []kv
	if b.store != nil {
		b.store.snapshot = b.sessions.snapshot
		pending = b.sessions.load()
	}
	for _, h := range []mqtt.Hook{b.access, b.sessions} {
		if err := b.srv.AddHook(h, nil); err != nil {
			b.abort()
			return nil, fmt.Errorf("broker: %s hook: %w", h.ID(), err)
		}
	}
	if err := b.listen(); err != nil {
		b.abort()
		return nil, err
	}
	if b.store != nil {
		b.store.start(pending)
	}
	return b, nil
}

// listen binds the configured listeners and adds them to mochi.
func (b *Broker) listen() error {
	o := b.opts
	for _, l := range []struct {
		id, addr string
		kind     string
	}{{"tcp", o.Listen, "tcp"}, {"tls", o.TLSListen, "tls"}, {"ws", o.WSListen, "ws"}} {
		if l.addr == "" {
			continue
		}
		listen := func(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
		if o.listenFn != nil {
			listen = o.listenFn
		}
		ln, err := listen(l.addr)
		if err != nil {
			return fmt.Errorf("broker: listen on %s: %w", l.addr, err)
		}
		acc := newAcceptor(ln, l.id, b)
		var ml listeners.Listener
		switch l.kind {
		case "tcp":
			b.tcp, ml = ln.Addr(), &tcpListener{id: l.id, acc: acc, b: b}
		case "tls":
			cfg, err := loadTLS(o)
			if err != nil {
				_ = acc.Close()
				return err
			}
			b.tls, ml = ln.Addr(), &tcpListener{id: l.id, acc: acc, b: b, tls: cfg}
		case "ws":
			b.ws, ml = ln.Addr(), newWSListener(l.id, acc, b)
		}
		b.lns = append(b.lns, ml)
		if err := b.srv.AddListener(ml); err != nil {
			return fmt.Errorf("broker: add listener %s: %w", l.addr, err)
		}
	}
	return nil
}

// abort undoes a New that failed half-way.
func (b *Broker) abort() {
	for _, l := range b.lns {
		l.Close(func(string) {})
	}
	if b.store != nil {
		_ = b.store.close()
	}
}

// Addr is the address of the plain TCP listener (or, without one, of the TLS or else the
// WebSocket listener).
func (b *Broker) Addr() net.Addr {
	for _, a := range []net.Addr{b.tcp, b.tls, b.ws} {
		if a != nil {
			return a
		}
	}
	return nil
}

// TLSAddr is the TLS listener's address, nil without one.
func (b *Broker) TLSAddr() net.Addr { return b.tls }

// WSAddr is the WebSocket listener's address, nil without one.
func (b *Broker) WSAddr() net.Addr { return b.ws }

// Serve loads the stored sessions into mochi and starts accepting clients. It returns at
// once; mochi serves in its own goroutines.
func (b *Broker) Serve() error {
	b.mu.Lock()
	if b.closed || b.served {
		b.mu.Unlock()
		return errors.New("broker: serve: closed or serving already")
	}
	b.served = true
	b.mu.Unlock()
	if err := b.srv.Serve(); err != nil {
		return fmt.Errorf("broker: serve: %w", err)
	}
	args := []any{"addr", b.Addr().String(), "max_clients", b.opts.MaxClients, "anonymous", b.anonymousMode()}
	if b.tls != nil {
		args = append(args, "tls", b.tls.String())
	}
	if b.ws != nil {
		args = append(args, "ws", b.ws.String())
	}
	b.log.Info("mqtt broker listening", args...)
	return nil
}

func (b *Broker) anonymousMode() string {
	switch {
	case b.access.anonFull:
		return "full access (loopback only, no users)"
	case b.access.anonymous:
		return "allowed, with the anonymous read/write lists"
	}
	return "refused"
}

// Publish publishes a message into the broker as the gateway itself. It implements
// sparkplug.Publisher. A QoS 1/2 message queued for an away persistent session is on disk
// (when the store is healthy) by the time Publish returns.
func (b *Broker) Publish(topic string, qos byte, retain bool, payload []byte) error {
	if err := b.srv.Publish(topic, payload, retain, qos); err != nil {
		return fmt.Errorf("broker: publish %s: %w", topic, err)
	}
	return nil
}

// Subscribe calls fn for every message published into the broker that matches filter, by
// local clients or by the gateway itself. Messages are handed to fn in order, from a goroutine
// of the subscription's own: mochi calls inline handlers in the publisher's goroutine, and a
// slow handler there would stall that client.
func (b *Broker) Subscribe(filter string, fn Handler) error {
	return b.SubscribeMessages(filter, func(m Message) { fn(m.Topic, m.Payload, m.QoS, m.Retain) })
}

// SubscribeMessages is Subscribe with who sent each message, for command handlers that audit
// writes.
func (b *Broker) SubscribeMessages(filter string, fn func(Message)) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return errors.New("broker: closed")
	}
	b.nextID++
	id := b.nextID
	sub := newSubscription(filter, fn, b.log)
	b.subs = append(b.subs, sub)
	b.mu.Unlock()

	err := b.srv.Subscribe(filter, id, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		sub.push(Message{Topic: pk.TopicName, Payload: pk.Payload, QoS: pk.FixedHeader.Qos,
			Retain: pk.FixedHeader.Retain, Sender: b.sender(pk.Origin)})
	})
	if err != nil {
		sub.close()
		return fmt.Errorf("broker: subscribe %q: %w", filter, err)
	}
	return nil
}

// sender resolves a message's origin (a client id) while its publisher is still attached.
func (b *Broker) sender(origin string) Sender {
	if origin == "" || origin == mqtt.InlineClientId { // no network client may use that id
		return Sender{Gateway: true}
	}
	s := Sender{ClientID: origin}
	if cl, ok := b.srv.Clients.Get(origin); ok {
		s.User, s.Remote = string(cl.Properties.Username), cl.Net.Remote
	}
	return s
}

// Clients is the number of connected MQTT clients (the gateway's inline client excluded).
func (b *Broker) Clients() int {
	n := 0
	for _, cl := range b.srv.Clients.GetAll() {
		if !cl.Net.Inline && !cl.Closed() {
			n++
		}
	}
	return n
}

// Close stops the listeners, disconnects clients, closes the session store and stops the
// subscription goroutines. It is idempotent.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	subs, served := b.subs, b.served
	b.mu.Unlock()
	var err error
	if served {
		err = b.srv.Close()
	} else {
		b.abort()
	}
	b.conns.closeAll("")
	for _, l := range b.lns {
		if tl, ok := l.(*tcpListener); ok {
			tl.wg.Wait()
		}
	}
	if b.store != nil {
		err = errors.Join(err, b.store.close())
	}
	for _, s := range subs {
		s.close()
	}
	return err
}
