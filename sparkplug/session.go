package sparkplug

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/wellgate/wellgate/drivers"
)

// Publisher sends one MQTT message. Implementations may keep payload (the session never
// reuses a slice it passed). Publish is called with the session's lock held, so that the order
// of seq numbers is the order on the wire: it must not call back into the Session.
type Publisher interface {
	Publish(topic string, qos byte, retain bool, payload []byte) error
}

// Options configures a Session.
type Options struct {
	GroupID, EdgeNodeID string
	// Aliases: every tag metric gets an alias, unique across the node and its devices, sent with
	// the name in births; DATA then carries the alias only.
	Aliases bool
	// DataQoS is the QoS of births, DATA and DDEATH: 0 (the spec, default) or 1.
	DataQoS byte
	// Devices are the devices and their tags. The session keeps the slices it is given (each
	// device's Tags is its metric table, not a copy), so the caller must not change them, nor
	// anything they hold, after handing them over; a new set goes through SetDevices.
	Devices []drivers.DeviceInfo
	// NodeMetrics are the gateway's own metrics; samples with Device == "" are node metrics
	// (NBIRTH/NDATA). The names bdSeq and "Node Control/Rebirth" are reserved: the session
	// adds them. Other "Node Control/…" metrics (Next Server, Scan Rate) are the gateway's: an
	// NCMD that writes one comes back from HandleCommand as a Write with Device "". Kept, not
	// copied, as Devices are: the caller must not change the slice after handing it over.
	NodeMetrics []drivers.TagInfo
	// RebirthHoldoff is the shortest time between rebirths asked for by NCMD: a request that
	// comes sooner after the last one served is merged with every other one in between into
	// one rebirth when the hold-off has passed (see HandleCommand, FlushRebirth). Default 1s;
	// negative: none.
	RebirthHoldoff time.Duration
	// MaxCommandMetrics bounds the metrics of one NCMD or DCMD: a command with more is refused
	// as a whole. Default 1000.
	MaxCommandMetrics int
	// Latency, when set, observes each metric published in live DATA (not births, not
	// historical replay): the seconds from its sample's time (the poll) to its publication.
	// The gateway's wellgate_publish_latency_seconds histogram is one. Called with the
	// session's lock held: it must be quick and must not call back into the Session.
	Latency Observer
	Logger  *slog.Logger
	Now     func() time.Time // nil → time.Now
}

// Observer takes one observation, such as a Prometheus histogram's Observe.
type Observer interface {
	Observe(float64)
}

// Defaults of Options.
const (
	DefaultRebirthHoldoff    = time.Second
	DefaultMaxCommandMetrics = 1000
)

// Names of the metrics the session adds to NBIRTH.
const (
	MetricBdSeq   = "bdSeq"
	MetricRebirth = "Node Control/Rebirth"
)

// Property names in births and DATA. Ignition's MQTT Engine maps metric properties whose names
// are Ignition tag property names onto the tag: Quality (Int32 quality code), engUnit
// (engineering units), documentation (the tag's description) and readOnly.
const (
	PropQuality       = "Quality"
	PropEngUnit       = "engUnit"
	PropDocumentation = "documentation"
	PropReadOnly      = "readOnly"
)

// ErrOffline is returned by methods that publish when the session is not online.
var ErrOffline = errors.New("sparkplug session offline")

// ErrUnknownDevice is wrapped when a device name is not in the session's configuration.
var ErrUnknownDevice = errors.New("unknown device")

