// Command bench runs wellgate's whole benchmark suite against the real binary and writes
// BENCHMARKS.md: simulated Modbus fleets through the gateway to Debian's mosquitto (CPU, RSS,
// upstream bytes, latency), the throughput ceiling, a 1-million-sample outage drained, the
// footprint (binary sizes, idle CPU, start-up to NBIRTH) and the Go micro benchmarks.
//
//	go run ./tools/bench -out BENCHMARKS.md [-window 30s] [-only fleet,ceiling,outage,footprint,micro]
//
// Each measured process is its own: the gateway (`wellgate run`), the simulator (`wellgate
// simulate`, the same binary), mosquitto; the upstream subscriber runs in this one. Progress
// goes to stderr.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

func main() { os.Exit(run()) }

var sections = []string{"fleet", "ceiling", "outage", "footprint", "micro"}

func run() int {
	out := flag.String("out", "BENCHMARKS.md", "the report to write")
	window := flag.Duration("window", 30*time.Second, "measurement window of the fleets and of idle CPU")
	settle := flag.Duration("settle", 5*time.Second, "wait after every device's first DDATA, before a window")
	only := flag.String("only", strings.Join(sections, ","), "sections to run")
	replay := flag.Int("replay-rate", 1_000_000, "[upstream.queue] replay_rate of the outage drain")
	keep := flag.Bool("keep", false, "keep the run's folder (logs, configurations)")
	flag.Parse()
	want := map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		if !contains(sections, s) {
			fmt.Fprintf(os.Stderr, "bench: -only: unknown section %q (sections: %s)\n", s, strings.Join(sections, ","))
			return 2
		}
		want[s] = true
	}
	res := &results{started: time.Now(), window: *window, settle: *settle, replayRate: *replay, only: *only, args: os.Args[1:], errs: map[string]error{}}
	e, cleanup, err := setup(res)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	if *keep {
		progress("the run's folder is kept: %s", e.dir)
	} else {
		defer cleanup()
	}
	e.window, e.settle = *window, *settle
	steps := []struct {
		name string
		do   func() error
	}{
		{"fleet", func() (err error) { res.fleets, err = e.fleets(); return }},
		{"ceiling", func() (err error) { res.ceiling, err = e.ceiling(); return }},
		{"outage", func() (err error) { res.outage, err = e.outage(*replay); return }},
		{"footprint", func() (err error) { res.footprint, err = e.footprint(); return }},
		{"micro", func() (err error) { res.micro, err = micro(e.src); return }},
	}
	for _, s := range steps {
		if !want[s.name] {
			continue
		}
		t0 := time.Now()
		if err := s.do(); err != nil {
			progress("%s: %v", s.name, err)
			res.errs[s.name] = err
		}
		res.took = append(res.took, sectionTime{s.name, time.Since(t0)})
	}
	res.ended = time.Now()
	if err := os.WriteFile(*out, []byte(res.markdown()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	progress("wrote %s in %v", *out, res.ended.Sub(res.started).Round(time.Second))
	if len(res.errs) > 0 {
		return 1
	}
	return 0
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}
