package opcua

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/internal/backoff"
	"github.com/wellgate/wellgate/internal/logx"
)

// Reconnection.
const (
	backoffMin = 500 * time.Millisecond // first wait after a failed connect
	backoffMax = 30 * time.Second       // longest wait (or the interval, if longer)
	// stableAfter is how long a session must have lasted for its loss to be retried at once
	// and for the backoff to start over; a session that fails sooner backs off.
	stableAfter = 10 * time.Second
)

// tag is one validated tag.
type tag struct {
	index    int
	name     string
	node     NodeID
	declared drivers.Type // drivers.Unknown: the node's type decides
	typ      drivers.Type // the published type
	deadband float64
	writable bool
	min, max *float64
	where    string
	info     drivers.TagInfo
}

// label names the tag in log lines: its name and, when known, where it is configured.
func (t *tag) label() string {
	if t.where != "" {
		return t.name + " (" + t.where + ")"
	}
	return t.name
}

// devState is what the sink was last told about a device.
type devState uint8

const (
	stateUnknown devState = iota
	stateUp
	stateDown
)

// device is one OPC UA server with its tags and its session's supervisor.
type device struct {
	drv    *Driver
	name   string
	opts   DeviceOptions // with defaults applied
	policy string        // security policy URI
	mode   ua.MessageSecurityMode
	tags   []*tag
	byName map[string]*tag
	log    *slog.Logger
	rescan chan struct{}
	stats  drivers.Counters
	// schedule is when poll mode's polls start.
	schedule drivers.Schedule

	mu  sync.Mutex
	cur *conn // the live session, for writes; nil while there is none

	// Owned by the device goroutine.
	state    devState
	problems map[int]string // the last problem logged for each tag
}

func newDevice(d *Driver, o DeviceOptions) *device {
	dev := &device{drv: d, name: o.Name, opts: o, byName: map[string]*tag{}, rescan: make(chan struct{}, 1),
		log: d.log.With("device", o.Name), problems: map[int]string{}}
	dev.schedule, _ = drivers.ParseSchedule(o.PollSchedule)
	dev.policy, _ = ParseSecurityPolicy(o.SecurityPolicy)
	m, _ := ParseSecurityMode(o.SecurityMode)
	dev.mode = effectiveMode(dev.policy, m)
	for i, to := range o.Tags {
		node, _ := ParseNodeID(to.NodeID)
		declared, _ := ParseType(to.Type)
		t := &tag{index: i, name: to.Name, node: node, declared: declared, typ: declared, deadband: to.Deadband,
			writable: to.Writable, min: to.Min, max: to.Max, where: to.Where}
		if declared == drivers.Unknown {
			t.typ = d.types.get(o.Name, node.String())
		}
		t.info = drivers.TagInfo{Name: to.Name, Type: t.typ, Units: to.Units, Description: to.Description,
			Writable: to.Writable, Deadband: to.Deadband, DeadbandPercent: to.DeadbandPercent, MaxInterval: to.MaxInterval}
		dev.tags = append(dev.tags, t)
		dev.byName[t.name] = t
	}
	return dev
}

// interval is the interval in force: the scan rate override, else the configured one.
func (d *device) interval() time.Duration {
	if o := d.drv.scanRate.Load(); o > 0 {
		return time.Duration(o)
	}
	return d.opts.Interval
}

