// Package bridge is the gateway's upstream side: one MQTT 3.1.1 connection to the upstream
// (Ignition) broker, carrying the Sparkplug session, with store-and-forward so that no value is
// lost across WAN outages, broker restarts, primary-host outages and power loss.
//
// The Bridge is a drivers.Sink. Every sample goes through the Sparkplug session's report by
// exception; what it reports is published at once while the session is online and appended
// to a crash-safe queue (package bridge/queue) while it is not. After each (re)connect the
// bridge subscribes to the command topics (and the primary host's STATE), waits for the host
// where one is configured, publishes the births and then replays the queue, oldest first and
// rate-limited, as historical DATA while live data keeps flowing.
//
// Samples published live at QoS 0 are kept for a detection window (a dead link is noticed
// only by the keepalive) and queued again when the connection is lost; with QoS 1 they are
// kept until their PUBACK. The host may therefore see a value twice, once live and once as
// historical, but never miss one.
//
// Rules forward local MQTT topics from the embedded broker upstream (through the same queue)
// and upstream topics down to the embedded broker.
package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/wellgate/wellgate/bridge/queue"
	"github.com/wellgate/wellgate/config"
	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/sparkplug"
)

// Session is what the bridge needs of the Sparkplug edge node (*sparkplug.Session).
type Session interface {
	Start(pub sparkplug.Publisher, bdSeq uint64) error
	Stop()
	Update(samples []drivers.Sample) (reported []drivers.Sample, err error)
	SetDeviceState(device string, up bool) error
	PublishHistorical(samples []drivers.Sample) error
	Death() error
	DeathTopic() string
	Topics() (ncmd, dcmd string)
	HandleCommand(topic string, payload []byte) ([]sparkplug.Write, error)
}

var _ Session = (*sparkplug.Session)(nil)

// Queue is the store-and-forward buffer the bridge needs (*queue.Disk, *queue.Memory).
type Queue interface {
	Add(records ...[]byte) error
	Begin(n int) (*queue.Tx, error)
	Ack(tx *queue.Tx) error
	Nack(tx *queue.Tx)
	Stats() queue.Stats
}

var _ Queue = (*queue.Disk)(nil)

// BdSeqSource hands out one bdSeq per MQTT connect (*sparkplug.BdSeqStore).
type BdSeqSource interface {
	Next() (uint64, error)
}

// LocalBroker is the embedded broker as the forwarding rules need it. Subscribe's fn may run in
// the publishing client's goroutine: the bridge only hands the message off.
type LocalBroker interface {
	Subscribe(filter string, fn func(topic string, payload []byte, qos byte, retain bool)) error
	Publish(topic string, payload []byte, retain bool, qos byte) error
}

// Options configures a Bridge. Upstream, Session, Queue and BdSeq are required.
type Options struct {
	Upstream      config.Upstream // servers, credentials, TLS, keepalive, queue tuning
	PrimaryHostID string          // wait for this host's STATE before the births
	LegacyState   bool            // also follow the 2.2 STATE/<host> form
	Session       Session
	Queue         Queue
	BdSeq         BdSeqSource
	Local         LocalBroker // needed when Rules is not empty
	Rules         []Rule
	// OnWrite performs a write an NCMD/DCMD asked for (the gateway routes it to the driver).
	// It runs on a goroutine of its own, one write at a time; errors are logged.
	OnWrite func(ctx context.Context, w sparkplug.Write) error
	Logger  *slog.Logger
	// ReconnectMin and ReconnectMax bound the jittered exponential backoff between rounds of
	// connection attempts. Defaults 1s and 1m.
	ReconnectMin, ReconnectMax time.Duration
}

// Bridge connects the Sparkplug session to the upstream broker. Create it with New, feed it
// as a drivers.Sink and call Run once.
type Bridge struct {
	opts Options
	log  *slog.Logger
	mail mailbox[any] // everything the run loop reacts to, in arrival order
	stat statusBox
	loop loopState // owned by Run's goroutine
}

var _ drivers.Sink = (*Bridge)(nil)

// New validates opts and returns a Bridge that is not connected yet.
func New(opts Options) (*Bridge, error) {
	switch {
	case len(opts.Upstream.Servers) == 0:
		return nil, errors.New("bridge: no upstream servers")
	case opts.Session == nil || opts.Queue == nil || opts.BdSeq == nil:
		return nil, errors.New("bridge: session, queue and bdSeq source are required")
	case len(opts.Rules) > 0 && opts.Local == nil:
		return nil, errors.New("bridge: forwarding rules need the local broker")
	}
	for i, r := range opts.Rules {
		if err := r.validate(); err != nil {
			return nil, fmt.Errorf("bridge: rule %d: %w", i+1, err)
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	u := &opts.Upstream
	u.Keepalive = config.Duration(defaultDur(u.Keepalive.D(), 30*time.Second))
	u.ConnectTimeout = config.Duration(defaultDur(u.ConnectTimeout.D(), 10*time.Second))
	u.Queue.DetectionWindow = config.Duration(defaultDur(u.Queue.DetectionWindow.D(), u.Keepalive.D()*3/2))
	if u.Queue.ReplayRate == 0 {
		u.Queue.ReplayRate = 2000
	}
	opts.ReconnectMin = defaultDur(opts.ReconnectMin, time.Second)
	opts.ReconnectMax = max(defaultDur(opts.ReconnectMax, time.Minute), opts.ReconnectMin)
	b := &Bridge{opts: opts, log: opts.Logger.With(slog.String("part", "bridge"))}
	b.mail.init()
	b.stat.s.State = StateDisconnected
	return b, nil
}

func defaultDur(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// samplesEvent and deviceEvent carry what drivers deliver to the run loop.
type (
	samplesEvent []drivers.Sample
	deviceEvent  struct {
		device string
		up     bool
		err    error
	}
)

// Samples implements drivers.Sink: it hands the batch to the run loop and returns at once.
func (b *Bridge) Samples(batch []drivers.Sample) {
	if len(batch) > 0 {
		b.mail.put(samplesEvent(batch))
	}
}

// DeviceState implements drivers.Sink.
func (b *Bridge) DeviceState(device string, up bool, err error) {
	b.mail.put(deviceEvent{device: device, up: up, err: err})
}
