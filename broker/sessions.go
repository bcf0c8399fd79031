package broker

import (
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/wellgate/wellgate/internal/logx"
)

// sessions is the hook that keeps sessions and retained messages bounded, ordered and (with a
// data dir) on disk:
//
//   - every QoS 1/2 message queued for a client gets a sequence number; when a session
//     resumes, its in-flight messages are renumbered so that mochi resends them in that order
//     (mochi v2.7.9 sorts them by the uint16 of their creation second, with an unstable sort);
//   - an away session's queue is bounded in bytes (mochi bounds it in messages), and all away
//     sessions together;
//   - retained messages are bounded in count, size and total bytes;
//   - sessions (only persistent ones), their subscriptions and queues, and retained messages
//     are written to the store, and loaded from it within the same bounds.
type sessions struct {
	mqtt.HookBase
	srv   *mqtt.Server
	o     Options
	log   *slog.Logger
	limit *logx.Limiter
	stats *counters
	store *store // nil: memory only

	mu            sync.Mutex
	seq           uint64
	queues        map[string]*queue // client id → its in-flight messages
	queuedBytes   int64             // of all queues
	retained      map[string]int64  // topic → bytes
	retainedBytes int64
	// records holds the store record of every persistent session, encoded in its client's
	// own goroutine when the session is established: mochi's client properties may not be
	// read from others (the store's rewrite, a publisher's goroutine).
	records map[string][]byte

	loaded loadedState // from the store at New, handed to mochi at Serve
}

type queue struct {
	msgs  map[uint16]entry // by packet id
	bytes int64
}

// entry is one in-flight message: its order and its size (0 for a QoS 2 handshake state).
type entry struct {
	seq  uint64
	size int64
}

// messageOverhead is what one queued message costs beyond its topic and payload.
const messageOverhead = 128

func newSessions(o Options, srv *mqtt.Server, st *store, log *slog.Logger, stats *counters) *sessions {
	return &sessions{srv: srv, o: o, log: log, limit: logx.NewLimiter(time.Minute), stats: stats, store: st,
		queues: map[string]*queue{}, retained: map[string]int64{}, records: map[string][]byte{}}
}

func (s *sessions) ID() string { return "wellgate-sessions" }

func (s *sessions) Provides(b byte) bool {
	switch b {
	case mqtt.OnSessionEstablished, mqtt.OnDisconnect, mqtt.OnSubscribed, mqtt.OnUnsubscribed,
		mqtt.OnPublish, mqtt.OnRetainMessage, mqtt.OnRetainedExpired, mqtt.OnWill,
		mqtt.OnQosPublish, mqtt.OnQosComplete, mqtt.OnQosDropped, mqtt.OnPacketEncode, mqtt.OnClientExpired,
		mqtt.StoredClients, mqtt.StoredSubscriptions, mqtt.StoredInflightMessages, mqtt.StoredRetainedMessages:
		return true
	}
	return false
}

// Stop closes the store when mochi stops.
func (s *sessions) Stop() error {
	if s.store == nil {
		return nil
	}
	return s.store.close()
}

// persistent reports whether cl's session outlives its connection.
func persistent(cl *mqtt.Client) bool {
	if cl.Properties.ProtocolVersion == 5 {
		return cl.Properties.Props.SessionExpiryInterval > 0
	}
	return !cl.Properties.Clean
}

// write writes to the store, if there is one.
func (s *sessions) write(ops ...kv) {
	if s.store != nil {
		s.store.write(ops...)
	}
}

// stored reports whether the session with client id id is persistent (and so in the store).
func (s *sessions) stored(id string) bool {
	if s.store == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records[id] != nil
}

func (s *sessions) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	if cl.Net.Inline || s.store == nil {
		return
	}
	var rec kv
	if persistent(cl) {
		rec = clientRecord(cl)
	}
	s.mu.Lock()
	was := s.records[cl.ID] != nil
	if rec.value != nil {
		s.records[cl.ID] = rec.value
	} else {
		delete(s.records, cl.ID)
	}
	s.mu.Unlock()
	switch {
	case rec.value != nil:
		s.write(rec)
	case was: // a clean session replaced a persistent one
		s.write(kv{key: clientKey(cl.ID)})
	}
}

