package main

import (
	"fmt"
	"os"
	"time"
)

// fleet is one measured configuration: devices × tags int16 holding registers polled every
// interval, change % of them changing per second.
type fleet struct {
	devices, tags int
	interval      time.Duration
	change        float64
}

func (f fleet) String() string { return fmt.Sprintf("%d×%d @ %v", f.devices, f.tags, f.interval) }

// fleetResult is a fleet's figures, defined as gateway/fleet_load_test.go defines them.
type fleetResult struct {
	fleet
	up                      time.Duration // exec → every device's first DDATA at the subscriber
	wall                    time.Duration // the window
	polled                  float64       // tags × window / interval
	gw, sim, mosq, self     time.Duration // CPU in the window
	busy                    time.Duration // every process's CPU in the window, the machine's
	rss, anon, rssMax, hwm  int           // kB at the end of the window (rssMax: sampled each second)
	rssStart, anonStart     int           // kB when every device's first DDATA had arrived
	msgs, bytes, metrics    int
	delays                  int
	p50, p99, pmax          time.Duration
	historical, undecodable int
}

func (r fleetResult) tagsTotal() int { return r.devices * r.tags }

// cpuPerValue is the gateway's CPU per polled value, in µs.
func (r fleetResult) cpuPerValue() float64 { return r.gw.Seconds() * 1e6 / r.polled }

func (r fleetResult) kBPerTagStart() float64 { return float64(r.rssStart) / float64(r.tagsTotal()) }

func (r fleetResult) bytesPerValue() float64 { return float64(r.bytes) / r.polled }

// others is the CPU that went to processes other than the four measured ones in the window:
// other people's work on a shared machine, which competes with the gateway.
func (r fleetResult) others() time.Duration {
	return max(0, r.busy-r.gw-r.sim-r.mosq-r.self)
}

// pctCPU is d as a percentage of one core over the window.
func (r fleetResult) pctCPU(d time.Duration) float64 { return 100 * d.Seconds() / r.wall.Seconds() }

// runFleet starts a site and its gateway, waits for every device's first DDATA, lets
// start-up settle, and measures a window.
func (e *env) runFleet(name string, f fleet, window time.Duration) (fleetResult, error) {
	res := fleetResult{fleet: f}
	r, err := e.newRig(name, rigOpts{devices: f.devices, tags: f.tags, change: f.change, interval: f.interval})
	if err != nil {
		return res, err
	}
	defer r.close()
	if err := e.startGateway(r); err != nil {
		return res, err
	}
	if err := r.waitAllData(2 * time.Minute); err != nil {
		return res, err
	}
	pid := r.gw.pid()
	res.up = time.Since(r.started)
	res.rssStart, res.anonStart = statusKB(pid, "VmRSS"), statusKB(pid, "RssAnon")

	// Let start-up settle (births, the first full DDATA, the heap's first cycles) before the
	// window: this sleep is part of the measurement, not synchronisation.
	time.Sleep(e.settle)
	r.sub.setRecording(true)
	self := os.Getpid()
	busy0 := machineBusy()
	gw0, sim0, mosq0, self0, wall0 := cpuTime(pid), cpuTime(r.sim.pid()), cpuTime(r.mosq.p.pid()), cpuTime(self), time.Now()
	for end := wall0.Add(window); time.Now().Before(end); {
		time.Sleep(min(time.Second, time.Until(end)))
		res.rssMax = max(res.rssMax, statusKB(pid, "VmRSS"))
		if r.gw.exited() {
			return res, fmt.Errorf("the gateway exited in the window:\n%s", r.gw.tail())
		}
	}
	res.gw, res.sim, res.mosq, res.self = cpuTime(pid)-gw0, cpuTime(r.sim.pid())-sim0, cpuTime(r.mosq.p.pid())-mosq0, cpuTime(self)-self0
	res.wall, res.busy = time.Since(wall0), machineBusy()-busy0
	w := r.sub.setRecording(false)
	res.rss, res.anon, res.hwm = statusKB(pid, "VmRSS"), statusKB(pid, "RssAnon"), statusKB(pid, "VmHWM")
	res.msgs, res.bytes, res.metrics, res.delays = w.msgs, w.bytes, w.metrics, len(w.delays)
	res.p50, res.p99, res.pmax = pct(w.delays, 0.5), pct(w.delays, 0.99), pct(w.delays, 1)
	res.polled = float64(res.tagsTotal()) * res.wall.Seconds() / f.interval.Seconds() // nominal: every tag every interval
	res.historical, res.undecodable = r.sub.historicalMetrics(), r.sub.bad
	return res, nil
}

// fleets measures the three fleets.
func (e *env) fleets() ([]fleetResult, error) {
	var out []fleetResult
	for _, f := range []fleet{
		{devices: 50, tags: 200, interval: time.Second, change: 10},
		{devices: 50, tags: 200, interval: 100 * time.Millisecond, change: 10},
		{devices: 200, tags: 200, interval: time.Second, change: 10},
	} {
		progress("fleet %v: starting (settle %v, window %v)", f, e.settle, e.window)
		res, err := e.runFleet("fleet", f, e.window)
		if err != nil {
			return out, fmt.Errorf("fleet %v: %w", f, err)
		}
		progress("fleet %v: %.3f µs CPU/value, RSS %.1f MB, %.2f kB/tag after start, %.3f B/value, p99 %v",
			f, res.cpuPerValue(), mb(res.rss), res.kBPerTagStart(), res.bytesPerValue(), res.p99)
		out = append(out, res)
	}
	return out, nil
}

func mb(kb int) float64 { return float64(kb) / 1024 }

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
