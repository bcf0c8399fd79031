// Package bridge is the gateway's upstream side: one MQTT 3.1.1 connection to the upstream
// (Ignition) broker, carrying the Sparkplug session, with store-and-forward so that no value is
// lost across WAN outages, broker restarts, primary-host outages and power loss.
//
// The Bridge is an output like the embedded broker's session: it receives Samples, Written
// (values read back after a command's write, reported even inside a deadband) and DeviceState.
// Every sample goes through the Sparkplug session; what it reports is published at once while
// the session is online and appended to a crash-safe queue (package bridge/queue) while it is
// not. After each (re)connect the bridge subscribes to the command topics (and the primary
// host's STATE), waits for the host where one is configured (and, once, for every device's
// first poll, bounded, so that the first births carry values), publishes the births and then
// replays the queue, oldest first and rate-limited, as historical DATA while live data keeps
// flowing. Node metrics are never queued: the next NBIRTH carries them. Commands are decoded
// by the session (which performs a Rebirth itself, at most one per hold-off); the writes they
// carry, node writes included, are handed to Options.OnCommand. Retained commands are never
// carried out.
//
// A value published is kept until it is confirmed delivered: by its PUBACK (QoS 1), or by
// proof that the broker read it (the PUBACK of a later QoS 1 message, or the answer to a
// probe sent after it: see proof.go). Values without proof when the connection ends are queued
// again, so the host may see those (and only those) twice, once live and once historical,
// but never miss one. On a clean shutdown the NDEATH's PUBACK proves everything before it.
//
// One goroutine, Run's loop, owns the session, the queue's read side and the connection state;
// everything else hands it typed events through a bounded mailbox (see mailbox.go). Each
// connection has a sender goroutine that calls paho (whose Publish may wait for the network),
// a waiter that follows token completions (and turns a failure into an event) and a prober,
// so that the loop never waits for the network (except, bounded, for the PUBACK of an
// intentional NDEATH).
//
// Rules forward local MQTT topics from the embedded broker upstream (through the same queue)
// and upstream topics down to the embedded broker.
package bridge

import (
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/wellgate/wellgate/bridge/queue"
	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/internal/clock"
	"github.com/wellgate/wellgate/internal/logx"
	"github.com/wellgate/wellgate/sparkplug"
)

// Session is what the bridge needs of the Sparkplug edge node (*sparkplug.Session). The bridge
// calls it from its run loop only.
type Session interface {
	Start(pub sparkplug.Publisher, bdSeq uint64) error
	Stop()
	Polled() bool
	AppendReported(dst, samples []drivers.Sample, written bool) ([]drivers.Sample, error)
	Record(samples []drivers.Sample) // from any goroutine
	SetDeviceState(device string, up bool) error
	PublishHistorical(samples []drivers.Sample) error
	HistoricalSkipped() uint64
	HistoricalCovered() uint64
	SetDevices(devices []drivers.DeviceInfo) error
	Death() error
	DeathTopic() string
	Topics() (ncmd, dcmd string)
	HandleCommand(topic string, payload []byte) ([]sparkplug.Write, error)
	FlushRebirth() (bool, error)
	DeferredRebirth() (time.Duration, bool)
}

var _ Session = (*sparkplug.Session)(nil)

// Queue is the store-and-forward buffer the bridge needs (*queue.Disk, *queue.Memory). Add
// must be safe for concurrent use: when the mailbox is full, Samples adds from the caller's
// goroutine.
type Queue interface {
	Add(records ...[]byte) error
	Begin(n int) (*queue.Tx, error)
	Ack(tx *queue.Tx) error
	Nack(tx *queue.Tx)
	Stats() queue.Stats
}

var _ Queue = (*queue.Disk)(nil)

// BdSeqSource hands out one bdSeq per MQTT CONNECT sent (*sparkplug.BdSeqStore): the bridge
// Peeks the value for an attempt's will and Commits it right before the CONNECT goes out.
type BdSeqSource interface {
	Peek() (uint64, error)
	Commit(v uint64) error
}

// LocalBroker is the embedded broker as the forwarding rules need it. Subscribe's fn may run in
// the publishing client's goroutine: the bridge only hands the message off.
type LocalBroker interface {
	Subscribe(filter string, fn func(topic string, payload []byte, qos byte, retain bool)) error
	Publish(topic string, payload []byte, retain bool, qos byte) error
}

// TLS configures the connection to ssl://, tls:// and mqtts:// servers. The files are read on
// every connection attempt, so that fixed files are picked up without a restart.
type TLS struct {
	CAFile             string // PEM CA bundle; empty: the system roots
	CertFile, KeyFile  string // client certificate, when the broker asks for one
	ServerName         string // expected in the server's certificate; default the server's host
	InsecureSkipVerify bool
}

