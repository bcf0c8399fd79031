package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// env is what every section shares: the run's folder and the gateway binary, which is the
// simulator too (`wellgate simulate`).
type env struct {
	dir    string        // the run's temporary folder
	src    string        // the exported HEAD the binaries and micro benchmarks are built from
	bin    string        // the gateway binary, built once
	window time.Duration // measurement window
	settle time.Duration // after start-up, before the window
	n      int           // rigs made, for folder names
}

// rigOpts is one simulated site and how the gateway runs against it.
type rigOpts struct {
	devices, tags int
	change        float64 // % of tags changing per second
	interval      time.Duration
	web           bool // serve the status page (for the queue depth)
	upstreamLater bool // do not start mosquitto: the outage
	replayRate    int  // [upstream.queue] replay_rate, 0: the default
}

// rig is mosquitto, the upstream subscriber, the simulator and the gateway of one measurement,
// each its own process except the subscriber, which is this one.
type rig struct {
	opts    rigOpts
	dir     string
	config  string
	data    string
	web     string // host:port of the status page, or ""
	mosq    *mosquitto
	sub     *subscriber
	sim     *proc
	gw      *proc
	started time.Time // the gateway's exec
}

func (e *env) newRig(name string, o rigOpts) (*rig, error) {
	e.n++
	dir := filepath.Join(e.dir, fmt.Sprintf("%02d-%s", e.n, name))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	r := &rig{opts: o, dir: dir, config: filepath.Join(dir, "wellgate.toml"), data: filepath.Join(dir, "data")}
	ok := false
	defer func() {
		if !ok {
			r.close()
		}
	}()
	var err error
	if r.mosq, err = newMosquitto(dir); err != nil {
		return nil, err
	}
	if !o.upstreamLater {
		if err := r.connectUpstream(); err != nil {
			return nil, err
		}
	}
	broker, err := freePort()
	if err != nil {
		return nil, err
	}
	web := "off"
	if o.web {
		if r.web, err = freePort(); err != nil {
			return nil, err
		}
		web = r.web
	}
	args := []string{"simulate", "-devices", strconv.Itoa(o.devices), "-tags", strconv.Itoa(o.tags),
		"-change", strconv.FormatFloat(o.change, 'f', -1, 64), "-interval", o.interval.String(),
		"-config", r.config, "-data", r.data, "-upstream", r.mosq.url(), "-broker", broker, "-web", web}
	pr, pw := io.Pipe()
	if r.sim, err = startProc(dir, "simulate", pw, e.bin, args...); err != nil {
		return nil, err
	}
	go func() { <-r.sim.done; pw.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := waitLine(ctx, pr, "ready "); err != nil {
		return nil, fmt.Errorf("simulator: %w\n%s", err, r.sim.tail())
	}
	if o.replayRate > 0 {
		if err := appendConfig(r.config, fmt.Sprintf("\n[upstream.queue]\nreplay_rate = %d\n", o.replayRate)); err != nil {
			return nil, err
		}
	}
	ok = true
	return r, nil
}

// connectUpstream starts mosquitto and subscribes to it.
func (r *rig) connectUpstream() error {
	if err := r.mosq.start(); err != nil {
		return err
	}
	s, err := newSubscriber(r.mosq.url(), r.opts.devices)
	if err != nil {
		return err
	}
	r.sub = s
	return nil
}

func appendConfig(path, text string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if strings.Contains(string(b), "[upstream.queue]") {
		return fmt.Errorf("%s already has [upstream.queue]; the bench would not know which replay_rate applies", path)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(text)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// startGateway execs `wellgate run -config FILE`.
func (e *env) startGateway(r *rig) error {
	r.started = time.Now()
	p, err := startProc(r.dir, "gateway", nil, e.bin, "run", "-config", r.config)
	if err != nil {
		return err
	}
	r.gw = p
	return nil
}

// waitAllData waits until every device's first DDATA has reached the subscriber.
func (r *rig) waitAllData(within time.Duration) error {
	select {
	case <-r.sub.all:
		return nil
	case <-r.gw.done:
		return fmt.Errorf("the gateway exited:\n%s", r.gw.tail())
	case <-time.After(within):
		return fmt.Errorf("DDATA from %d of %d devices within %v\n%s", r.sub.seenDevices(), r.opts.devices, within, r.gw.tail())
	}
}

// close stops everything, the gateway first (its NDEATH), mosquitto last.
func (r *rig) close() {
	r.gw.stop(30 * time.Second)
	r.sim.stop(10 * time.Second)
	if r.sub != nil {
		r.sub.close()
	}
	if r.mosq != nil {
		r.mosq.stop()
	}
	_ = os.RemoveAll(r.data) // a queue can be large; logs stay until the run ends
}
