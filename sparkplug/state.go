package sparkplug

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
)

// ErrState is wrapped by STATE parsing errors.
var ErrState = errors.New("invalid primary host STATE")

// HostState is one primary host STATE message.
type HostState struct {
	HostID    string
	Online    bool
	Timestamp uint64 // ms since the Unix epoch (3.0 only)
	Legacy    bool   // the 2.2 form: STATE/<host> with ONLINE / OFFLINE, no timestamp
}

// ParseState parses a primary host STATE message: the 3.0 form on spBv1.0/STATE/<host> with a
// JSON payload {"online":bool,"timestamp":ms} (both required, other keys ignored), or the legacy
// 2.2 form on STATE/<host> with the payload ONLINE or OFFLINE.
func ParseState(topic string, payload []byte) (HostState, error) {
	host, legacy, err := parseStateTopic(topic)
	if err != nil {
		return HostState{}, fmt.Errorf("%w: %w", ErrState, err)
	}
	st := HostState{HostID: host, Legacy: legacy}
	if legacy {
		switch string(bytes.TrimSpace(payload)) {
		case "ONLINE":
			st.Online = true
		case "OFFLINE":
		default:
			return HostState{}, fmt.Errorf("%w: %s: payload %.32q is not ONLINE or OFFLINE", ErrState, topic, payload)
		}
		return st, nil
	}
	var body struct {
		Online    *bool   `json:"online"`
		Timestamp *uint64 `json:"timestamp"`
	}
	if err := json.Unmarshal(payload, &body); err != nil {
		return HostState{}, fmt.Errorf("%w: %s: %w", ErrState, topic, err)
	}
	if body.Online == nil || body.Timestamp == nil {
		return HostState{}, fmt.Errorf("%w: %s: online and timestamp are required", ErrState, topic)
	}
	st.Online, st.Timestamp = *body.Online, *body.Timestamp
	return st, nil
}

// HostTracker follows one primary host's STATE. Safe for concurrent use.
type HostTracker struct {
	mu     sync.Mutex
	host   string
	seen   bool   // a state was accepted
	online bool   // the last accepted state
	lastTS uint64 // timestamp of the last accepted 3.0 state
	seenTS bool
}

// NewHostTracker tracks the host with the given id; states of other hosts are ignored.
func NewHostTracker(hostID string) *HostTracker { return &HostTracker{host: hostID} }

// Observe applies a STATE. A 3.0 state older than the last 3.0 state accepted (timestamp
// smaller; equal is accepted) and states of other hosts are ignored. Legacy states carry no
// timestamp and are taken in arrival order. It returns whether the host's online status
// changed (the first accepted state counts as a change) and the status after the call.
func (t *HostTracker) Observe(st HostState) (changed, online bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if st.HostID != t.host {
		return false, t.online
	}
	if !st.Legacy {
		if t.seenTS && st.Timestamp < t.lastTS {
			return false, t.online
		}
		t.lastTS, t.seenTS = st.Timestamp, true
	}
	changed = !t.seen || t.online != st.Online
	t.seen, t.online = true, st.Online
	return changed, t.online
}

// Online reports the host's last accepted status (false before any).
func (t *HostTracker) Online() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.online
}