// OnDisconnect drops the records of a session that ends with its connection (an MQTT 5
// client that set its expiry to 0 on DISCONNECT). mochi clears its subscriptions and queue
// after this hook, when the session no longer counts as stored: their records go here too.
func (s *sessions) OnDisconnect(cl *mqtt.Client, _ error, expire bool) {
	// A restored session (no connection) or one taken over by a new connection keeps its records.
	if cl.Net.Inline || cl.Net.Conn == nil || cl.IsTakenOver() || !expire || !s.stored(cl.ID) {
		return
	}
	var ops []kv
	for filter := range cl.State.Subscriptions.GetAll() {
		ops = append(ops, kv{key: subscriptionKey(cl.ID, filter)})
	}
	for _, pk := range cl.State.Inflight.GetAll(false) {
		ops = append(ops, kv{key: inflightKey(cl.ID, pk.PacketID)})
	}
	s.forgetSession(cl.ID, ops...)
}

// forgetSession drops a session's record (and more of its records, ops).
func (s *sessions) forgetSession(id string, ops ...kv) {
	s.mu.Lock()
	was := s.records[id] != nil
	delete(s.records, id)
	s.mu.Unlock()
	if was {
		s.write(append(ops, kv{key: clientKey(id)})...)
	}
}

func (s *sessions) OnClientExpired(cl *mqtt.Client) {
	s.srv.UnsubscribeClient(cl) // mochi leaves an expired session's subscriptions in its index
	cl.ClearInflights()
	s.mu.Lock()
	if q := s.queues[cl.ID]; q != nil {
		s.queuedBytes -= q.bytes
		delete(s.queues, cl.ID)
	}
	s.mu.Unlock()
	s.forgetSession(cl.ID)
	s.log.Info("mqtt session expired", "client", logx.Value(cl.ID), "user", logx.Value(string(cl.Properties.Username)))
}

func (s *sessions) OnSubscribed(cl *mqtt.Client, pk packets.Packet, codes []byte) {
	if cl.Net.Inline || !s.stored(cl.ID) {
		return
	}
	var ops []kv
	for i, f := range pk.Filters {
		if i < len(codes) && codes[i] < 0x80 {
			ops = append(ops, subscriptionRecord(cl.ID, f, codes[i]))
		}
	}
	s.write(ops...)
}

func (s *sessions) OnUnsubscribed(cl *mqtt.Client, pk packets.Packet) {
	if cl.Net.Inline || !s.stored(cl.ID) {
		return
	}
	ops := make([]kv, 0, len(pk.Filters))
	for _, f := range pk.Filters {
		ops = append(ops, kv{key: subscriptionKey(cl.ID, f.Filter)})
	}
	s.write(ops...)
}

// OnQosPublish tracks (and stores) a message put in flight for a client.
func (s *sessions) OnQosPublish(cl *mqtt.Client, pk packets.Packet, _ int64, _ int) {
	if cl.Net.Inline {
		return
	}
	switch pk.FixedHeader.Type {
	case packets.Publish:
		s.queuePublish(cl, pk)
	case packets.Pubrec, packets.Pubrel: // a QoS 2 exchange in progress
		s.mu.Lock()
		q := s.queueOf(cl.ID)
		_, had := q.msgs[pk.PacketID]
		if !had {
			q.msgs[pk.PacketID] = entry{}
		}
		s.mu.Unlock()
		if !had && s.stored(cl.ID) {
			s.write(inflightRecord(cl.ID, pk, 0))
		}
	}
}

func (s *sessions) queueOf(id string) *queue {
	q := s.queues[id]
	if q == nil {
		q = &queue{msgs: map[uint16]entry{}}
		s.queues[id] = q
	}
	return q
}

func (s *sessions) queuePublish(cl *mqtt.Client, pk packets.Packet) {
	size := int64(len(pk.Payload) + len(pk.TopicName) + messageOverhead)
	s.mu.Lock()
	q := s.queueOf(cl.ID)
	old, had := q.msgs[pk.PacketID]
	if had && pk.FixedHeader.Dup { // mochi resending a queued message: it is stored already
		s.mu.Unlock()
		return
	}
	if had { // a packet id reused after mochi dropped a message without telling hooks
		q.bytes -= old.size
		s.queuedBytes -= old.size
		delete(q.msgs, pk.PacketID)
	}
	away := cl.Closed()
	if away && (q.bytes+size > s.o.MaxQueuedBytes || s.queuedBytes+size > s.o.MaxQueuedTotalBytes) {
		s.mu.Unlock()
		s.dropQueued(cl, pk, had)
		return
	}
	s.seq++
	seq := s.seq
	q.msgs[pk.PacketID] = entry{seq: seq, size: size}
	q.bytes += size
	s.queuedBytes += size
	s.mu.Unlock()
	if s.stored(cl.ID) {
		s.write(inflightRecord(cl.ID, pk, seq))
	}
}

