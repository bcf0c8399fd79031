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
	// binary, 200 devices × 200 int16 tags at 1 s, 10 %/s changing (40,000 values/s): mean
	// RSS and CPU per value over 30-60 s on a shared 2-core machine (CPU ±25 % run to run),
	// three runs each with a live heap of ~33 MB (at 3b36943), one with the smaller Modbus
	// tags after it (at 6f3bdd6):
	//	                  ~33 MB live          after
	//	GOGC=100          ~104 MB  ~0.45 µs    ~79 MB  ~0.55 µs  (a collection every ~6 s)
	//	GOGC=50           ~85 MB   ~0.53 µs    ~64 MB  ~0.56-0.76 µs  (every ~2 s)
	//	GOGC=25           ~76 MB   ~0.70 µs    ~58 MB  ~0.80 µs
	//	GOMEMLIMIT=48MiB  ~65 MB   ~1.7 µs     ~62 MB  ~0.59 µs  (alone; at ~33 MB live the
	//	                                                          collector hardly rests)
	// A limit as the only policy is cheap only while the live heap stays well below it.
	steadyGCPercent = 50
	// startupGCPercent holds while a configuration file is loaded and the gateway built
	// (run, check, and a reload's check and load): loading 40,000 tags has a live heap of
	// ~60 MB (the TOML parse tree beside the growing configuration), and at Go's default
	// the heap grows to twice that: `check` and `run` peaked at ~135-150 MB RSS (~170 MB
	// before config dropped the tree early), against a unit's MemoryMax of 200M; at 20 both
	// peak at ~90 MB, for ~0.5 s more CPU once.
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
