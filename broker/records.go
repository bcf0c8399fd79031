package broker

import (
	"encoding/json"
	"sort"
	"strconv"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Store records, in the key layout and JSON of mochi's pebble hook, so that a data dir it
// wrote loads. In-flight messages carry one more field, wg_seq, their queue order.

func clientKey(id string) string { return storage.ClientKey + "_" + id }

func subscriptionKey(id, filter string) string {
	return storage.SubscriptionKey + "_" + id + ":" + filter
}

func retainedKey(topic string) string { return storage.RetainedKey + "_" + topic }

func inflightKey(id string, packetID uint16) string {
	return storage.InflightKey + "_" + id + ":" + strconv.FormatUint(uint64(packetID), 10)
}

// storedMessage is mochi's stored message with wellgate's sequence number.
type storedMessage struct {
	storage.Message
	Seq uint64 `json:"wg_seq,omitempty"`
}

func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil { // only plain data is encoded
		panic("broker: encode store record: " + err.Error())
	}
	return b
}

func clientRecord(cl *mqtt.Client) kv {
	p := cl.Properties.Props.Copy(false)
	return kv{key: clientKey(cl.ID), value: encode(storage.Client{
		ID: cl.ID, T: storage.ClientKey, Remote: cl.Net.Remote, Listener: cl.Net.Listener,
		Username: cl.Properties.Username, Clean: cl.Properties.Clean, ProtocolVersion: cl.Properties.ProtocolVersion,
		Properties: storage.ClientProperties{
			SessionExpiryInterval: p.SessionExpiryInterval, SessionExpiryIntervalFlag: p.SessionExpiryIntervalFlag,
			AuthenticationMethod: p.AuthenticationMethod, AuthenticationData: p.AuthenticationData,
			RequestProblemInfo: p.RequestProblemInfo, RequestProblemInfoFlag: p.RequestProblemInfoFlag,
			RequestResponseInfo: p.RequestResponseInfo, ReceiveMaximum: p.ReceiveMaximum,
			TopicAliasMaximum: p.TopicAliasMaximum, User: p.User, MaximumPacketSize: p.MaximumPacketSize,
		},
		Will: storage.ClientWill(cl.Properties.Will),
	})}
}

func subscriptionRecord(id string, f packets.Subscription, qos byte) kv {
	return kv{key: subscriptionKey(id, f.Filter), value: encode(storage.Subscription{
		ID: subscriptionKey(id, f.Filter), T: storage.SubscriptionKey, Client: id, Filter: f.Filter, Qos: qos,
		Identifier: f.Identifier, NoLocal: f.NoLocal, RetainHandling: f.RetainHandling, RetainAsPublished: f.RetainAsPublished,
	})}
}

func messageOf(pk packets.Packet) storage.Message {
	p := pk.Properties.Copy(false)
	return storage.Message{FixedHeader: pk.FixedHeader, TopicName: pk.TopicName, Payload: pk.Payload,
		Created: pk.Created, Origin: pk.Origin, PacketID: pk.PacketID,
		Properties: storage.MessageProperties{
			PayloadFormat: p.PayloadFormat, PayloadFormatFlag: p.PayloadFormatFlag,
			MessageExpiryInterval: p.MessageExpiryInterval, ContentType: p.ContentType, ResponseTopic: p.ResponseTopic,
			CorrelationData: p.CorrelationData, SubscriptionIdentifier: p.SubscriptionIdentifier,
			TopicAlias: p.TopicAlias, User: p.User,
		}}
}

func inflightRecord(id string, pk packets.Packet, seq uint64) kv {
	m := messageOf(pk)
	m.ID, m.T, m.Client, m.Sent = inflightKey(id, pk.PacketID), storage.InflightKey, id, pk.Created
	return kv{key: m.ID, value: encode(storedMessage{Message: m, Seq: seq})}
}

func retainedRecord(client string, pk packets.Packet) kv {
	m := messageOf(pk)
	m.ID, m.T, m.Client, m.PacketID = retainedKey(pk.TopicName), storage.RetainedKey, client, 0
	return kv{key: m.ID, value: encode(m)}
}

// loadedState is what the store held at start, within the bounds, for mochi's readStore.
type loadedState struct {
	clients  []storage.Client
	subs     []storage.Subscription
	inflight []storage.Message
	retained []storage.Message
	dropped  int // records past a bound or unreadable, deleted
}

