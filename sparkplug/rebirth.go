package sparkplug

import (
	"fmt"
	"time"
)

// rebirthState is a rebirth asked for within the hold-off after the last one served, merged
// with the requests that follow it until FlushRebirth publishes it.
type rebirthState struct {
	due       bool // a merged rebirth waits for the hold-off to pass
	scheduled bool // DeferredRebirth told the caller when
}

// requestRebirth carries out a Rebirth request: at once when the last one served is at least
// the hold-off old, else merged into one rebirth at the end of the hold-off. (The births of
// Start do not count: a host that asks right after them has missed them.) Called with mu held.
func (s *Session) requestRebirth() error {
	if !s.online {
		return fmt.Errorf("rebirth: %w", ErrOffline)
	}
	if s.rebirthWait() > 0 {
		s.rebirth.due = true
		s.merged++
		return nil
	}
	return s.servedRebirth()
}

// servedRebirth publishes a rebirth asked for and starts the hold-off. Called with mu held.
func (s *Session) servedRebirth() error {
	s.lastRebirth = s.now()
	return s.rebirthLocked()
}

// rebirthWait is how long until the hold-off after the last rebirth served has passed. Called
// with mu held.
func (s *Session) rebirthWait() time.Duration {
	if s.opts.RebirthHoldoff < 0 || s.lastRebirth.IsZero() {
		return 0
	}
	return max(s.lastRebirth.Add(s.opts.RebirthHoldoff).Sub(s.now()), 0)
}

// FlushRebirth publishes the rebirth that HandleCommand merged, once the hold-off has passed,
// and reports whether it did. It does nothing when none is due (or the session is offline: the
// next Start births anyway). Callers with a tick call it on each; others when DeferredRebirth
// says.
func (s *Session) FlushRebirth() (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.rebirth.due || !s.online || s.rebirthWait() > 0 {
		return false, nil
	}
	return true, s.servedRebirth()
}

// DeferredRebirth reports, once per merged rebirth, how long until FlushRebirth will publish
// it: for a caller without a tick of its own (the embedded broker's session), which then
// arranges one call.
func (s *Session) DeferredRebirth() (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.rebirth.due || s.rebirth.scheduled {
		return 0, false
	}
	s.rebirth.scheduled = true
	return s.rebirthWait(), true
}

// MergedRebirths counts the Rebirth requests merged into a later rebirth since the session
// was made.
func (s *Session) MergedRebirths() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.merged
}
