package main

import (
	"os"
	"runtime/debug"
	"runtime/metrics"
	"testing"
)

// TestGCPolicy: without GOGC, run collects at steadyGCPercent and loads at startupGCPercent,
// then returns to the percent before; with GOGC set, wellgate leaves the percent alone.
func TestGCPolicy(t *testing.T) {
	orig := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(orig) })
	percent := func() int {
		s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
		metrics.Read(s)
		return int(s[0].Value.Uint64())
	}

	t.Setenv("GOGC", "") // restored after the test
	os.Unsetenv("GOGC")
	setSteadyGC()
	if got := percent(); got != steadyGCPercent {
		t.Fatalf("GOGC unset: running at %d, want %d", got, steadyGCPercent)
	}
	restore := startupGC()
	if got := percent(); got != startupGCPercent {
		t.Errorf("GOGC unset: loading at %d, want %d", got, startupGCPercent)
	}
	restore()
	if got := percent(); got != steadyGCPercent {
		t.Errorf("GOGC unset: after loading %d, want %d back", got, steadyGCPercent)
	}

	t.Setenv("GOGC", "100")
	debug.SetGCPercent(100)
	setSteadyGC()
	restore = startupGC()
	if got := percent(); got != 100 {
		t.Errorf("GOGC=100: loading at %d, want 100", got)
	}
	restore()
	if got := percent(); got != 100 {
		t.Errorf("GOGC=100: running at %d, want 100", got)
	}
}
