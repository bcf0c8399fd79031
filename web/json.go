package web

import (
	"encoding/json"
	"time"
)

// The JSON shapes of the API (documented in API.md). They are built from the contract types
// rather than being them, so that "never" is null and the wire names stay put when the
// contract grows.

// stamp is a time in JSON: RFC 3339 in UTC with milliseconds, or null for the zero time.
type stamp time.Time

func (s stamp) MarshalJSON() ([]byte, error) {
	t := time.Time(s)
	if t.IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + t.UTC().Format(stampLayout) + `"`), nil
}

const stampLayout = "2006-01-02T15:04:05.000Z07:00"

// nullable is a pointer to v when ok, else nil (JSON null).
func nullable[T any](v T, ok bool) *T {
	if !ok {
		return nil
	}
	return &v
}

type statusJSON struct {
	Group    string       `json:"group"`
	EdgeNode string       `json:"edge_node"`
	Version  string       `json:"version"`
	Started  stamp        `json:"started"`
	UptimeS  int64        `json:"uptime_s"`
	Now      stamp        `json:"now"`
	Healthy  bool         `json:"healthy"`
	Health   []string     `json:"health"`
	Broker   string       `json:"broker,omitempty"`
	Local    *localJSON   `json:"local_broker"`
	Upstream upstreamJSON `json:"upstream"`
	Summary  Summary      `json:"summary"`
	Devices  []deviceJSON `json:"devices,omitempty"`
}

type localJSON struct {
	Clients        int               `json:"clients"`
	BdSeq          uint64            `json:"bdseq"`
	Messages       map[string]uint64 `json:"messages"`
	Subscriptions  int               `json:"subscriptions"`
	AwaySessions   int               `json:"away_sessions"`
	QueuedMessages int               `json:"queued_messages"`
	Queued         []queuedJSON      `json:"queued"`
	Retained       int               `json:"retained"`
	MessagesIn     int64             `json:"messages_in"`
	MessagesOut    int64             `json:"messages_out"`
	Denials        map[string]uint64 `json:"denials"`
	Commands       map[string]uint64 `json:"commands"`
}

type queuedJSON struct {
	ClientID string `json:"client_id"`
	Messages int    `json:"messages"`
}

func toLocalJSON(l LocalBroker) *localJSON {
	out := &localJSON{Clients: l.Clients, BdSeq: l.BdSeq, Messages: orEmpty(l.Messages),
		Subscriptions: l.Subscriptions, AwaySessions: l.AwaySessions, QueuedMessages: l.QueuedMessages,
		Queued: []queuedJSON{}, Retained: l.Retained, MessagesIn: l.MessagesIn, MessagesOut: l.MessagesOut,
		Denials: orEmpty(l.Denials), Commands: orEmpty(l.Commands)}
	for _, q := range l.Queued {
		out.Queued = append(out.Queued, queuedJSON(q))
	}
	return out
}

type upstreamJSON struct {
	Enabled          bool              `json:"enabled"`
	Connected        bool              `json:"connected"`
	State            string            `json:"state,omitempty"`
	Server           string            `json:"server,omitempty"`
	Since            stamp             `json:"since"`
	BdSeq            uint64            `json:"bdseq"`
	Connects         uint64            `json:"connects"`
	Attempts         uint64            `json:"attempts"`
	LastError        string            `json:"last_error"`
	LastErrorAt      stamp             `json:"last_error_at"`
	PrimaryHost      string            `json:"primary_host"`
	PrimaryHostState string            `json:"primary_host_state"`
	PrimaryHostSince stamp             `json:"primary_host_since"`
	Queued           int               `json:"queued"`
	QueueBytes       int64             `json:"queue_bytes"`
	QueueOldestS     *float64          `json:"queue_oldest_s"`
	Dropped          uint64            `json:"dropped"`
	DroppedByReason  map[string]uint64 `json:"dropped_by_reason"`
	Messages         map[string]uint64 `json:"messages"`
}

type deviceJSON struct {
	Name           string            `json:"name"`
	Driver         string            `json:"driver"`
	Endpoint       string            `json:"endpoint"`
	State          string            `json:"state"`
	StateSince     stamp             `json:"state_since"`
	Up             bool              `json:"up"`
	LastGood       stamp             `json:"last_good"`
	ResponseTimeNs *int64            `json:"response_time_ns"`
	Requests       uint64            `json:"requests"`
	Errors         uint64            `json:"errors"`
	ErrorsByKind   map[string]uint64 `json:"errors_by_kind"`
	LastError      string            `json:"last_error"`
	LastErrorAt    stamp             `json:"last_error_at"`
	TagsTotal      int               `json:"tags_total"`
	TagsBad        int               `json:"tags_bad"`
}

