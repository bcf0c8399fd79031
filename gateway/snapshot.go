package gateway

import (
	"maps"
	"sync"
	"time"

	"github.com/wellgate/wellgate/bridge"
	"github.com/wellgate/wellgate/broker"
	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/sparkplug"
	"github.com/wellgate/wellgate/web"
)

// storeDevices lists every configured device for the status page, in the file's order: the
// enabled ones as their drivers describe them, the disabled ones from the configuration.
func (g *Gateway) storeDevices() []storeDevice {
	g.mu.RLock()
	devices, cfg := g.devices, g.devCfg
	g.mu.RUnlock()
	described := make(map[string]drivers.DeviceInfo, len(devices))
	for _, d := range devices {
		described[d.Name] = d
	}
	out := make([]storeDevice, 0, len(cfg.Devices))
	for _, cd := range cfg.Devices {
		if info, ok := described[cd.Name]; ok && !cd.Disabled {
			out = append(out, storeDevice{info: info, interval: cd.PollInterval.D()})
			continue
		}
		if !cd.Disabled {
			continue // a driver that described no such device: nothing to show
		}
		info := drivers.DeviceInfo{Name: cd.Name, Driver: cd.Driver}
		for _, t := range cd.Tags {
			info.Tags = append(info.Tags, drivers.TagInfo{Name: t.Name, Units: t.Units, Writable: t.Writable})
		}
		out = append(out, storeDevice{info: info, interval: cd.PollInterval.D(), disabled: true})
	}
	return out
}

// Snapshot implements web.Source. It copies what it returns and does not block on any part.
func (g *Gateway) Snapshot() web.Snapshot {
	now := time.Now()
	status := map[string]drivers.DeviceStatus{}
	for _, d := range g.currentDrivers() {
		if r, ok := d.(drivers.StatusReporter); ok {
			for _, s := range r.Status() {
				status[s.Device] = s
			}
		}
	}
	snap := web.Snapshot{
		Group: g.cfg.Sparkplug.GroupID, EdgeNode: g.cfg.Sparkplug.EdgeNodeID,
		Version: g.version, Started: g.started, Devices: g.store.view(status, now),
		Upstream: g.upstreamView(), Health: g.health.failures(),
	}
	g.mu.RLock()
	b := g.broker
	g.mu.RUnlock()
	if b != nil {
		snap.Broker = b.Addr().String()
		snap.Local = localView(b.Stats(), g.localBdSeq.Load())
		snap.Local.Messages = g.sessions.messages(&g.sessions.local)
	}
	return snap
}

// upstreamView is the upstream line of the page, from the bridge's status.
func (g *Gateway) upstreamView() web.Upstream {
	u := web.Upstream{Enabled: g.cfg.Upstream.Enabled(), PrimaryHost: g.cfg.Sparkplug.PrimaryHostID}
	g.mu.RLock()
	br := g.bridge
	g.mu.RUnlock()
	if br == nil {
		return u
	}
	st := br.Status()
	u.State, u.Server, u.Since = string(st.State), st.Server, st.Since
	u.Connected = st.State == bridge.StateOnline || st.State == bridge.StateWaitingHost || st.State == bridge.StateWaitingPoll
	u.BdSeq, u.Connects, u.Attempts = st.BdSeq, st.Connects, st.Attempts
	u.LastError, u.LastErrorAt = st.LastError, st.LastErrAt
	u.Messages = g.sessions.messages(&g.sessions.upstream)
	u.Queued, u.QueueBytes, u.QueueOldest = st.Queue.Records, st.Queue.Bytes, st.Queue.OldestAge
	u.DroppedByReason = map[string]uint64{}
	for reason, n := range st.Queue.Dropped {
		u.DroppedByReason[string(reason)] += n
		u.Dropped += n
	}
	if st.QueueErrors > 0 {
		u.DroppedByReason["refused"] += st.QueueErrors
		u.Dropped += st.QueueErrors
	}
	if u.PrimaryHost != "" {
		u.PrimaryHostState = "unknown"
		if st.State == bridge.StateOnline {
			u.PrimaryHostState = "online"
		}
	}
	return u
}

// localView is the embedded broker's line of the page, from its counters.
func localView(st broker.Stats, bdSeq uint64) web.LocalBroker {
	l := web.LocalBroker{Clients: st.Clients, BdSeq: bdSeq, Subscriptions: st.Subscriptions,
		AwaySessions: st.Sessions, QueuedMessages: st.QueuedMessages, Retained: st.Retained,
		MessagesIn: st.MessagesIn, MessagesOut: st.MessagesOut,
		Denials: maps.Clone(st.Denials), Commands: maps.Clone(st.Commands)}
	for _, q := range st.Queued {
		l.Queued = append(l.Queued, web.QueuedSession{ClientID: q.ClientID, Messages: q.Messages})
	}
	return l
}

// sessionCounts holds the two Sparkplug sessions for their message counts.
type sessionCounts struct {
	mu              sync.Mutex
	local, upstream *sparkplug.Session
}

func (c *sessionCounts) set(slot **sparkplug.Session, s *sparkplug.Session) {
	c.mu.Lock()
	*slot = s
	c.mu.Unlock()
}

// messages is what the session in slot published, by type; nil without one.
func (c *sessionCounts) messages(slot **sparkplug.Session) map[string]uint64 {
	c.mu.Lock()
	s := *slot
	c.mu.Unlock()
	if s == nil {
		return nil
	}
	return s.Messages()
}