// load reads the store within the session and retained bounds. Records past a bound are
// deleted (their deletes are returned, to be written once the store starts); a record too
// big for any bound is never decoded.
func (s *sessions) load() []kv {
	var del []kv
	drop := func(key string) {
		del = append(del, kv{key: key})
		s.loaded.dropped++
	}
	st := s.store
	st.scan(storage.SysInfoKey, func(k string, _ []byte) { del = append(del, kv{key: k}) }) // mochi's $SYS copy
	st.scan(storage.ClientKey+"_", func(k string, v []byte) {
		var c storage.Client
		if len(v) > 2*s.o.MaxPacketSize+4096 || json.Unmarshal(v, &c) != nil || c.ID == "" ||
			(c.ProtocolVersion == 5 && c.Properties.SessionExpiryInterval == 0) || (c.ProtocolVersion < 5 && c.Clean) {
			drop(k)
			return
		}
		s.loaded.clients = append(s.loaded.clients, c)
		s.records[c.ID] = append([]byte(nil), v...)
	})
	st.scan(storage.SubscriptionKey+"_", func(k string, v []byte) {
		var sub storage.Subscription
		if len(v) > 70_000 || json.Unmarshal(v, &sub) != nil || s.records[sub.Client] == nil {
			drop(k)
			return
		}
		s.loaded.subs = append(s.loaded.subs, sub)
	})
	byClient := map[string][]storedMessage{}
	maxValue := int(s.o.MaxQueuedBytes)*4/3 + 4096 // base64 payloads in JSON
	st.scan(storage.InflightKey+"_", func(k string, v []byte) {
		var m storedMessage
		if len(v) > maxValue || json.Unmarshal(v, &m) != nil || s.records[m.Client] == nil {
			drop(k)
			return
		}
		byClient[m.Client] = append(byClient[m.Client], m)
	})
	for id, msgs := range byClient {
		s.loadQueue(id, msgs, drop)
	}
	maxValue = s.o.MaxRetainedSize*4/3 + 4096
	st.scan(storage.RetainedKey+"_", func(k string, v []byte) {
		var m storage.Message
		if len(v) > maxValue || json.Unmarshal(v, &m) != nil || !s.loadRetained(m) {
			drop(k)
			s.stats.retainedRefused.Add(1)
			return
		}
		s.loaded.retained = append(s.loaded.retained, m)
	})
	if len(s.loaded.clients) > 0 || len(s.loaded.retained) > 0 || s.loaded.dropped > 0 {
		s.log.Info("session store loaded", "sessions", len(s.loaded.clients), "subscriptions", len(s.loaded.subs),
			"queued", len(s.loaded.inflight), "retained", len(s.loaded.retained), "dropped_past_bounds", s.loaded.dropped)
	}
	return del
}

// loadQueue restores one session's in-flight messages in queue order, within its bounds.
func (s *sessions) loadQueue(id string, msgs []storedMessage, drop func(string)) {
	sort.Slice(msgs, func(i, j int) bool {
		a, b := msgs[i], msgs[j]
		if a.Seq != b.Seq {
			return a.Seq < b.Seq
		}
		if a.Created != b.Created {
			return a.Created < b.Created
		}
		return a.PacketID < b.PacketID
	})
	q := s.queueOf(id)
	for _, m := range msgs {
		var e entry
		if m.FixedHeader.Type == packets.Publish {
			e = entry{seq: m.Seq, size: int64(len(m.Payload) + len(m.TopicName) + messageOverhead)}
		}
		if len(q.msgs) >= s.o.MaxQueued || q.bytes+e.size > s.o.MaxQueuedBytes || s.queuedBytes+e.size > s.o.MaxQueuedTotalBytes {
			drop(m.ID)
			s.stats.queuedDropped.Add(1)
			continue
		}
		if _, dup := q.msgs[m.PacketID]; dup {
			drop(m.ID)
			continue
		}
		s.seq = max(s.seq, m.Seq)
		q.msgs[m.PacketID] = e
		q.bytes += e.size
		s.queuedBytes += e.size
		s.loaded.inflight = append(s.loaded.inflight, m.Message)
	}
	if len(q.msgs) == 0 {
		delete(s.queues, id)
	}
}

// loadRetained admits a stored retained message within the retained bounds.
func (s *sessions) loadRetained(m storage.Message) bool {
	size := int64(len(m.Payload) + len(m.TopicName))
	if len(m.Payload) == 0 || len(m.Payload) > s.o.MaxRetainedSize || len(s.retained) >= s.o.MaxRetained ||
		s.retainedBytes+size > s.o.MaxRetainedBytes {
		return false
	}
	s.retained[m.TopicName] = size
	s.retainedBytes += size
	return true
}

// The Stored… hooks hand the loaded state to mochi once, at Serve.

func (s *sessions) StoredClients() ([]storage.Client, error) {
	v := s.loaded.clients
	s.loaded.clients = nil
	return v, nil
}

func (s *sessions) StoredSubscriptions() ([]storage.Subscription, error) {
	v := s.loaded.subs
	s.loaded.subs = nil
	return v, nil
}

func (s *sessions) StoredInflightMessages() ([]storage.Message, error) {
	v := s.loaded.inflight
	s.loaded.inflight = nil
	return v, nil
}

func (s *sessions) StoredRetainedMessages() ([]storage.Message, error) {
	v := s.loaded.retained
	s.loaded.retained = nil
	return v, nil
}
