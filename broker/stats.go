package broker

import (
	"maps"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Stats is the broker's state for the status page, /api/status and /metrics.
type Stats struct {
	Clients       int   // connected network clients (the gateway's own in-process client excluded)
	Sessions      int   // persistent sessions whose client is away
	Subscriptions int   // subscriptions of network clients, connected or away
	Retained      int   // retained messages (wellgate's own, not mochi's $SYS ones)
	RetainedBytes int64 // their payloads and topics
	MessagesIn    int64 // PUBLISH packets received, from clients and from the gateway
	MessagesOut   int64 // PUBLISH packets sent to clients
	BytesIn       int64
	BytesOut      int64

	// Denials counts refused connections, subscriptions and publishes by reason (see the
	// Reason… constants).
	Denials map[string]uint64
	// Commands counts accepted NCMD/DCMD publishes under the gateway's edge node by user name
	// ("" for anonymous clients).
	Commands map[string]uint64

	// Queued lists the persistent sessions that are away with messages waiting, most first
	// (at most MaxQueuesListed); QueuedMessages and QueuedBytes add up all of them.
	Queued         []Queue
	QueuedMessages int
	QueuedBytes    int64

	QueuedDropped   uint64 // QoS 1/2 messages not queued for a session past its bounds
	SlowDropped     uint64 // messages dropped for a connected client that could not keep up
	RetainedRefused uint64 // retained publishes delivered but not retained (past a bound)

	Connections ConnStats
	Store       StoreStats
}

// ConnStats counts connections the broker refused or dropped.
type ConnStats struct {
	Refused         uint64 // past MaxClients (CONNACK "server unavailable") or past the socket bound
	ConnectTimeouts uint64 // sockets that sent no CONNECT within ConnectTimeout
	Oversized       uint64 // clients dropped for a packet over MaxPacketSize
	Malformed       uint64 // clients dropped for a malformed packet or a protocol violation
	TLSFailures     uint64 // failed TLS handshakes (no or a bad client certificate, …)
	AcceptErrors    uint64 // failed accepts on a listener (it backs off and goes on)
}

// StoreStats is the state of the on-disk session store.
type StoreStats struct {
	// State is "memory" (no data dir), "ok", or "degraded": the store failed (disk full,
	// I/O error) and sessions are kept in memory only until it can be reopened.
	State      string
	Errors     uint64 // failed writes and opens
	Recoveries uint64 // times the store was reopened and rewritten after a failure
	LastError  string
}

// Queue is one away persistent session's waiting messages.
type Queue struct {
	ClientID string
	User     string
	Messages int
	Bytes    int64
	Since    time.Time // when its client went away
}

// MaxQueuesListed bounds Stats.Queued.
const MaxQueuesListed = 100

// Denial reasons, the keys of Stats.Denials.
const (
	ReasonBadCredentials = "bad credentials"     // unknown user or wrong password
	ReasonAnonymous      = "anonymous refused"   // no user name and anonymous clients are not allowed
	ReasonClientID       = "reserved client id"  // a client id the gateway uses itself
	ReasonWill           = "will not allowed"    // a will on a topic the client may not publish to
	ReasonSubscribe      = "subscribe denied"    // a filter outside the client's read list
	ReasonDeliver        = "delivery denied"     // a message on a topic outside a subscriber's read list
	ReasonPublish        = "publish denied"      // a topic outside the client's write list
	ReasonNamespace      = "gateway namespace"   // a birth, data or death under the gateway's own edge node
	ReasonCommand        = "command not allowed" // an NCMD/DCMD from a client whose write list does not cover it
	ReasonOrigin         = "websocket origin"    // a browser page from another origin while anonymous clients may publish
)

// counters are the broker's own event counts (mochi's are in its system.Info).
type counters struct {
	refused, connectTimeouts, oversized, malformed, tlsFailures, acceptErrors atomic.Uint64
	queuedDropped, retainedRefused                                            atomic.Uint64

	mu       sync.Mutex
	denials  map[string]uint64
	commands map[string]uint64
}

func newCounters() *counters {
	return &counters{denials: map[string]uint64{}, commands: map[string]uint64{}}
}

func (c *counters) deny(reason string) {
	c.mu.Lock()
	c.denials[reason]++
	c.mu.Unlock()
}

func (c *counters) command(user string) {
	c.mu.Lock()
	c.commands[user]++ // users come from the configuration: a bounded set
	c.mu.Unlock()
}

func (c *counters) conns() ConnStats {
	return ConnStats{Refused: c.refused.Load(), ConnectTimeouts: c.connectTimeouts.Load(),
		Oversized: c.oversized.Load(), Malformed: c.malformed.Load(), TLSFailures: c.tlsFailures.Load(),
		AcceptErrors: c.acceptErrors.Load()}
}

// Stats returns the broker's current state. It walks the clients and sessions, so call it
// for a page or a scrape, not per message.
func (b *Broker) Stats() Stats {
	info := b.srv.Info
	st := Stats{
		MessagesIn: atomic.LoadInt64(&info.MessagesReceived), MessagesOut: atomic.LoadInt64(&info.MessagesSent),
		BytesIn: atomic.LoadInt64(&info.BytesReceived), BytesOut: atomic.LoadInt64(&info.BytesSent),
		SlowDropped:     uint64(atomic.LoadInt64(&info.MessagesDropped)),
		QueuedDropped:   b.stats.queuedDropped.Load() + uint64(atomic.LoadInt64(&info.InflightDropped)),
		RetainedRefused: b.stats.retainedRefused.Load(),
		Connections:     b.stats.conns(),
		Store:           b.storeStats(),
	}
	b.stats.mu.Lock()
	st.Denials = maps.Clone(b.stats.denials)
	st.Commands = maps.Clone(b.stats.commands)
	b.stats.mu.Unlock()
	st.Retained, st.RetainedBytes = b.sessions.retainedStats()
	for _, cl := range b.srv.Clients.GetAll() {
		if cl.Net.Inline {
			continue
		}
		st.Subscriptions += cl.State.Subscriptions.Len()
		if !cl.Closed() {
			st.Clients++
			continue
		}
		st.Sessions++
		n, bytes := b.sessions.queued(cl.ID)
		if n == 0 {
			continue
		}
		st.QueuedMessages += n
		st.QueuedBytes += bytes
		st.Queued = append(st.Queued, Queue{ClientID: cl.ID, User: string(cl.Properties.Username),
			Messages: n, Bytes: bytes, Since: time.Unix(cl.StopTime(), 0)})
	}
	sort.Slice(st.Queued, func(i, j int) bool {
		if st.Queued[i].Messages != st.Queued[j].Messages {
			return st.Queued[i].Messages > st.Queued[j].Messages
		}
		return st.Queued[i].ClientID < st.Queued[j].ClientID
	})
	if len(st.Queued) > MaxQueuesListed {
		st.Queued = st.Queued[:MaxQueuesListed]
	}
	return st
}

func (b *Broker) storeStats() StoreStats {
	if b.store == nil {
		return StoreStats{State: "memory"}
	}
	return b.store.stats()
}
