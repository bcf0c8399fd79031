package backoff

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wellgate/wellgate/internal/clock"
)

func TestDelayGrowsWithinJitterAndCap(t *testing.T) {
	for n := range 10 {
		want := min(100*time.Millisecond<<n, 2*time.Second)
		for range 200 {
			d := Delay(100*time.Millisecond, n, 2*time.Second)
			lo := time.Duration(float64(want) * (1 - Jitter))
			if d < lo || d > 2*time.Second || d > time.Duration(float64(want)*(1+Jitter)) {
				t.Fatalf("Delay(n=%d) = %v, want %v ±%.0f%% and ≤ 2s", n, d, want, Jitter*100)
			}
		}
	}
	if d := Delay(0, 3, time.Second); d != 0 {
		t.Fatalf("Delay with no base = %v", d)
	}
	if d := Delay(time.Second, 1000, time.Second); d > time.Second {
		t.Fatalf("huge n overflows: %v", d)
	}
}

func TestBackoffResetStartsOver(t *testing.T) {
	b := &Backoff{Min: time.Second, Max: time.Minute}
	for range 5 {
		b.Next()
	}
	if b.Failures() != 5 {
		t.Fatalf("failures = %d", b.Failures())
	}
	b.Reset()
	if d := b.Next(); d > time.Duration(float64(time.Second)*(1+Jitter)) {
		t.Fatalf("after Reset: %v", d)
	}
}

func TestWaitUsesClockAndCancels(t *testing.T) {
	f := clock.NewFake(time.Unix(0, 0))
	b := &Backoff{Min: time.Second, Max: time.Second, Clock: f}
	done := make(chan error, 1)
	go func() { done <- b.Wait(context.Background()) }()
	<-f.Armed()
	select {
	case err := <-done:
		t.Fatalf("Wait returned before the clock moved: %v", err)
	default:
	}
	f.Advance(time.Second)
	if err := <-done; err != nil {
		t.Fatalf("Wait: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- b.Wait(ctx) }()
	<-f.Armed()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Wait = %v", err)
	}
}
