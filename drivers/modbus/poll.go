package modbus

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/goburrow/modbus"

	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/internal/backoff"
)

// Backoff and quarantine.
const (
	downAfter      = 2                      // failed cycles in a row before a device is reported down
	connBackoffMin = 250 * time.Millisecond // first wait after a failed connect
	backoffMax     = 30 * time.Second       // longest wait (or the poll interval, if longer)
)

// endpoint is one TCP host:port or one serial port, with the devices behind it. One goroutine
// (run) owns the link and every device's poll state.
type endpoint struct {
	key       string
	link      link
	devices   []*device
	jobs      chan *writeJob
	rescan    chan struct{} // the scan rate changed: reschedule
	stopped   chan struct{} // closed when run returns
	log       *slog.Logger
	connFails int       // failed connects in a row
	notBefore time.Time // no request before this (connect backoff)
}

func newEndpoint(first *device, log *slog.Logger) *endpoint {
	e := &endpoint{key: first.endpoint, jobs: make(chan *writeJob), stopped: make(chan struct{}),
		rescan: make(chan struct{}, 1),
		log:    log.With("endpoint", first.endpoint)}
	if first.driver == NameTCP {
		e.link = newTCPLink(first.addr)
	} else {
		e.link = newRTULink(first.serial)
	}
	return e
}

// run polls the endpoint's devices, each at its interval, and serves writes, until ctx ends.
func (e *endpoint) run(ctx context.Context, sink drivers.Sink) {
	defer close(e.stopped)
	defer e.link.close()
	now := time.Now()
	for _, d := range e.devices {
		d.next = now
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		d := e.devices[0]
		for _, o := range e.devices[1:] {
			if o.next.Before(d.next) {
				d = o
			}
		}
		timer.Reset(time.Until(later(d.next, e.notBefore)))
		select {
		case <-ctx.Done():
			return
		case j := <-e.jobs:
			e.write(j)
		case <-e.rescan:
			e.reschedule(time.Now())
		case <-timer.C:
			e.poll(ctx, d, sink)
		}
	}
}

// reschedule brings every answering device's next poll to at most one (new) interval away.
func (e *endpoint) reschedule(now time.Time) {
	for _, d := range e.devices {
		if next := now.Add(d.pollInterval()); d.state != stateDown && next.Before(d.next) {
			d.next = next
		}
	}
}

// poll runs one poll cycle of d and delivers its samples.
func (e *endpoint) poll(ctx context.Context, d *device, sink drivers.Sink) {
	now := time.Now()
	samples := make([]drivers.Sample, len(d.tags))
	for i, t := range d.tags {
		samples[i] = drivers.Sample{Device: d.name, Tag: t.name, Value: drivers.Null(t.typ), Quality: drivers.Bad, Time: now}
	}
	err := e.readAll(ctx, d, samples)
	if ctx.Err() != nil {
		return
	}
	e.finish(d, samples, err, sink)
}

// readAll runs d's reads. It returns the communication error that ended the cycle early, or
// nil; tags whose read got an exception stay bad.
func (e *endpoint) readAll(ctx context.Context, d *device, samples []drivers.Sample) error {
	for _, r := range d.plan() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		data, err := e.read(d, r)
		if err == nil {
			err = decodeResponse(r, data, time.Now(), samples)
			if err != nil {
				d.stats.failed(kindGarbage, err, time.Now())
				e.link.close()
				return err
			}
			continue
		}
		switch {
		case isIllegalAddress(err) && len(r.tags) > 1:
			if err := e.split(d, r, samples); err != nil {
				return err
			}
		case errorKind(err) == kindException:
			d.log.Debug("exception", "table", r.table.String(), "start", r.start, "count", r.count, "err", err)
		default:
			return err
		}
	}
	return nil
}

// read sends one read request.
func (e *endpoint) read(d *device, r *request) ([]byte, error) {
	return e.do(d, func(c modbus.Client) ([]byte, error) {
		switch r.table {
		case coils:
			return c.ReadCoils(r.start, r.count)
		case discreteInputs:
			return c.ReadDiscreteInputs(r.start, r.count)
		case inputRegisters:
			return c.ReadInputRegisters(r.start, r.count)
		}
		return c.ReadHoldingRegisters(r.start, r.count)
	})
}

// do sends one request to d and keeps the books: counters, closing the link after any error
// that is not a Modbus exception, and backing the endpoint off after a failed connect.
func (e *endpoint) do(d *device, req func(modbus.Client) ([]byte, error)) ([]byte, error) {
	e.link.setTimeout(d.timeout)
	if err := e.link.connect(); err != nil {
		e.connFailed(err)
		d.stats.failed(kindConnection, err, time.Now())
		return nil, err
	}
	if e.connFails > 0 {
		e.connRestored()
	}
	start := time.Now()
	data, err := req(e.link.client(d.unit))
	if err == nil {
		d.stats.ok(time.Since(start))
		return data, nil
	}
	kind := errorKind(err)
	d.stats.failed(kind, err, time.Now())
	if kind != kindException {
		e.link.close()
	}
	return nil, err
}

// connFailed backs the endpoint off after a failed connect, with jitter.
func (e *endpoint) connFailed(err error) {
	e.connFails++
	wait := backoff.Delay(connBackoffMin, e.connFails-1, backoffMax)
	e.notBefore = time.Now().Add(wait)
	if e.connFails == 1 {
		e.log.Warn("cannot connect", "err", err, "retry_in", wait.Round(time.Millisecond))
	}
}

// connRestored ends the backoff and lets devices that failed only for want of a connection out
// of quarantine at once.
func (e *endpoint) connRestored() {
	e.log.Info("connected", "after_failures", e.connFails)
	e.connFails = 0
	now := time.Now()
	for _, d := range e.devices {
		if d.state == stateDown && d.lastKind == kindConnection {
			d.next = now
		}
	}
}

// finish delivers a cycle's samples and updates the device's state and schedule.
func (e *endpoint) finish(d *device, samples []drivers.Sample, err error, sink drivers.Sink) {
	now := time.Now()
	if err == nil {
		d.fails = 0
		d.stats.cycle(true, now)
		sink.Samples(samples)
		if d.state != stateUp {
			d.state = stateUp
			d.stats.setUp(true)
			d.log.Info("device is answering")
			sink.DeviceState(d.name, true, nil)
		}
		d.next = nextTick(d.next, d.pollInterval(), now)
		return
	}
	d.fails++
	d.lastKind = errorKind(err)
	d.stats.cycle(false, now)
	if d.state != stateDown {
		sink.Samples(samples)
	}
	if d.fails >= downAfter && d.state != stateDown {
		d.state = stateDown
		d.stats.setUp(false)
		d.log.Warn("device is not answering", "err", err)
		sink.DeviceState(d.name, false, fmt.Errorf("%w: %w", errNoAnswer, err))
	}
	if d.state == stateDown {
		d.next = now.Add(backoff.Delay(d.pollInterval(), d.fails-downAfter, max(backoffMax, d.pollInterval())))
		return
	}
	d.next = nextTick(d.next, d.pollInterval(), now)
}

// nextTick is the first multiple of interval after prev that is later than now.
func nextTick(prev time.Time, interval time.Duration, now time.Time) time.Time {
	next := prev.Add(interval)
	if next.After(now) {
		return next
	}
	return prev.Add((now.Sub(prev)/interval + 1) * interval)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
