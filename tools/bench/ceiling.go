package main

import (
	"fmt"
	"runtime"
	"time"
)

// ceilingStep is one offered load of the throughput search.
type ceilingStep struct {
	res              fleetResult
	offered, arrived float64 // tag updates per second: the simulator's changes, the subscriber's live metrics
	pass             bool
	why              string // why it did not pass
	retry            bool   // the same load again, after a try that other processes disturbed
}

type ceilingResult struct {
	steps   []ceilingStep
	best    *ceilingStep // highest passing
	limit   string       // what limited it
	window  time.Duration
	budget  time.Duration
	stopped string // why the search ended
}

const (
	ceilingTags     = 200
	ceilingInterval = 100 * time.Millisecond
	ceilingBudget   = 4 * time.Minute
)

// ceiling raises the offered load (devices × 200 tags at 100 ms, every tag changing once a
// second) until the gateway falls behind: fewer than 99 % of the expected updates arrive in
// the window, or p99 latency exceeds one poll interval. It doubles the devices from 25 and
// then tries once halfway between the last pass and the first failure.
func (e *env) ceiling() (*ceilingResult, error) {
	c := &ceilingResult{window: min(e.window, 10*time.Second), budget: ceilingBudget}
	start := time.Now()
	lo, hi := 0, 0 // devices: highest passing, lowest failing
	for n := 25; ; {
		if time.Since(start) > ceilingBudget {
			c.stopped = fmt.Sprintf("the %v budget ran out", ceilingBudget)
			break
		}
		st, err := e.ceilingStep(n, c.window)
		if err != nil {
			return c, err
		}
		if !st.pass && st.res.pctCPU(st.res.others()) > 50 {
			// Someone else's work took half a core or more: try the same load once more.
			c.steps = append(c.steps, st)
			progress("ceiling: %d devices fell behind while processes outside the benchmark used %.0f %% of a core; once more",
				n, st.res.pctCPU(st.res.others()))
			if st, err = e.ceilingStep(n, c.window); err != nil {
				return c, err
			}
			st.retry = true
		}
		c.steps = append(c.steps, st)
		if st.pass {
			lo = n
		} else if hi == 0 || n < hi {
			hi = n
		}
		switch {
		case hi == 0 && n >= 1600:
			c.stopped = "1600 devices passed (320,000 offered updates/s); the search stops there"
		case hi == 0:
			n *= 2
			continue
		case lo == 0:
			c.stopped = "the smallest load failed"
		case hi-lo > lo/4 && len(c.steps) < 12:
			n = (lo + hi) / 2
			continue
		default:
			c.stopped = fmt.Sprintf("%d devices passed, %d did not", lo, hi)
		}
		break
	}
	for i := range c.steps {
		if s := &c.steps[i]; s.pass && (c.best == nil || s.arrived > c.best.arrived) {
			c.best = s
		}
	}
	var first *ceilingStep // the smallest load that fell behind, its last try
	for i := range c.steps {
		if s := &c.steps[i]; !s.pass && (first == nil || s.res.devices <= first.res.devices) {
			first = s
		}
	}
	if first != nil {
		c.limit = limitedBy(first.res)
	}
	return c, nil
}

func (e *env) ceilingStep(devices int, window time.Duration) (ceilingStep, error) {
	f := fleet{devices: devices, tags: ceilingTags, interval: ceilingInterval, change: 100}
	progress("ceiling %v, change 100%%: %d updates/s offered", f, devices*ceilingTags)
	saved := e.settle
	e.settle = min(e.settle, 3*time.Second)
	res, err := e.runFleet("ceiling", f, window)
	e.settle = saved
	if err != nil {
		return ceilingStep{}, fmt.Errorf("%v: %w", f, err)
	}
	st := ceilingStep{res: res, offered: float64(f.devices*f.tags) * f.change / 100}
	st.arrived = float64(res.delays) / res.wall.Seconds()
	st.pass = true
	if st.arrived < 0.99*st.offered {
		st.pass, st.why = false, fmt.Sprintf("%.1f %% of the updates arrived", 100*st.arrived/st.offered)
	}
	if res.p99 > f.interval {
		st.pass = false
		st.why = join(st.why, fmt.Sprintf("p99 %v > %v", res.p99.Round(time.Millisecond), f.interval))
	}
	progress("ceiling %v: %.0f updates/s arrived, p99 %v; CPU gateway %.0f%%, simulator %.0f%%, mosquitto %.0f%%, subscriber %.0f%%: %s",
		f, st.arrived, res.p99.Round(time.Millisecond), res.pctCPU(res.gw), res.pctCPU(res.sim), res.pctCPU(res.mosq), res.pctCPU(res.self), passText(st.pass))
	return st, nil
}

// limitedBy names the process that used the most CPU in a failed step (other people's
// processes included), and says whether the machine's cores were all busy.
func limitedBy(r fleetResult) string {
	procs := []struct {
		name string
		cpu  time.Duration
	}{{"the gateway", r.gw}, {"the simulator", r.sim}, {"mosquitto", r.mosq}, {"the subscriber (this harness)", r.self},
		{"processes outside the benchmark", r.others()}}
	top := procs[0]
	for _, p := range procs {
		if p.cpu > top.cpu {
			top = p
		}
	}
	s := fmt.Sprintf("at %d devices, %s used the most CPU (%.0f %% of a core)", r.devices, top.name, r.pctCPU(top.cpu))
	busy := r.pctCPU(r.busy)
	switch {
	case top.name == "processes outside the benchmark":
		s += fmt.Sprintf(": the benchmark was starved by other work on the machine (%.0f %% of %d cores busy), "+
			"so this ceiling understates the gateway's", busy, runtime.NumCPU())
	case busy > 90*float64(runtime.NumCPU()):
		s += fmt.Sprintf("; the machine was saturated (%.0f %% of %d cores busy, %.0f %% of a core outside the benchmark)",
			busy, runtime.NumCPU(), r.pctCPU(r.others()))
	case r.pctCPU(top.cpu) > 90:
		s += ": that process was CPU-bound"
	default:
		s += fmt.Sprintf("; no process was CPU-bound and the machine was %.0f %% busy of %d cores: "+
			"the limit is a wait or a serialisation inside the pipeline, not CPU", busy, runtime.NumCPU())
	}
	return s
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

func passText(ok bool) string {
	if ok {
		return "passed"
	}
	return "fell behind"
}
