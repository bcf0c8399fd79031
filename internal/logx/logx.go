// Package logx keeps wellgate's logs bounded: repeated events are rate-limited with a count
// of what was suppressed, and no value from outside reaches a log line at unbounded length.
// A box whose disk fills with log lines has failed as surely as one whose PLC is down.
package logx

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/wellgate/wellgate/internal/clock"
)

// MaxValue is the most bytes of one outside value (a topic, a written string, an error from a
// device) that a log line carries.
const MaxValue = 200

// Value returns s cut to at most MaxValue bytes (on a rune boundary), with a note of how much
// was left out.
func Value(s string) string {
	if len(s) <= MaxValue {
		return s
	}
	cut := MaxValue
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…(" + strconv.Itoa(len(s)-cut) + " more bytes)"
}

// Err is Value of an error's text ("" for nil), for the "err" attribute.
func Err(err error) string {
	if err == nil {
		return ""
	}
	return Value(err.Error())
}

// maxKeys bounds the events a Limiter tracks; past it the oldest-forgotten policy is simply
// to start over (an event then logs once more than it would have).
const maxKeys = 1024

// Limiter lets each kind of event (a key such as "dcmd refused" or "write failed|Well 1")
// log at most once per Every. The line that is let through after a quiet spell carries
// "suppressed=N", the number of the same event that were not logged in between. Safe for
// concurrent use.
type Limiter struct {
	Every time.Duration
	Clock clock.Clock // nil: the real clock

	mu     sync.Mutex
	events map[string]*event
}

type event struct {
	last       time.Time
	suppressed int
}

// NewLimiter returns a limiter that lets one line per key through every interval.
func NewLimiter(every time.Duration) *Limiter { return &Limiter{Every: every} }

// Allow reports whether the event key may log now and, if so, how many of it were suppressed
// since it last did.
func (l *Limiter) Allow(key string) (ok bool, suppressed int) {
	clk := l.Clock
	if clk == nil {
		clk = clock.Real
	}
	now := clk.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.events == nil || len(l.events) >= maxKeys {
		if _, known := l.events[key]; !known {
			l.events = make(map[string]*event)
		}
	}
	e := l.events[key]
	if e == nil {
		l.events[key] = &event{last: now}
		return true, 0
	}
	if now.Sub(e.last) < l.Every {
		e.suppressed++
		return false, 0
	}
	n := e.suppressed
	e.last, e.suppressed = now, 0
	return true, n
}

// Log logs msg at level on log when the event key is allowed, adding "suppressed=N" when
// lines were held back. It returns whether it logged.
func (l *Limiter) Log(log *slog.Logger, level slog.Level, key, msg string, args ...any) bool {
	ok, n := l.Allow(key)
	if !ok {
		return false
	}
	if n > 0 {
		args = append(args, slog.Int("suppressed", n))
	}
	log.Log(context.Background(), level, msg, args...)
	return true
}