// dropQueued takes a message that would pass an away session's byte bounds back out of its
// in-flight store (mochi has put it there already).
func (s *sessions) dropQueued(cl *mqtt.Client, pk packets.Packet, wasStored bool) {
	if cl.State.Inflight.Delete(pk.PacketID) {
		atomic.AddInt64(&s.srv.Info.Inflight, -1)
	}
	s.stats.queuedDropped.Add(1)
	s.limit.Log(s.log, slog.LevelWarn, "queuefull|"+cl.ID, "mqtt session queue full; dropping new messages for it",
		"client", logx.Value(cl.ID), "max_queued_bytes", s.o.MaxQueuedBytes, "max_queued_total_bytes", s.o.MaxQueuedTotalBytes)
	if wasStored && s.stored(cl.ID) {
		s.write(kv{key: inflightKey(cl.ID, pk.PacketID)})
	}
}

func (s *sessions) OnQosComplete(cl *mqtt.Client, pk packets.Packet) { s.forget(cl, pk.PacketID) }

func (s *sessions) OnQosDropped(cl *mqtt.Client, pk packets.Packet) {
	if cl.IsTakenOver() { // the session's new connection has inherited it
		return
	}
	s.forget(cl, pk.PacketID)
}

// forget drops a message that has left flight (acknowledged, expired or cleared).
func (s *sessions) forget(cl *mqtt.Client, id uint16) {
	if cl.Net.Inline {
		return
	}
	s.mu.Lock()
	q := s.queues[cl.ID]
	var e entry
	had := false
	if q != nil {
		if e, had = q.msgs[id]; had {
			delete(q.msgs, id)
			q.bytes -= e.size
			s.queuedBytes -= e.size
			if len(q.msgs) == 0 {
				delete(s.queues, cl.ID)
			}
		}
	}
	s.mu.Unlock()
	if had && s.stored(cl.ID) {
		s.write(kv{key: inflightKey(cl.ID, id)})
	}
}

// OnPacketEncode renumbers a resuming session's in-flight messages as its CONNACK goes out,
// just before mochi resends them sorted by uint16(Created): their Created values become
// consecutive in the order the messages were queued.
func (s *sessions) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type == packets.Connack && pk.SessionPresent && cl.State.Inflight.Len() > 1 {
		s.reorder(cl)
	}
	return pk
}

func (s *sessions) reorder(cl *mqtt.Client) {
	all := cl.State.Inflight.GetAll(false)
	s.mu.Lock()
	seq := func(id uint16) uint64 { return 0 }
	if q := s.queues[cl.ID]; q != nil {
		seq = func(id uint16) uint64 { return q.msgs[id].seq }
	}
	sort.Slice(all, func(i, j int) bool {
		a, b := all[i], all[j]
		if sa, sb := seq(a.PacketID), seq(b.PacketID); sa != sb {
			return sa < sb
		}
		if a.Created != b.Created { // messages stored without a sequence number (older stores)
			return a.Created < b.Created
		}
		return a.PacketID < b.PacketID
	})
	s.mu.Unlock()
	base := time.Now().Unix()
	base -= int64(uint16(base)) // uint16(base+i) runs 0, 1, 2 …: at most 65,535 in flight
	for i, pk := range all {
		pk.Created = base + int64(i)
		cl.State.Inflight.Set(pk)
	}
}

// queued returns the messages and bytes in flight for a client.
func (s *sessions) queued(id string) (n int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[id]
	if q == nil {
		return 0, 0
	}
	for _, e := range q.msgs {
		if e.size > 0 {
			n++
		}
	}
	return n, q.bytes
}

// OnPublish keeps a retained publish within the retained bounds: past one it is delivered
// but not retained, and the topic's older retained message is cleared.
func (s *sessions) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if !pk.FixedHeader.Retain || len(pk.Payload) == 0 {
		return pk, nil
	}
	if !s.admitRetained(cl, pk.TopicName, len(pk.Payload)) {
		pk.FixedHeader.Retain = false
	}
	return pk, nil
}

