package modbus

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/internal/backoff"
)

// Backoff and quarantine.
const (
	downAfter      = 2                      // failed cycles in a row before a device is reported down
	connBackoffMin = 250 * time.Millisecond // first wait after a failed connect
)

// endpoint is one TCP host:port or one serial port, with the devices behind it. One goroutine
// (run) owns the link and every device's poll state.
type endpoint struct {
	key       string
	link      link
	devices   []*device
	current   *device // the device whose request is in flight
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
		e.link = newTCPLink(first.addr, e.lateReply)
	} else {
		e.link = newRTULink(first.serial, e.lateReply, e.log)
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
			e.write(ctx, j)
		case <-e.rescan:
			e.reschedule(time.Now())
		case <-timer.C:
			e.poll(ctx, d, sink)
		}
	}
}

// reschedule brings every answering device's next poll to at most one (new) interval away:
// on the clock, the next whole multiple of the new interval.
func (e *endpoint) reschedule(now time.Time) {
	for _, d := range e.devices {
		if next, _ := d.schedule.Next(now, d.pollInterval(), now); d.state != stateDown && next.Before(d.next) {
			d.next = next
		}
	}
}

// poll runs one poll cycle of d and delivers its samples.
func (e *endpoint) poll(ctx context.Context, d *device, sink drivers.Sink) {
	now := time.Now()
	samples := drivers.NewBatch(len(d.info)) // the sink's once delivered; given back by its last holder
	for i := range d.info {
		t := &d.info[i]
		samples[i] = drivers.Sample{Device: d.name, Tag: t.Name, Value: drivers.Null(t.Type), Quality: drivers.Bad, Time: now}
	}
	err := e.readAll(ctx, d, samples)
	if ctx.Err() != nil {
		return
	}
	e.finish(d, samples, err, sink)
}

// readAll runs d's reads. It returns the error that ended the cycle early (the device did not
// answer, or answered outside the protocol), or nil; tags whose read got an exception stay bad.
func (e *endpoint) readAll(ctx context.Context, d *device, samples []drivers.Sample) error {
	for _, r := range d.plan() {
		data, err := e.read(ctx, d, r)
		if err == nil {
			if err := e.decode(d, r, data, samples); err != nil {
				return err
			}
			continue
		}
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case isIllegalAddress(err) && len(r.tags) > 1:
			if err := e.split(ctx, d, r, samples); err != nil {
				return err
			}
		case isException(err):
			d.log.Debug("exception", "err", err)
		default:
			return err
		}
	}
	return nil
}

// decode decodes the data of read r into samples; a length that does not fit is a protocol
// error (the link checked it already, so this is a second line of defence).
func (e *endpoint) decode(d *device, r *request, data []byte, samples []drivers.Sample) error {
	if err := decodeResponse(r, data, time.Now(), samples); err != nil {
		err = &requestError{op: readOp(r), err: protoErr(kindWrongLength, data, "wrong length in reply (%v)", err)}
		d.stats.Failed(kindWrongLength, err, time.Now())
		return err
	}
	return nil
}

// read sends one read request.
func (e *endpoint) read(ctx context.Context, d *device, r *request) ([]byte, error) {
	return e.do(ctx, d, readOp(r))
}

// do sends one request to d and keeps the books: counters, the debug log of protocol errors
// with the raw frame, and backing the endpoint off after a failed connect. Errors name the
// request (requestError). When ctx ends it returns ctx's error and counts nothing.
func (e *endpoint) do(ctx context.Context, d *device, o *op) ([]byte, error) {
	if err := e.link.connect(ctx, d.timeout); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		e.connFailed(err)
		d.stats.Failed(kindConnection, err, time.Now())
		return nil, err
	}
	if e.connFails > 0 {
		e.connRestored()
	}
	start := time.Now()
	e.current = d
	data, err := e.link.exchange(ctx, d.unit, o.pdu, d.timeout)
	e.current = nil
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err == nil {
		d.stats.Answered(time.Since(start))
		return data, nil
	}
	kind := errorKind(err)
	err = &requestError{op: o, err: err}
	d.stats.Failed(kind, err, time.Now())
	if f := frameHex(err); f != "" {
		d.log.Debug("protocol error", "kind", kind, "err", err, "frame", f, "request", fmt.Sprintf("%x", o.pdu))
	}
	return nil, err
}

