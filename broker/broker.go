// Package broker runs the embedded MQTT broker (mochi-mqtt) that local HMIs, historians and an
// Ignition MQTT Engine connecting in to the gateway use. The gateway publishes into it and
// subscribes to it in process, through mochi's inline client, never through a loopback socket.
//
// Persistent sessions (clean session = false) and their queued QoS 1/2 messages live on disk in
// pebble, in sync mode, so that they survive a restart of the gateway.
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
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/hooks/storage/pebble"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	pebbledb "github.com/cockroachdb/pebble"
)

// Options configure the broker.
type Options struct {
	// Listen is the TCP address to serve MQTT on, e.g. "127.0.0.1:1883" (":0" picks a port).
	Listen string
	// DataDir, when set, holds persistent sessions (DataDir/broker). Empty: in memory only.
	DataDir string
	// SessionExpiry bounds how long a disconnected persistent session is kept. MQTT 3.1.1 has no
	// expiry of its own and mochi would keep such sessions forever. Default 7 days.
	SessionExpiry time.Duration
	Logger        *slog.Logger
}

// Handler receives messages published into the broker that match a subscription. It runs in
// the subscription's own goroutine, never in the publisher's, so it may take its time.
type Handler func(topic string, payload []byte, qos byte, retain bool)

// Broker is the embedded MQTT broker.
type Broker struct {
	srv  *mqtt.Server
	ln   net.Listener
	log  *slog.Logger
	subs []*subscription

	mu     sync.Mutex
	nextID int
	closed bool
}

// New creates a broker and binds its listener, so that an address in use is reported at start.
// Call Serve to accept clients and Close to stop.
func New(opts Options) (*Broker, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.SessionExpiry <= 0 {
		opts.SessionExpiry = 7 * 24 * time.Hour
	}
	log := opts.Logger.With("part", "broker")
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: mochiLogger(log)})
	srv.Options.Capabilities.MaximumSessionExpiryInterval = uint32(opts.SessionExpiry / time.Second)
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		return nil, fmt.Errorf("broker: auth hook: %w", err)
	}
	if opts.DataDir != "" {
		err := srv.AddHook(new(pebble.Hook), &pebble.Options{
			Path:    filepath.Join(opts.DataDir, "broker"),
			Mode:    pebble.Sync,
			Options: &pebbledb.Options{Logger: pebbleLogger{log}},
		})
		if err != nil {
			return nil, fmt.Errorf("broker: open session store in %s: %w", opts.DataDir, err)
		}
	}
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		_ = srv.Close()
		return nil, fmt.Errorf("broker: listen on %s: %w", opts.Listen, err)
	}
	if err := srv.AddListener(listeners.NewNet("tcp", ln)); err != nil {
		_ = ln.Close()
		_ = srv.Close()
		return nil, fmt.Errorf("broker: add listener: %w", err)
	}
	return &Broker{srv: srv, ln: ln, log: log}, nil
}

// mochiLogger quietens mochi's own info lines (one per client connect) to debug.
func mochiLogger(log *slog.Logger) *slog.Logger {
	return slog.New(levelShift{log.Handler()})
}

// Addr is the address the broker listens on.
func (b *Broker) Addr() net.Addr { return b.ln.Addr() }

// Serve starts accepting clients. It returns at once; mochi serves in its own goroutines.
func (b *Broker) Serve() error {
	if err := b.srv.Serve(); err != nil {
		return fmt.Errorf("broker: serve: %w", err)
	}
	b.log.Info("mqtt broker listening", "addr", b.ln.Addr().String())
	return nil
}

// Publish publishes a message into the broker as the gateway itself. It implements
// sparkplug.Publisher.
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
		sub.push(message{topic: pk.TopicName, payload: pk.Payload, qos: pk.FixedHeader.Qos, retain: pk.FixedHeader.Retain})
	})
	if err != nil {
		sub.close()
		return fmt.Errorf("broker: subscribe %q: %w", filter, err)
	}
	return nil
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

// Close stops the listener, disconnects clients, flushes the session store and stops the
// subscription goroutines. It is idempotent.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	subs := b.subs
	b.mu.Unlock()
	err := b.srv.Close()
	for _, s := range subs {
		s.close()
	}
	return err
}

// pebbleLogger sends pebble's chatter (WAL replays, compactions) to debug.
type pebbleLogger struct{ log *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.log.Debug("session store: " + fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.log.Error("session store: " + fmt.Sprintf(format, args...))
	panic(fmt.Sprintf(format, args...)) // pebble's contract: Fatalf does not return
}
