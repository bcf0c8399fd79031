package web

import (
	"time"
)

// This file is the data contract between the gateway and the page: the gateway fills a
// Snapshot; the page, the JSON API, the event stream and /metrics only read it. A zero
// time.Time means "never" and is shown (and encoded in JSON) as null, never as year 1.

// Source gives the page its data. Snapshot is called for every API request, every /metrics
// scrape and once per update interval while a page is open; it must be safe for concurrent
// use and must not block on I/O. The Snapshot it returns is the caller's: it must share no
// memory the gateway goes on writing (copy the maps and slices), because the page reads it
// from other goroutines after Snapshot has returned.
type Source interface {
	Snapshot() Snapshot
}

// Snapshot is what the page shows, taken at one instant.
type Snapshot struct {
	Group    string    // Sparkplug group id
	EdgeNode string    // Sparkplug edge node id
	Version  string    // wellgate version
	Started  time.Time // when the gateway started; the page shows the uptime from it

	Broker string      // the embedded MQTT broker's listen address; "" when it is disabled
	Local  LocalBroker // the embedded broker and the Sparkplug session on it (when Broker != "")

	Upstream Upstream
	Devices  []Device

	// Health lists the parts of the gateway that have failed, one line each, naming the part
	// and why ("upstream bridge: stopped: …", "store-and-forward queue: disk full"). Empty
	// means healthy; /healthz answers 503 with these lines otherwise. Devices that do not
	// answer are plant problems, shown on the page, not health failures.
	Health []string
}

// LocalBroker is the embedded MQTT broker and the gateway's Sparkplug session on it.
type LocalBroker struct {
	Clients int    // MQTT clients connected, the gateway's own in-process client excluded
	BdSeq   uint64 // bdSeq of the local session's current NBIRTH
	// Messages counts the Sparkplug messages the local session published, by message type
	// ("NBIRTH", "NDATA", "DBIRTH", "DDATA", "DDEATH", "NDEATH").
	Messages map[string]uint64

	// The broker's own counters.
	Subscriptions  int               // subscriptions of network clients, connected or away
	AwaySessions   int               // persistent sessions whose client is away
	QueuedMessages int               // messages waiting for away sessions, all together
	Queued         []QueuedSession   // away sessions with messages waiting, most first
	Retained       int               // retained messages
	MessagesIn     int64             // PUBLISH packets received (clients and the gateway)
	MessagesOut    int64             // PUBLISH packets sent to clients
	Denials        map[string]uint64 // refused connections, subscriptions and publishes, by reason
	Commands       map[string]uint64 // accepted NCMD/DCMD by user ("" anonymous)
}

// QueuedSession is one away persistent session with messages waiting for it.
type QueuedSession struct {
	ClientID string
	Messages int
}

// Upstream states (Upstream.State), in the order a connection goes through them.
const (
	UpstreamDisconnected = "disconnected" // waiting to retry
	UpstreamConnecting   = "connecting"   // CONNECT sent
	UpstreamWaitingHost  = "waiting-host" // connected, the primary host is not online yet
	UpstreamOnline       = "online"       // births published: data flows
)

// Upstream is the upstream MQTT connection and its store-and-forward queue.
type Upstream struct {
	Enabled   bool      // an upstream broker is configured
	Connected bool      // an MQTT connection is up (waiting-host or online)
	State     string    // one of the Upstream* states
	Server    string    // the server connected to or being tried ("tls://scada:8883")
	Since     time.Time // when State last changed
	BdSeq     uint64    // bdSeq of the current or last upstream connection
	Connects  uint64    // successful CONNECTs since start
	Attempts  uint64    // connection attempts since start

	// LastError is why the last connection attempt failed or the last connection ended,
	// in words a technician can act on ("not authorized: bad user name or password",
	// "tls: certificate signed by unknown authority", "primary host SCADA went offline").
	LastError   string
	LastErrorAt time.Time // when; zero: no failure since start

	PrimaryHost      string    // the primary host id waited for; "" when none is configured
	PrimaryHostState string    // "online", "offline" or "unknown" (no STATE seen yet)
	PrimaryHostSince time.Time // when PrimaryHostState last changed

	Queued      int           // records (samples, forwarded messages) waiting in store-and-forward
	QueueBytes  int64         // bytes of the queued records on disk
	QueueOldest time.Duration // age of the oldest queued record; ignored (null) when Queued is 0
	Dropped     uint64        // records the queue dropped or refused since start
	// DroppedByReason splits Dropped by reason ("bytes", "age", "corrupt", "refused").
	DroppedByReason map[string]uint64
	// Messages counts the Sparkplug messages published upstream, by message type.
	Messages map[string]uint64
}

// Device states (Device.State): four honest values for a device that is polled, and
// "disabled" for one that is configured but not polled.
const (
	StateConnecting    = "connecting"    // has not answered since start: no data yet
	StateCommunicating = "communicating" // answering; the last poll cycle had no failed request
	StateDegraded      = "degraded"      // answering, but some requests of the last cycle failed
	StateDown          = "down"          // not answering (timeouts, connection refused, no port)
	StateDisabled      = "disabled"      // disabled in the configuration: not polled
)