// run keeps a session to the server until ctx ends: it connects, serves, and after any
// failure closes everything and connects again with the shared jittered backoff.
func (d *device) run(ctx context.Context, sink drivers.Sink) {
	clk := d.drv.clock
	bo := backoff.Backoff{Min: backoffMin, Max: max(backoffMax, d.opts.Interval), Clock: clk}
	var old *orphan
	for ctx.Err() == nil {
		c, err := d.connect(ctx, old)
		old = nil
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			d.connectFailed(err, sink)
			if bo.Wait(ctx) != nil {
				return
			}
			continue
		}
		started := clk.Now()
		up, err := d.serve(ctx, c, sink)
		old = d.disconnect(c, err)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, errRescan):
			continue
		case !up: // the session never delivered: as good as a failed connect
			d.connectFailed(err, sink)
			if bo.Wait(ctx) != nil {
				return
			}
			continue
		}
		d.stats.Failed(errorKind(err), err, clk.Now())
		d.drv.limit.Log(d.log, slog.LevelWarn, "lost|"+d.name, "session lost; reconnecting", "err", logx.Err(err),
			"lasted", clk.Since(started).Round(time.Millisecond))
		if clk.Since(started) >= stableAfter {
			bo.Reset()
			continue // one attempt at once; the device goes down only if it fails
		}
		if bo.Wait(ctx) != nil {
			return
		}
	}
}

// connectFailed counts and logs a failed connect, and reports the device down.
func (d *device) connectFailed(err error, sink drivers.Sink) {
	d.stats.Failed(errorKind(err), err, d.drv.clock.Now())
	args := []any{"endpoint", d.opts.Endpoint, "err", logx.Err(err)}
	var untrusted *UntrustedError
	if errors.As(err, &untrusted) {
		args = append(args, "fingerprint", untrusted.Fingerprint,
			"add", fmt.Sprintf("server_fingerprint = %q", untrusted.Fingerprint))
		if d.opts.Where != "" {
			args = append(args, "to", d.opts.Where)
		}
	}
	if d.state != stateDown {
		d.markDown(sink, err, args)
		return
	}
	d.drv.limit.Log(d.log, slog.LevelWarn, "connect|"+d.name+"|"+errorKind(err), "still cannot connect", args...)
}

// markDown delivers a bad sample for every tag and reports the device down, once.
func (d *device) markDown(sink drivers.Sink, err error, logArgs []any) {
	if d.state == stateDown {
		return
	}
	now := d.drv.clock.Now()
	batch := make([]drivers.Sample, len(d.tags))
	for i, t := range d.tags {
		batch[i] = drivers.Sample{Device: d.name, Tag: t.name, Value: drivers.Null(t.typ), Quality: drivers.Bad, Time: now}
	}
	if len(batch) > 0 {
		sink.Samples(batch)
	}
	d.state = stateDown
	d.stats.SetUp(false)
	d.log.Warn("device is down", logArgs...)
	sink.DeviceState(d.name, false, err)
}

// markUp reports the device up once its first samples are delivered.
func (d *device) markUp(sink drivers.Sink) {
	if d.state == stateUp {
		return
	}
	d.state = stateUp
	d.stats.SetUp(true)
	d.log.Info("device is answering", "endpoint", d.opts.Endpoint)
	sink.DeviceState(d.name, true, nil)
}

// tagProblem logs a tag's problem when it differs from the last one logged for the tag.
func (d *device) tagProblem(t *tag, msg string) {
	if d.problems[t.index] == msg {
		return
	}
	d.problems[t.index] = msg
	if msg != "" {
		d.log.Warn("tag refused", "tag", t.label(), "problem", logx.Value(msg))
	}
}

// setConn publishes the live session for writers.
func (d *device) setConn(c *conn) {
	d.mu.Lock()
	d.cur = c
	d.mu.Unlock()
}

// conn returns the live session, or nil.
func (d *device) conn() *conn {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cur
}

// serve delivers the first readings, reports the device up and then follows the session
// (subscription or polls, keep-alive, watchdog) until it fails or ctx ends. up reports whether
// the first readings were delivered.
func (d *device) serve(ctx context.Context, c *conn, sink drivers.Sink) (up bool, err error) {
	d.setConn(c)
	defer d.setConn(nil)
	if err := c.pollOnce(ctx, sink); err != nil {
		return false, fmt.Errorf("reading the tags: %w", err)
	}
	d.markUp(sink)
	if d.opts.Mode == ModeSubscribe {
		if err := c.subscribe(ctx); err != nil {
			return true, fmt.Errorf("subscribing: %w", err)
		}
	}
	return true, c.follow(ctx, sink)
}
