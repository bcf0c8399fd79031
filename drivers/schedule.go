package drivers

import (
	"fmt"
	"time"
)

// Schedule is when a polling driver starts a device's polls: the poll_schedule key every
// device has. Every schedule polls once at once when the device starts (births must not wait
// for the clock) and then follows Next. The names are the configuration's ("clock", "start").
type Schedule uint8

const (
	// OnClock starts polls at whole multiples of the poll interval since the Unix epoch: a 1 s
	// device at every whole second, a 1 m device at every whole minute, so that timestamps
	// line up across devices and sites like Ignition's scan classes. An interval that does not
	// divide a day (7 s, 90 s) still counts its multiples from the epoch, not from midnight.
	// Unix time has no leap seconds.
	OnClock Schedule = iota
	// FromStart starts each poll one interval after the previous one was due, so polls keep
	// the phase of the device's first poll.
	FromStart
)

// ParseSchedule parses a poll_schedule value: "clock" (also "", the default) or "start".
func ParseSchedule(s string) (Schedule, error) {
	switch s {
	case "", "clock":
		return OnClock, nil
	case "start":
		return FromStart, nil
	}
	return OnClock, fmt.Errorf("poll_schedule %q must be \"clock\" or \"start\"", s)
}

// String returns the schedule's configuration name: "clock" or "start".
func (s Schedule) String() string {
	if s == FromStart {
		return "start"
	}
	return "clock"
}

// Next returns when the poll after one that was due at prev starts, now being when that poll
// ended (or when the interval changed). It is never before now and at most one interval
// after it (give or take a wall clock slewing back): a poll that overran skips to the next start of the schedule (never a burst of
// catch-up polls), and overran reports that it ran past the start after prev (now is more
// than one interval after prev). On the clock the next start is the first whole multiple of
// interval after prev, and not before now; a wall clock set back by an interval or more
// (prev after now) is taken as it is, so that the device keeps polling.
func (s Schedule) Next(prev time.Time, interval time.Duration, now time.Time) (next time.Time, overran bool) {
	if interval <= 0 {
		return now, false
	}
	overran = now.Sub(prev) > interval
	if s == FromStart {
		k := time.Duration(1)
		if e := now.Sub(prev); e > interval {
			k = (e + interval - 1) / interval
		}
		if next = prev.Add(k * interval); next.Before(now) || next.After(now.Add(interval)) {
			next = now.Add(interval) // the clock was set back or forth: start again from now
		}
		return next, overran
	}
	from := now.UnixNano()
	if p := prev.UnixNano(); p >= from && p-from < int64(interval) {
		from = p + 1 // never the same start twice, even if the wall clock slews back a little
	}
	return time.Unix(0, ceilMultiple(from, int64(interval))), overran
}

// ceilMultiple is the first multiple of m at or after n (m > 0).
func ceilMultiple(n, m int64) int64 {
	r := n % m
	if r < 0 {
		r += m
	}
	if r == 0 {
		return n
	}
	return n - r + m
}