// Device is one device, its communication state and its tags.
type Device struct {
	Name   string
	Driver string // "modbus-tcp", "modbus-rtu", "opcua"
	// Endpoint says where the device is, as configured: "10.0.0.5:502 unit 1",
	// "/dev/ttyUSB0 9600 8N1 unit 3", "opc.tcp://plc:4840 (None)".
	Endpoint string

	// State is one of the State* constants. Left "", the page derives it from Up and
	// LastGood (down when !Up, connecting when LastGood is zero, communicating otherwise).
	State      string
	StateSince time.Time // when State last changed; zero: unknown
	Up         bool      // answering (communicating or degraded); only read when State is ""

	LastGood time.Time // end of the last successful poll; zero: never (JSON null)
	// ResponseTime is the response time of the last successful request. It is meaningless
	// while LastGood is zero: a device that never answered has no response time (JSON null,
	// no metric), not 0.
	ResponseTime time.Duration
	// Latency is the distribution of response times of successful requests, for the
	// response-time histogram of /metrics. Its zero value means "not kept": no histogram.
	Latency Histogram

	Requests uint64 // requests sent since start
	Errors   uint64 // failed requests since start
	// ErrorsByKind splits Errors by kind: "timeout", "exception", "protocol", "crc",
	// "connection", "garbage".
	ErrorsByKind map[string]uint64
	// LastError is the last failure, naming the tag or register range and the function:
	// `illegal data address reading hr:49000 (1 register) for tag "Bogus/Out Of Range"`,
	// `open /dev/ttyUSB3: no such file or directory`.
	LastError   string
	LastErrorAt time.Time // when; zero: no error since start

	Tags []Tag
}

// Tag is one tag's latest state.
type Tag struct {
	Device string // the device's name
	Name   string // the tag's name; '/' separates folders
	Type   string // Sparkplug data type: "Float", "Int16", "Boolean", "String", …

	Value   any    // the value as JSON (float64, int64, uint64, bool, string, …); nil when none
	Display string // Value formatted for people, without units ("851.25", "true"); "" when none
	Units   string // engineering units ("psi"); the page shows Display followed by Units
	// Quality is "good", "bad", "stale" (not read since start) or another driver quality.
	// Anything but "good" is bad data.
	Quality string
	Time    time.Time // source timestamp of Value; zero: never read

	// LastGoodDisplay is the last good value, formatted like Display; the page shows it,
	// marked bad, while Quality is not good. "" when the tag has never been good.
	LastGoodDisplay string
	LastGoodTime    time.Time // source timestamp of the last good value; zero: never good

	Writable bool   // accepts writes (DCMD)
	Address  string // where the value comes from: "hr:40001 (2 registers, float32 abcd)", "ns=2;s=Tank.Level"
}

// Good reports whether the tag's value is good.
func (t Tag) Good() bool { return t.Quality == QualityGood }

// Text is the value with its units, as the page shows it; "" when there is no value.
func (t Tag) Text() string { return withUnits(t.Display, t.Units) }

// LastGoodText is the last good value with its units; "" when the tag has never been good.
func (t Tag) LastGoodText() string { return withUnits(t.LastGoodDisplay, t.Units) }

func withUnits(s, units string) string {
	if s == "" || units == "" {
		return s
	}
	return s + " " + units
}

// QualityGood is the quality of a good value.
const QualityGood = "good"

// EffectiveState is d.State, or the state derived from Up and LastGood when State is "".
func (d Device) EffectiveState() string {
	switch {
	case d.State != "":
		return d.State
	case !d.Up:
		return StateDown
	case d.LastGood.IsZero():
		return StateConnecting
	}
	return StateCommunicating
}

// Answering reports whether the device answers: communicating or degraded.
func (d Device) Answering() bool {
	s := d.EffectiveState()
	return s == StateCommunicating || s == StateDegraded
}

// BadTag reports whether t is a bad tag for the summary, the "bad only" filter and
// /api/tags?quality=bad: a quality other than good, on a device that is not disabled (a
// device switched off on purpose is listed as disabled, not counted as a fault).
func BadTag(d *Device, t Tag) bool {
	return !t.Good() && d.EffectiveState() != StateDisabled
}

// Histogram is a response-time distribution over LatencyBuckets, kept by the driver.
type Histogram struct {
	Counts []uint64      // non-cumulative counts per bucket of LatencyBuckets, then one for +Inf
	Sum    time.Duration // sum of all observations
}

// LatencyBuckets are the upper bounds of the response-time histogram's buckets.
var LatencyBuckets = []time.Duration{
	5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second,
}

// Observe adds one response time. It is not safe for concurrent use.
func (h *Histogram) Observe(d time.Duration) {
	if h.Counts == nil {
		h.Counts = make([]uint64, len(LatencyBuckets)+1)
	}
	i := 0
	for i < len(LatencyBuckets) && d > LatencyBuckets[i] {
		i++
	}
	h.Counts[i]++
	h.Sum += d
}

// Clone is a copy of h that shares nothing with it, for a Snapshot.
func (h Histogram) Clone() Histogram {
	if h.Counts == nil {
		return h
	}
	return Histogram{Counts: append([]uint64(nil), h.Counts...), Sum: h.Sum}
}

// Summary counts what the page's summary line says.
type Summary struct {
	Devices int            `json:"devices"`  // devices configured
	ByState map[string]int `json:"by_state"` // devices per state
	Tags    int            `json:"tags"`     // tags configured
	BadTags int            `json:"bad_tags"` // tags that are bad (see BadTag)
}

// Summarize counts devices by state and bad tags.
func (s *Snapshot) Summarize() Summary {
	sum := Summary{Devices: len(s.Devices), ByState: map[string]int{}}
	for i := range s.Devices {
		d := &s.Devices[i]
		sum.ByState[d.EffectiveState()]++
		sum.Tags += len(d.Tags)
		for _, t := range d.Tags {
			if BadTag(d, t) {
				sum.BadTags++
			}
		}
	}
	return sum
}
