// Package backoff is the one reconnect backoff of wellgate: exponential, jittered,
// cancellable, on an injected clock. The Modbus driver, the upstream bridge and the OPC UA
// driver all wait with it.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/wellgate/wellgate/internal/clock"
)

// Jitter is the fraction by which a delay is spread either way (±20%), so that devices and
// gateways that failed together do not retry together.
const Jitter = 0.2

// Backoff hands out growing delays: Min, 2·Min, 4·Min … up to Max, each jittered by ±Jitter
// (never above Max). The zero value is not usable; set Min and Max. It is not safe for
// concurrent use: each retry loop owns its own.
type Backoff struct {
	Min, Max time.Duration
	// Clock is the clock Wait uses; nil means the real one.
	Clock clock.Clock

	failures int
}

// Next returns the delay before the next attempt and counts one more failure.
func (b *Backoff) Next() time.Duration {
	d := Delay(b.Min, b.failures, b.Max)
	b.failures++
	return d
}

// Reset starts over at Min, after a success.
func (b *Backoff) Reset() { b.failures = 0 }

// Failures is the number of delays handed out since the last Reset.
func (b *Backoff) Failures() int { return b.failures }

// Wait waits for Next() on the clock, or until ctx ends (then it returns ctx.Err()).
func (b *Backoff) Wait(ctx context.Context) error {
	clk := b.Clock
	if clk == nil {
		clk = clock.Real
	}
	t := clk.NewTimer(b.Next())
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C():
		return nil
	}
}

// Delay is the delay after n failures in a row (n = 0 for the first): base·2^n, at most
// limit, jittered by ±Jitter and never above limit. It is what Backoff.Next uses, for callers
// that keep the failure count themselves (a poll loop with one count per device).
func Delay(base time.Duration, n int, limit time.Duration) time.Duration {
	if base <= 0 {
		return 0
	}
	limit = max(limit, base)
	d := base
	for i := 0; i < n && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	j := time.Duration((rand.Float64()*2 - 1) * Jitter * float64(d))
	return min(d+j, limit)
}