// Session is the Sparkplug edge node for one MQTT connection target. It keeps the latest value
// of every metric (births carry them), decides what to report (report by exception), numbers
// messages (one seq for NBIRTH, DBIRTH, NDATA, DDATA and DDEATH) and publishes while online.
//
// Lifecycle: NewSession once; then per MQTT connection Start (after subscribing to Topics and,
// with a primary host, after its STATE online) … Death (intentional disconnect) or Stop (lost
// connection). Update and SetDeviceState are called at any time; offline they only record.
// All methods are safe for concurrent use.
type Session struct {
	mu     sync.Mutex
	counts messageCounts // published, by type
	opts   Options
	log    *slog.Logger
	now    func() time.Time

	epoch time.Time // session clock origin: metricState.repAt counts from it

	node     *deviceState
	devices  []*deviceState
	byDevice map[string]*deviceState
	dirty    []*deviceState  // devices with pending DATA, during one call
	warned   map[string]bool // unknown device/tag pairs already logged

	pub    Publisher
	online bool
	bdSeq  uint64
	seq    uint64 // seq of the next message

	unpolled    int       // devices that have not reported yet (Polled)
	lastRebirth time.Time // session clock, of the last rebirth done on request
	rebirth     rebirthState
	merged      uint64 // rebirth requests merged into a later rebirth
	histSkipped uint64 // historical samples of unknown devices or tags skipped
	histCovered uint64 // historical samples skipped because the last birth carried them

	scratch  Payload       // reused metric slice for DATA
	props    []PropertySet // reused Quality property sets for DATA
	bufSize  int           // size of the last DATA payload, to size the next buffer
	topicN   string        // NDATA topic
	deathTop string
}

// NewSession validates opts and builds an offline session. Every metric starts null with Bad
// quality until a sample arrives; every device starts up (a driver reports it down with
// SetDeviceState), so that a device is born as soon as the node is.
func NewSession(opts Options) (*Session, error) {
	if err := validateOptions(&opts); err != nil {
		return nil, err
	}
	s := &Session{
		opts: opts, log: opts.Logger, now: opts.Now, warned: make(map[string]bool),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.topicN = NodeTopic(opts.GroupID, NDATA, opts.EdgeNodeID)
	s.deathTop = NodeTopic(opts.GroupID, NDEATH, opts.EdgeNodeID)
	s.epoch = s.now()
	s.node = s.newDevice("", opts.NodeMetrics, 0, -1)
	s.setDevices(opts.Devices, nil)
	return s, nil
}

// setDevices builds the state of devices after the node's, numbering aliases on from the
// node metrics', and carries over from old (by name) each device's up/down state and the
// latest values of the tags that stay. Called with mu held.
func (s *Session) setDevices(devices []drivers.DeviceInfo, old map[string]*deviceState) {
	alias := uint64(len(s.node.tags))
	s.devices = make([]*deviceState, 0, len(devices))
	s.byDevice = make(map[string]*deviceState, len(devices))
	s.unpolled = 0
	for _, d := range devices {
		ds := s.newDevice(d.Name, d.Tags, alias, len(s.devices))
		alias += uint64(len(d.Tags))
		if od := old[d.Name]; od != nil {
			ds.up, ds.reported = od.up, od.reported
			carryValues(od, ds)
		}
		if !ds.reported {
			s.unpolled++
		}
		s.devices = append(s.devices, ds)
		s.byDevice[d.Name] = ds
	}
}

// newDevice builds a device's state with its topics.
func (s *Session) newDevice(name string, tags []drivers.TagInfo, alias0 uint64, pos int) *deviceState {
	d := makeDevice(name, tags, alias0, pos)
	if name == "" {
		d.dataTop = s.topicN
		d.birthTop = NodeTopic(s.opts.GroupID, NBIRTH, s.opts.EdgeNodeID)
	} else {
		d.dataTop = DeviceTopic(s.opts.GroupID, DDATA, s.opts.EdgeNodeID, name)
		d.birthTop = DeviceTopic(s.opts.GroupID, DBIRTH, s.opts.EdgeNodeID, name)
	}
	return d
}

// alias is the alias of d's metric i, 0 when aliases are off.
func (s *Session) alias(d *deviceState, i int) uint64 {
	if !s.opts.Aliases {
		return 0
	}
	return d.alias0 + uint64(i) + 1
}

// clock is now on the session clock: nanoseconds since the session was made (monotonic
// when now is).
func (s *Session) clock(now time.Time) int64 { return int64(now.Sub(s.epoch)) }

func validateOptions(o *Options) error {
	if err := ValidID(o.GroupID); err != nil {
		return fmt.Errorf("group id: %w", err)
	}
	if err := ValidID(o.EdgeNodeID); err != nil {
		return fmt.Errorf("edge node id: %w", err)
	}
	if o.DataQoS > 1 {
		return fmt.Errorf("data qos %d: want 0 or 1", o.DataQoS)
	}
	if o.RebirthHoldoff == 0 {
		o.RebirthHoldoff = DefaultRebirthHoldoff
	}
	if o.MaxCommandMetrics <= 0 {
		o.MaxCommandMetrics = DefaultMaxCommandMetrics
	}
	for _, t := range o.NodeMetrics {
		if t.Name == MetricBdSeq || t.Name == MetricRebirth {
			return fmt.Errorf("node metric %q: name reserved for the session", t.Name)
		}
	}
	if err := validateTags("node metrics", o.NodeMetrics); err != nil {
		return err
	}
	seen := make(map[string]bool, len(o.Devices))
	for _, d := range o.Devices {
		if err := ValidID(d.Name); err != nil {
			return fmt.Errorf("device: %w", err)
		}
		if seen[d.Name] {
			return fmt.Errorf("device %q: duplicate device name", d.Name)
		}
		seen[d.Name] = true
		if err := validateTags("device "+d.Name, d.Tags); err != nil {
			return err
		}
	}
	return nil
}

func validateTags(where string, tags []drivers.TagInfo) error {
	seen := make(map[string]bool, len(tags))
	for _, t := range tags {
		switch {
		case t.Name == "" || !utf8.ValidString(t.Name):
			return fmt.Errorf("%s: tag %q: name must be non-empty UTF-8", where, t.Name)
		case seen[t.Name]:
			return fmt.Errorf("%s: tag %q: duplicate metric name", where, t.Name)
		case !supportedType(t.Type):
			return fmt.Errorf("%s: tag %q: unsupported type %s", where, t.Name, t.Type)
		case t.Deadband < 0 || t.DeadbandPercent < 0 || t.MaxInterval < 0:
			return fmt.Errorf("%s: tag %q: negative deadband or max interval", where, t.Name)
		}
		seen[t.Name] = true
	}
	return nil
}

func supportedType(t drivers.Type) bool {
	return t.IsSigned() || t.IsUnsigned() || t.IsFloat() || t == drivers.Boolean ||
		t == drivers.String || t == drivers.Text || t == drivers.Bytes
}

// Polled reports whether every device has reported since the session was made: a sample or a
// state, up or down. Births wait for it (bounded) so that they carry values, not nulls.
func (s *Session) Polled() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unpolled == 0
}