// Options configures a Bridge. Servers, Session, Queue and BdSeq are required; zero durations
// and limits take the defaults given.
type Options struct {
	// Servers are the upstream brokers ("tcp://host:1883", "ssl://host:8883"), tried in order.
	Servers  []string
	ClientID string // default "wellgate-<group>-<edge node>"
	Username string
	Password string
	// Keepalive is the MQTT keepalive (whole seconds on the wire); default 30s.
	Keepalive time.Duration
	// ConnectTimeout bounds CONNECT, each SUBSCRIBE and each write; default 10s.
	ConnectTimeout time.Duration
	TLS            TLS
	// DetectionWindow is how long a value published at QoS 0 without proof of delivery is kept
	// after paho wrote it, to be queued again if the link turns out to have been dead. It is
	// never less than paho's worst-case detection time plus a margin (see detectionWindow):
	// keepalive + ping timeout + 3 × check + 2 s, 57 s at a 30 s keepalive; that is the
	// default. Proof normally comes much sooner (ProofInterval).
	DetectionWindow time.Duration
	// ProofInterval is the longest the bridge waits before it asks the broker for proof that
	// it has read the QoS 0 values written so far (one UNSUBSCRIBE round trip, see proof.go);
	// default 1s.
	ProofInterval time.Duration
	// FirstPollWait bounds how long the first births wait for every device's first report
	// (Session.Polled), from Run's start, so that they carry values rather than nulls;
	// default 5s, < 0 no wait.
	FirstPollWait time.Duration
	// ReplayRate is the most queued records replayed per second; default 2000, < 0 unlimited.
	// Records that go out as nothing (samples the births carried already, or of tags no longer
	// configured) do not count against it; at most maxReplayPerTick records are read a tick.
	ReplayRate int

	PrimaryHostID string // wait for this host's STATE before the births
	LegacyState   bool   // also follow the 2.2 STATE/<host> form

	Session Session
	Queue   Queue
	BdSeq   BdSeqSource
	Local   LocalBroker // needed when Rules is not empty
	Rules   []Rule

	// OnCommand receives the writes an NCMD or DCMD carries, in order, node writes (Device "",
	// such as "Node Control/Next Server" and "Node Control/Scan Rate") included; the session
	// has already performed a Rebirth. It runs on the bridge's loop and must return at once.
	// The values read back come back through Written. Nil: writes are logged and ignored.
	OnCommand func(writes []sparkplug.Write)

	Logger *slog.Logger
	Clock  clock.Clock // nil: the real clock
	// ReconnectMin and ReconnectMax bound the jittered exponential backoff between rounds of
	// connection attempts. Defaults 1s and 1m.
	ReconnectMin, ReconnectMax time.Duration
	// MailboxEntries and MailboxBytes bound the run loop's mailbox; defaults 10,000 and 16 MiB.
	// MailboxBytes also bounds each connection's publishes not yet handed to paho.
	MailboxEntries, MailboxBytes int
}

// Bridge connects the Sparkplug session to the upstream broker. Create it with New, feed it
// samples, written values and device states, call Run once, and Close it.
type Bridge struct {
	opts   Options
	clk    clock.Clock
	window time.Duration // the detection window in force
	log    *slog.Logger
	limit  *logx.Limiter // repeated events log once per logEvery, with a count
	mail   mailbox       // everything the run loop reacts to, in arrival order
	stat   statusBox
	life   lifecycle
	loop   loopState // owned by Run's goroutine

	lastMove atomic.Int64 // clock's UnixNano of the last accepted NextServer
}

// logEvery is how often one kind of repeated event may log.
const logEvery = 10 * time.Second

// New validates opts and returns a Bridge that is not connected yet.
func New(opts Options) (*Bridge, error) {
	switch {
	case len(opts.Servers) == 0:
		return nil, errors.New("bridge: no upstream servers")
	case opts.Session == nil || opts.Queue == nil || opts.BdSeq == nil:
		return nil, errors.New("bridge: session, queue and bdSeq source are required")
	case len(opts.Rules) > 0 && opts.Local == nil:
		return nil, errors.New("bridge: forwarding rules need the local broker")
	}
	for i := range opts.Rules {
		if err := opts.Rules[i].validate(); err != nil {
			return nil, fmt.Errorf("bridge: rule %d: %w", i+1, err)
		}
	}
	applyDefaults(&opts)
	b := &Bridge{opts: opts, clk: opts.Clock, log: opts.Logger.With(slog.String("part", "bridge"))}
	b.window = detectionWindow(opts.Keepalive, opts.DetectionWindow)
	b.limit = &logx.Limiter{Every: logEvery, Clock: b.clk}
	b.mail.init(opts.MailboxEntries, opts.MailboxBytes)
	b.life.init()
	b.stat.clk = b.clk
	b.stat.s.State = StateDisconnected
	return b, nil
}

