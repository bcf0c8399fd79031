package opcua

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/internal/clock"
	"github.com/wellgate/wellgate/internal/logx"
)

// Driver reads the tags of one or more OPC UA servers, one supervised session per device.
type Driver struct {
	log      *slog.Logger
	clock    clock.Clock
	devices  []*device
	byName   map[string]*device
	ids      identities
	types    *typeCache
	limit    *logx.Limiter
	scanRate atomic.Int64 // ns; > 0 overrides every device's interval (Node Control/Scan Rate)

	mu      sync.Mutex
	started bool
	closed  bool
	cancel  context.CancelFunc
	done    chan struct{} // closed when Run's device goroutines have returned

	closeOnce sync.Once
	closeErr  error
}

var (
	_ drivers.Driver         = (*Driver)(nil)
	_ drivers.Describer      = (*Driver)(nil)
	_ drivers.Writer         = (*Driver)(nil)
	_ drivers.StatusReporter = (*Driver)(nil)
)

// closeTimeout bounds Close: how long it waits for the sessions to close.
const closeTimeout = 10 * time.Second

// Problems is every problem New found in its options, device by device.
type Problems []DeviceProblem

// DeviceProblem is a Problem of a named device.
type DeviceProblem struct {
	Device string
	Tag    string // "" for the device itself
	Problem
}

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		where := "device " + fmt.Sprintf("%q", p.Device)
		if p.Tag != "" {
			where += fmt.Sprintf(": tag %q", p.Tag)
		}
		lines[i] = where + ": " + p.Msg
	}
	return strings.Join(lines, "\n")
}

// New checks every device's options (DeviceOptions.Check) and builds the driver; it opens
// nothing. It returns Problems listing every problem found.
func New(opts Options, log *slog.Logger) (*Driver, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	clk := opts.Clock
	if clk == nil {
		clk = clock.Real
	}
	d := &Driver{log: log, clock: clk, byName: map[string]*device{}, types: loadTypeCache(opts.StateDir, log),
		limit: &logx.Limiter{Every: 5 * time.Minute, Clock: clk}, done: make(chan struct{})}
	var probs Problems
	for i := range opts.Devices {
		o := &opts.Devices[i]
		for _, p := range o.Check() {
			dp := DeviceProblem{Device: o.Name, Problem: p}
			if p.Tag >= 0 {
				dp.Tag = o.Tags[p.Tag].Name
			}
			probs = append(probs, dp)
		}
		if _, dup := d.byName[o.Name]; dup && o.Name != "" {
			probs = append(probs, DeviceProblem{Device: o.Name, Problem: Problem{Tag: -1, Key: "name", Msg: "device name is used twice"}})
		}
		dev := newDevice(d, o.withDefaults())
		d.devices = append(d.devices, dev)
		d.byName[dev.name] = dev
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return d, nil
}

// Run runs every device's session until ctx is cancelled or Close is called, then returns
// nil. Servers that cannot be reached are retried with backoff; Run never fails because of
// them. Run is called once.
func (d *Driver) Run(ctx context.Context, sink drivers.Sink) error {
	d.mu.Lock()
	if d.started {
		d.mu.Unlock()
		return errors.New("opcua: Run called twice")
	}
	d.started = true
	if d.closed {
		d.mu.Unlock()
		close(d.done)
		return nil
	}
	ctx, d.cancel = context.WithCancel(ctx)
	d.mu.Unlock()
	defer close(d.done)
	var wg sync.WaitGroup
	for _, dev := range d.devices {
		wg.Go(func() { dev.run(ctx, sink) })
	}
	wg.Wait()
	return nil
}

// Close stops Run's sessions, closing each politely within its timeout, and waits for them,
// at most closeTimeout. It is idempotent: later calls return the first call's result.
func (d *Driver) Close() error {
	d.closeOnce.Do(func() {
		d.mu.Lock()
		d.closed = true
		started, cancel := d.started, d.cancel
		d.mu.Unlock()
		if !started {
			return
		}
		if cancel != nil {
			cancel()
		}
		t := time.NewTimer(closeTimeout)
		defer t.Stop()
		select {
		case <-d.done:
		case <-t.C:
			d.closeErr = fmt.Errorf("opcua: sessions did not close within %v", closeTimeout)
		}
	})
	return d.closeErr
}

// SetScanRate makes every device use rate as its interval from now on (polls at once;
// subscriptions are created again with the new publishing interval); 0 restores each device's
// configured interval. It is safe to call while Run runs.
func (d *Driver) SetScanRate(rate time.Duration) {
	d.scanRate.Store(max(int64(rate), 0))
	for _, dev := range d.devices {
		select {
		case dev.rescan <- struct{}{}:
		default: // a rescan is already pending
		}
	}
}

// Devices describes every device and tag (drivers.Describer). The status page shows each
// device's endpoint with its security and mode ("opc.tcp://10.0.0.30:4840 Basic256Sha256
// SignAndEncrypt subscribe") and each tag's node id as configured, with the type it is
// converted to when one is set ("ns=2;s=Tank.Level (Float)"), so that a technician can match
// a row with the server's address space and the configuration file.
func (d *Driver) Devices() []drivers.DeviceInfo {
	out := make([]drivers.DeviceInfo, len(d.devices))
	for i, dev := range d.devices {
		tags := make([]drivers.TagInfo, len(dev.tags))
		for j, t := range dev.tags {
			tags[j] = t.info
			tags[j].Address = dev.tagAddress(t)
		}
		out[i] = drivers.DeviceInfo{Name: dev.name, Driver: "opcua", Endpoint: dev.endpointText(), Tags: tags}
	}
	return out
}

// endpointText is the device's endpoint, security policy, mode (when the policy is not None)
// and acquisition mode, for people.
func (dev *device) endpointText() string {
	parts := []string{dev.opts.Endpoint, policyName(dev.policy)}
	if dev.policy != ua.SecurityPolicyURINone {
		parts = append(parts, modeName(dev.mode))
	}
	return strings.Join(append(parts, dev.opts.Mode), " ")
}

// tagAddress is a tag's node id as configured and, when the tag sets one, the type it is
// published as.
func (dev *device) tagAddress(t *tag) string {
	node := dev.opts.Tags[t.index].NodeID
	if t.declared == drivers.Unknown {
		return node
	}
	return node + " (" + t.declared.String() + ")"
}