// markReported notes a device's first report. Called with mu held.
func (s *Session) markReported(d *deviceState) {
	if !d.reported {
		d.reported = true
		s.unpolled--
	}
}

// Online reports whether the session is between Start and Stop/Death.
func (s *Session) Online() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.online
}

// DeathTopic returns the NDEATH topic (the MQTT will's topic).
func (s *Session) DeathTopic() string { return s.deathTop }

// Topics returns the command topics to subscribe to (QoS 1) before Start.
func (s *Session) Topics() (ncmd, dcmd string) {
	return NodeTopic(s.opts.GroupID, NCMD, s.opts.EdgeNodeID),
		NodeTopic(s.opts.GroupID, DCMD, s.opts.EdgeNodeID) + "/#"
}

// Start makes the session online on pub with the connection's bdSeq (the one in its will) and
// publishes NBIRTH (seq 0) and a DBIRTH for every device: one that is up with its current
// values, one that is down with every metric null and Bad and, right after, its DDEATH, so
// that a host shows every configured device from the first births, dead while it is down.
// If a birth fails to publish the session stays offline and the error is returned.
func (s *Session) Start(pub Publisher, bdSeq uint64) error {
	if pub == nil {
		return errors.New("start: nil publisher")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pub, s.bdSeq, s.online = pub, bdSeq, true
	s.rebirth = rebirthState{}
	if err := s.birthAll(); err != nil {
		s.pub, s.online = nil, false
		return fmt.Errorf("start: %w", err)
	}
	return nil
}

// Stop makes the session offline (connection lost): nothing is published until the next Start.
func (s *Session) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pub, s.online = nil, false
	s.rebirth = rebirthState{}
}