func applyDefaults(o *Options) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = clock.Real
	}
	o.Keepalive = defaultDur(o.Keepalive, 30*time.Second)
	o.ConnectTimeout = defaultDur(o.ConnectTimeout, 10*time.Second)
	o.ProofInterval = defaultDur(o.ProofInterval, time.Second)
	if o.FirstPollWait == 0 {
		o.FirstPollWait = 5 * time.Second
	}
	if o.ReplayRate == 0 {
		o.ReplayRate = 2000
	}
	o.ReconnectMin = defaultDur(o.ReconnectMin, time.Second)
	o.ReconnectMax = max(defaultDur(o.ReconnectMax, time.Minute), o.ReconnectMin)
	if o.MailboxEntries <= 0 {
		o.MailboxEntries = 10_000
	}
	if o.MailboxBytes <= 0 {
		o.MailboxBytes = 16 << 20
	}
}

func defaultDur(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Samples hands a driver batch to the run loop and returns at once. When the mailbox is full
// the batch goes straight to the store-and-forward queue (Status.MailboxOverflow). The bridge
// takes the batch over: it gives it back (drivers.Release) once it is done with it.
func (b *Bridge) Samples(batch []drivers.Sample) { b.offerSamples(samplesEvent(batch), batch) }

// Written hands values read back after a command's write to the run loop: the session reports
// them even inside a deadband. Otherwise as Samples.
func (b *Bridge) Written(batch []drivers.Sample) { b.offerSamples(writtenEvent(batch), batch) }

// DeviceState reports that a device's communications went up or down (a DBIRTH or DDEATH
// while online). The error is the gateway's to log.
func (b *Bridge) DeviceState(device string, up bool, _ error) {
	b.mail.put(deviceEvent{device: device, up: up})
}

// Reconfigure gives the session a new device set (a configuration reload) on the run loop,
// which owns the session's publisher: online, the session publishes a full rebirth (NBIRTH
// with a fresh alias table and every DBIRTH) on the same connection; offline, it takes the
// set for its next births. The connection, the bdSeq and the queue are untouched; a backlog
// that holds samples of devices or tags that are gone replays the rest and skips those
// (Status.HistoricalSkipped). Samples handed over before Reconfigure are applied with the old
// set. The returned channel receives the result once the loop has applied it (errClosed if
// the bridge has stopped).
func (b *Bridge) Reconfigure(devices []drivers.DeviceInfo) <-chan error {
	done := make(chan error, 1)
	if !b.mail.put(reconfigureEvent{devices: devices, done: done}) {
		done <- errClosed
	}
	return done
}

func (b *Bridge) offerSamples(ev event, batch []drivers.Sample) {
	if len(batch) == 0 || b.mail.offer(ev, samplesSize(batch)) {
		return
	}
	b.overflow(batch)
}

// overflow puts samples the mailbox could not take straight into the store-and-forward queue,
// from the caller's goroutine: they are replayed later as historical values. They skip the
// session's report by exception (the session records them as its latest values, so that the
// next birth carries them) and may reach the queue ahead of older samples still in the
// mailbox: under overload, late rather than lost. Node metrics are recorded only: the next
// NBIRTH carries them.
func (b *Bridge) overflow(batch []drivers.Sample) {
	now := b.clk.Now()
	fixed := make([]drivers.Sample, len(batch))
	for i, s := range batch {
		if s.Time.IsZero() {
			s.Time = now
		}
		fixed[i] = s
	}
	drivers.Release(batch) // fixed is a copy: the batch was the bridge's to give back
	b.opts.Session.Record(fixed)
	recs := encodeSamples(deviceSamples(fixed))
	if len(recs) == 0 {
		return
	}
	n := uint64(len(recs))
	if err := b.opts.Queue.Add(recs...); err != nil {
		b.queueRefused(n, err)
		return
	}
	b.stat.update(func(s *Status) { s.MailboxOverflow += n; s.Queued += n })
	b.limit.Log(b.log, slog.LevelWarn, "mailbox overflow", "bridge busy: samples go straight to the store-and-forward queue",
		"samples", n, "mailbox_entries", b.opts.MailboxEntries, "mailbox_bytes", b.opts.MailboxBytes)
}

// queueRefused counts and logs (rate-limited) records the queue refused: they are lost.
func (b *Bridge) queueRefused(n uint64, err error) {
	b.stat.update(func(s *Status) { s.QueueErrors += n })
	b.stat.setError(err)
	b.limit.Log(b.log, slog.LevelError, "queue refused", "store-and-forward queue refused records; they are lost",
		"records", n, "err", logx.Err(err))
}

func samplesSize(batch []drivers.Sample) int {
	n := 0
	for _, s := range batch {
		n += sampleOverhead + len(s.Device) + len(s.Tag) + len(s.Value.Str())
	}
	return n
}

// sampleOverhead approximates a sample's bytes besides its strings.
const sampleOverhead = 64