type tagJSON struct {
	Device          string `json:"device"`
	Name            string `json:"tag"`
	Type            string `json:"type"`
	Value           any    `json:"value"`
	Display         string `json:"display"`
	Units           string `json:"units,omitempty"`
	Text            string `json:"text"`
	Quality         string `json:"quality"`
	Time            stamp  `json:"timestamp"`
	LastGoodDisplay string `json:"last_good_display"`
	LastGoodTime    stamp  `json:"last_good_timestamp"`
	Writable        bool   `json:"writable"`
	Address         string `json:"address"`
}

func toStatusJSON(s *Snapshot, now time.Time, withDevices bool) statusJSON {
	out := statusJSON{
		Group: s.Group, EdgeNode: s.EdgeNode, Version: s.Version, Started: stamp(s.Started),
		Now: stamp(now), Healthy: len(s.Health) == 0, Health: s.Health, Broker: s.Broker,
		Upstream: toUpstreamJSON(s.Upstream), Summary: s.Summarize(),
	}
	if out.Health == nil {
		out.Health = []string{}
	}
	if !s.Started.IsZero() {
		out.UptimeS = int64(now.Sub(s.Started) / time.Second)
	}
	if s.Broker != "" {
		out.Local = toLocalJSON(s.Local)
	}
	if withDevices {
		out.Devices = toDevicesJSON(s.Devices)
	}
	return out
}

func toUpstreamJSON(u Upstream) upstreamJSON {
	return upstreamJSON{
		Enabled: u.Enabled, Connected: u.Connected, State: u.State, Server: u.Server, Since: stamp(u.Since),
		BdSeq: u.BdSeq, Connects: u.Connects, Attempts: u.Attempts,
		LastError: u.LastError, LastErrorAt: stamp(u.LastErrorAt),
		PrimaryHost: u.PrimaryHost, PrimaryHostState: u.PrimaryHostState, PrimaryHostSince: stamp(u.PrimaryHostSince),
		Queued: u.Queued, QueueBytes: u.QueueBytes, QueueOldestS: nullable(u.QueueOldest.Seconds(), u.Queued > 0),
		Dropped: u.Dropped, DroppedByReason: orEmpty(u.DroppedByReason), Messages: orEmpty(u.Messages),
	}
}

func toDevicesJSON(ds []Device) []deviceJSON {
	out := make([]deviceJSON, 0, len(ds))
	for i := range ds {
		out = append(out, toDeviceJSON(&ds[i]))
	}
	return out
}

func toDeviceJSON(d *Device) deviceJSON {
	state := d.EffectiveState()
	out := deviceJSON{
		Name: d.Name, Driver: d.Driver, Endpoint: d.Endpoint, State: state, StateSince: stamp(d.StateSince),
		Up: d.Answering(), LastGood: stamp(d.LastGood),
		ResponseTimeNs: nullable(int64(d.ResponseTime), !d.LastGood.IsZero()),
		Requests:       d.Requests, Errors: d.Errors, ErrorsByKind: orEmpty(d.ErrorsByKind),
		LastError: d.LastError, LastErrorAt: stamp(d.LastErrorAt), TagsTotal: len(d.Tags),
	}
	for _, t := range d.Tags {
		if BadTag(d, t) {
			out.TagsBad++
		}
	}
	return out
}

func toTagJSON(t *Tag) tagJSON {
	return tagJSON{
		Device: t.Device, Name: t.Name, Type: t.Type, Value: t.Value, Display: t.Display, Units: t.Units,
		Text: t.Text(), Quality: t.Quality, Time: stamp(t.Time),
		LastGoodDisplay: t.LastGoodDisplay, LastGoodTime: stamp(t.LastGoodTime),
		Writable: t.Writable, Address: t.Address,
	}
}

func orEmpty(m map[string]uint64) map[string]uint64 {
	if m == nil {
		return map[string]uint64{}
	}
	return m
}

// MarshalJSON encodes the snapshot as /api/status does, with every device's tags, so that a
// Snapshot logged or dumped as JSON reads like the API.
func (s Snapshot) MarshalJSON() ([]byte, error) {
	type full struct {
		statusJSON
		Tags []tagJSON `json:"tags"`
	}
	out := full{statusJSON: toStatusJSON(&s, time.Now(), true), Tags: []tagJSON{}}
	for i := range s.Devices {
		for j := range s.Devices[i].Tags {
			out.Tags = append(out.Tags, toTagJSON(&s.Devices[i].Tags[j]))
		}
	}
	return json.Marshal(out)
}

// MarshalJSON encodes the tag as /api/tags does: never is null.
func (t Tag) MarshalJSON() ([]byte, error) { return json.Marshal(toTagJSON(&t)) }

// MarshalJSON encodes the device as /api/devices does (without its tags).
func (d Device) MarshalJSON() ([]byte, error) { return json.Marshal(toDeviceJSON(&d)) }