// Rebirth publishes NBIRTH (seq 0, the same bdSeq) and every DBIRTH again.
func (s *Session) Rebirth() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rebirthLocked()
}

func (s *Session) rebirthLocked() error {
	if !s.online {
		return fmt.Errorf("rebirth: %w", ErrOffline)
	}
	if err := s.birthAll(); err != nil {
		return fmt.Errorf("rebirth: %w", err)
	}
	return nil
}

// Death publishes NDEATH (the bdSeq metric, no seq) at QoS 1, like the will, for an
// intentional disconnect, and makes the session offline. Call it before DISCONNECT.
func (s *Session) Death() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pub == nil {
		return fmt.Errorf("death: %w", ErrOffline)
	}
	err := s.pub.Publish(s.deathTop, 1, false, willPayload(s.bdSeq, s.now()))
	if err == nil {
		s.counts.add(s.deathTop)
	}
	s.pub, s.online = nil, false
	s.rebirth = rebirthState{}
	if err != nil {
		return fmt.Errorf("death: %w", err)
	}
	return nil
}

// WillPayload returns the NDEATH payload for the MQTT will: a timestamp and exactly one metric,
// bdSeq (Int64, long_value). No seq.
func WillPayload(bdSeq uint64) []byte { return willPayload(bdSeq, time.Now()) }

func willPayload(bdSeq uint64, now time.Time) []byte {
	ms := uint64(now.UnixMilli())
	p := Payload{Timestamp: ms, HasTimestamp: true, Metrics: []Metric{bdSeqMetric(bdSeq, ms)}}
	return p.Marshal()
}

func bdSeqMetric(bdSeq, ms uint64) Metric {
	return Metric{Name: MetricBdSeq, Timestamp: ms, HasTimestamp: true, Datatype: TypeInt64,
		Value: WireValue{Kind: KindLong, Bits: bdSeq}}
}

// publish sends one seq-numbered message (births, DATA, DDEATH) at DataQoS, never retained.
// It returns the encoded size.
func (s *Session) publish(topic string, p *Payload, buf []byte) (int, error) {
	p.Seq, p.HasSeq = s.seq, true
	s.seq = (s.seq + 1) % 256
	b := p.AppendMarshal(buf)
	if err := s.pub.Publish(topic, s.opts.DataQoS, false, b); err != nil {
		return len(b), fmt.Errorf("publish %s: %w", topic, err)
	}
	s.counts.add(topic)
	return len(b), nil
}

// SetDeviceState records that a device's communications went up or down. Online, a change
// publishes DDEATH (up → down) or DBIRTH with the current values (down → up). A device that
// is down when the node is born is born dead: see Start.
func (s *Session) SetDeviceState(device string, up bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.byDevice[device]
	if !ok {
		return fmt.Errorf("device state %q: %w", device, ErrUnknownDevice)
	}
	s.markReported(d)
	if d.up == up {
		return nil
	}
	d.up = up
	d.pend = d.pend[:0]
	if !s.online {
		return nil
	}
	if up {
		return s.deviceBirth(d, s.now())
	}
	return s.deviceDeath(d)
}

// deviceDeath publishes d's DDEATH. Called with mu held.
func (s *Session) deviceDeath(d *deviceState) error {
	p := Payload{Timestamp: uint64(s.now().UnixMilli()), HasTimestamp: true}
	_, err := s.publish(DeviceTopic(s.opts.GroupID, DDEATH, s.opts.EdgeNodeID, d.name), &p, nil)
	return err
}