// OnWill keeps a retained will within the retained bounds in the same way.
func (s *sessions) OnWill(cl *mqtt.Client, will mqtt.Will) (mqtt.Will, error) {
	if will.Retain && len(will.Payload) > 0 && !s.admitRetained(cl, will.TopicName, len(will.Payload)) {
		will.Retain = false
	}
	return will, nil
}

// admitRetained reserves room for a retained message, or refuses it (and clears the topic).
func (s *sessions) admitRetained(cl *mqtt.Client, topic string, payload int) bool {
	size := int64(payload + len(topic))
	s.mu.Lock()
	old, had := s.retained[topic]
	var reason string
	switch {
	case payload > s.o.MaxRetainedSize:
		reason = "larger than max_retained_size"
	case !had && len(s.retained) >= s.o.MaxRetained:
		reason = "max_retained messages reached"
	case s.retainedBytes-old+size > s.o.MaxRetainedBytes:
		reason = "max_retained_bytes reached"
	default:
		s.retained[topic] = size
		s.retainedBytes += size - old
		s.mu.Unlock()
		return true
	}
	if had {
		delete(s.retained, topic)
		s.retainedBytes -= old
	}
	s.mu.Unlock()
	s.stats.retainedRefused.Add(1)
	s.limit.Log(s.log, slog.LevelWarn, "retain|"+reason, "mqtt retained message not kept: "+reason,
		"topic", logx.Value(topic), "client", logx.Value(cl.ID), "bytes", payload)
	if had {
		s.srv.Topics.RetainMessage(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Retain: true},
			TopicName: topic})
		s.write(kv{key: retainedKey(topic)})
	}
	return false
}

func (s *sessions) OnRetainMessage(cl *mqtt.Client, pk packets.Packet, r int64) {
	s.mu.Lock()
	if len(pk.Payload) == 0 {
		s.retainedBytes -= s.retained[pk.TopicName]
		delete(s.retained, pk.TopicName)
	} else {
		size := int64(len(pk.Payload) + len(pk.TopicName))
		s.retainedBytes += size - s.retained[pk.TopicName]
		s.retained[pk.TopicName] = size
	}
	s.mu.Unlock()
	switch r {
	case 1:
		s.write(retainedRecord(cl.ID, pk))
	case -1:
		s.write(kv{key: retainedKey(pk.TopicName)})
	}
}

func (s *sessions) OnRetainedExpired(topic string) {
	s.mu.Lock()
	s.retainedBytes -= s.retained[topic]
	delete(s.retained, topic)
	s.mu.Unlock()
	s.write(kv{key: retainedKey(topic)})
}

func (s *sessions) retainedStats() (int, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.retained), s.retainedBytes
}

// snapshot is the broker's whole persistent state as store writes, for rewriting a reopened
// store. It runs in the store's writer: it reads only locked state (and the session records).
func (s *sessions) snapshot() []kv {
	var out []kv
	s.mu.Lock()
	records := make(map[string][]byte, len(s.records))
	for id, rec := range s.records {
		records[id] = rec
	}
	s.mu.Unlock()
	for id, rec := range records {
		out = append(out, kv{key: clientKey(id), value: rec})
		cl, ok := s.srv.Clients.Get(id)
		if !ok {
			continue
		}
		for _, sub := range cl.State.Subscriptions.GetAll() {
			out = append(out, subscriptionRecord(id, sub, sub.Qos))
		}
		for _, pk := range cl.State.Inflight.GetAll(false) {
			s.mu.Lock()
			var seq uint64
			if q := s.queues[id]; q != nil {
				seq = q.msgs[pk.PacketID].seq
			}
			s.mu.Unlock()
			out = append(out, inflightRecord(id, pk, seq))
		}
	}
	s.mu.Lock()
	topics := make([]string, 0, len(s.retained))
	for t := range s.retained {
		topics = append(topics, t)
	}
	s.mu.Unlock()
	for _, t := range topics {
		if pk, ok := s.srv.Topics.Retained.Get(t); ok && len(pk.Payload) > 0 {
			out = append(out, retainedRecord(pk.Origin, pk))
		}
	}
	return out
}