// lateReply counts a frame the link discarded: on the device with the frame's unit id, the
// one that answered late, else on the device whose request was in flight.
func (e *endpoint) lateReply(unit byte, frame []byte, why error) {
	to := e.current
	for _, d := range e.devices {
		if d.unit == unit {
			to = d
			break
		}
	}
	if to == nil {
		to = e.devices[0]
	}
	first := to.stats.Count(kindLate) == 1
	args := []any{"unit", unit, "frame", fmt.Sprintf("%x", frame), "why", why}
	if e.current != nil {
		args = append(args, "during", e.current.name)
	}
	if first { // the rest at debug level: a slow device may send one per poll
		to.log.Warn("discarded a frame that answers no request in flight: a late reply? (raise the device's timeout)", args...)
		return
	}
	to.log.Debug("discarded a frame that answers no request in flight", args...)
}

// connFailed backs the endpoint off after a failed connect, with jitter, up to the smallest
// poll interval (and max_backoff) of its devices: all of them wait for the connection, so
// there is nobody to protect, and a line that comes back is used within one poll interval.
func (e *endpoint) connFailed(err error) {
	e.connFails++
	limit := time.Duration(1<<63 - 1)
	for _, d := range e.devices {
		limit = min(limit, d.pollInterval(), d.maxBackoff)
	}
	wait := backoff.Delay(connBackoffMin, e.connFails-1, max(limit, connBackoffMin))
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

// anyUp reports whether a device of the endpoint other than d is answering.
func (e *endpoint) anyUp(d *device) bool {
	for _, o := range e.devices {
		if o != d && o.state == stateUp {
			return true
		}
	}
	return false
}

// finish delivers a cycle's samples and updates the device's state and schedule.
func (e *endpoint) finish(d *device, samples []drivers.Sample, err error, sink drivers.Sink) {
	now := time.Now()
	if err == nil {
		e.answered(d, samples, sink, now)
		return
	}
	d.fails++
	d.lastKind = errorKind(err)
	if d.state != stateDown {
		sink.Samples(samples)
	} else {
		drivers.Release(samples) // a down device's bad tags are not news: nobody saw them
	}
	if d.fails >= downAfter && d.state != stateDown {
		d.state = stateDown
		d.stats.SetUp(false)
		why := errNoAnswer
		if !silentKind(d.lastKind) {
			why = errBadReplies
		}
		d.log.Warn(why.Error(), "err", err)
		sink.DeviceState(d.name, false, fmt.Errorf("%w: %w", why, err))
	}
	switch {
	case d.state == stateDown && e.anyUp(d):
		// Quarantine: a device that does not answer costs its neighbours a timeout per
		// probe, so it is probed at a growing interval, at most max_backoff apart.
		d.next = now.Add(backoff.Delay(d.pollInterval(), d.fails-downAfter, max(d.maxBackoff, d.pollInterval())))
	default:
		// Nobody else on the line answers: there is nobody to protect, and probing at the
		// poll rate brings the device back within one interval of its line returning.
		d.next, _ = d.schedule.Next(d.next, d.pollInterval(), now)
	}
}

// answered delivers a good cycle. A device that comes up on a line where no other device was
// answering shows that the line is back: every quarantined device on it is probed at once.
func (e *endpoint) answered(d *device, samples []drivers.Sample, sink drivers.Sink, now time.Time) {
	d.fails = 0
	d.stats.Good(now)
	sink.Samples(samples)
	if d.state != stateUp {
		lineBack := !e.anyUp(d)
		d.state = stateUp
		d.stats.SetUp(true)
		d.log.Info("device is answering")
		sink.DeviceState(d.name, true, nil)
		for _, o := range e.devices {
			if lineBack && o.state == stateDown {
				o.next = now
			}
		}
	}
	e.scheduleNext(d, now)
}

// scheduleNext sets when an answered device polls next (see drivers.Schedule). A poll that
// ended past the next start (it was slow, or waited for its neighbours on the line) skips to
// the following one; that is counted, and logged once at warning level. A failed poll is not
// counted: its timeouts are.
func (e *endpoint) scheduleNext(d *device, now time.Time) {
	prev := d.next
	next, overran := d.schedule.Next(prev, d.pollInterval(), now)
	d.next = next
	if !overran {
		return
	}
	switch took := now.Sub(prev).Round(time.Millisecond); {
	case d.stats.Count(kindOverrun) == 1:
		d.log.Warn("a poll ended after the next one was due; skipped to the one after (raise poll_interval)",
			"interval", d.pollInterval(), "took", took)
	case d.log.Enabled(context.Background(), slog.LevelDebug): // a poll's worth of garbage otherwise
		d.log.Debug("a poll ended after the next one was due", "interval", d.pollInterval(), "took", took)
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
