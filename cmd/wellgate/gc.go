package main

import (
	"os"
	"runtime/debug"
)

// The garbage collector's percent (GOGC) when the GOGC environment variable does not set it;
// when it does, wellgate leaves the collector alone. GOMEMLIMIT (the packaged unit sets one
// below its MemoryMax) works with either: it is a ceiling, these set the usual pace.
const (
	// steadyGCPercent holds while the gateway runs. Go's default, 100, lets the heap grow to
	// twice the live heap before a collection; the running gateway's live heap is mostly
	// pointer-free (the store's values, the drivers' register buffers) and it allocates about
	// one batch per poll, so collecting at half that costs little. Measured with the real
	// binary, 200 devices × 200 int16 tags at 1 s, 10 %/s changing (40,000 values/s, live
	// heap ~33 MB, ~5 MB/s allocated): mean RSS and CPU per value over 30-60 s, three runs
	// each on a shared 2-core machine (CPU ±20 % run to run):
	//	GOGC=100          ~104 MB  ~0.45 µs  (a collection every ~6 s)
	//	GOGC=50           ~85 MB   ~0.53 µs  (every ~2 s)
	//	GOGC=25           ~76 MB   ~0.70 µs
	//	GOMEMLIMIT=48MiB  ~65 MB   ~1.7 µs   (alone: a limit near the live heap keeps the
	//	                                      collector running most of the time)
	steadyGCPercent = 50
	// startupGCPercent holds while a configuration file is loaded and the gateway built
	// (run, check, and a reload's check and load): loading 40,000 tags has a live heap of
	// ~65 MB (the TOML parse tree, then the file's lines, beside the configuration), and at
	// Go's default the heap grows to twice that, so `check` peaked at ~150 MB RSS and `run`
	// alike, against a unit's MemoryMax of 200M; at 20 both peak at ~105 MB, for ~0.6 s
	// more CPU once.
	startupGCPercent = 20
)

// gcFromEnv reports whether the GOGC environment variable sets the collector's percent.
func gcFromEnv() bool {
	_, set := os.LookupEnv("GOGC")
	return set
}

// setSteadyGC sets the running gateway's GC percent, unless GOGC does.
func setSteadyGC() {
	if !gcFromEnv() {
		debug.SetGCPercent(steadyGCPercent)
	}
}

// startupGC lowers the GC percent while a configuration is loaded and built, unless GOGC sets
// it, and returns the function that puts the previous percent back.
func startupGC() (restore func()) {
	if gcFromEnv() {
		return func() {}
	}
	prev := debug.SetGCPercent(startupGCPercent)
	return func() { debug.SetGCPercent(prev) }
}
