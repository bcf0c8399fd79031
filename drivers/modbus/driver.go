package modbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/wellgate/wellgate/drivers"
)

// closeWait bounds Close: a request in flight is interrupted when the driver stops (a TCP
// connection is closed under its read, a serial read ends within its slice), so the endpoints
// stop within milliseconds; the bound leaves room for a loaded machine.
const closeWait = 2 * time.Second

// Driver polls Modbus TCP and RTU devices.
type Driver struct {
	log       *slog.Logger
	devices   []*device
	byName    map[string]*device
	endpoints []*endpoint
	byDevice  map[*device]*endpoint
	closeWait time.Duration // how long Close waits for the endpoints to stop

	mu   sync.Mutex
	sink drivers.Sink  // set by Run
	done chan struct{} // made by Run, closed when it returns

	closeOnce sync.Once
	closing   chan struct{} // closed by Close

	scanRate atomic.Int64 // ns; > 0 overrides every device's poll interval (Node Control/Scan Rate)
}

var (
	_ drivers.Driver         = (*Driver)(nil)
	_ drivers.Describer      = (*Driver)(nil)
	_ drivers.Writer         = (*Driver)(nil)
	_ drivers.StatusReporter = (*Driver)(nil)
	_ drivers.ScanRater      = (*Driver)(nil)
	_ drivers.Planner        = (*Driver)(nil)
)

// New builds the driver for the devices of opts. It checks every device and tag (address
// notation, type, byte order, length, scale, bit index, table and type fit, writability, read
// limits, serial settings) with the rules the configuration reports with lines, without any
// I/O, and returns every problem at once.
func New(opts Options, log *slog.Logger) (*Driver, error) {
	return newDriver(len(opts.Devices), func(i int) *DeviceOptions { return &opts.Devices[i] }, log)
}

// newDriver is New for n devices whose options returns one at a time, so that a
// caller can build each device's options when it is needed and drop them once it is built.
func newDriver(n int, options func(i int) *DeviceOptions, log *slog.Logger) (*Driver, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Driver{log: log, byName: map[string]*device{}, byDevice: map[*device]*endpoint{},
		closing: make(chan struct{}), closeWait: closeWait}
	var errs []error
	byKey := map[string]*endpoint{}
	for i := range n {
		dev, err := buildDevice(options(i), d.log)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		e := byKey[dev.endpoint]
		if e == nil {
			e = newEndpoint(dev, d.log)
			byKey[dev.endpoint] = e
			d.endpoints = append(d.endpoints, e)
		} else if _, msg := dev.sharesBusWith(e.devices[0]); msg != "" {
			errs = append(errs, fmt.Errorf("device %q: %s", dev.name, msg))
			continue
		}
		e.devices = append(e.devices, dev)
		d.byDevice[dev] = e
		d.devices = append(d.devices, dev)
		d.byName[dev.name] = dev
		dev.override = &d.scanRate
		dev.replan()
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return d, nil
}

// buildDevice makes one device and its tags, or returns an error naming every problem.
func buildDevice(o *DeviceOptions, log *slog.Logger) (*device, error) {
	dev, ps := newDevice(o, log)
	var errs []error
	if o.PollInterval <= 0 || o.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("device %q: poll interval and timeout must be greater than 0", o.Name))
	}
	if s, err := drivers.ParseSchedule(o.PollSchedule); err != nil {
		errs = append(errs, fmt.Errorf("device %q: %w", o.Name, err))
	} else {
		dev.schedule = s
	}
	for _, p := range ps {
		errs = append(errs, fmt.Errorf("device %q: %s", o.Name, p.msg))
	}
	dev.tags = make([]tag, len(o.Tags))
	dev.info = make([]drivers.TagInfo, len(o.Tags))
	// Every tag's Address, end to end, becomes one string for the device; 40 bytes a tag
	// hold most ("400001 (hr:0, 1 register, int16)" is 33).
	addrs := make([]byte, 0, 40*len(o.Tags))
	ends := make([]int32, len(o.Tags))
	var x tagExtra
	for j := range o.Tags {
		t := &dev.tags[j]
		t.info, t.index = &dev.info[j], int32(j)
		ps, ok := newTag(&o.Tags[j], dev, t, &x)
		for _, p := range ps {
			errs = append(errs, fmt.Errorf("device %q: tag %q: %s", o.Name, o.Tags[j].Name, p.msg))
		}
		if !ok || len(errs) > 0 {
			continue // the device is not built
		}
		if t.needsExtra(&x) {
			kept := x
			t.x = &kept
		}
		addrs = appendAddress(addrs, dev, t)
		ends[j] = int32(len(addrs))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	all, start := string(addrs), int32(0)
	for j, end := range ends {
		dev.info[j].Address, start = all[start:end], end
	}
	dev.indexNames()
	return dev, nil
}

// SetScanRate makes every device poll at rate from its next poll on; 0 restores each
// device's configured poll_interval. It is safe to call while Run runs.
func (d *Driver) SetScanRate(rate time.Duration) {
	d.scanRate.Store(max(int64(rate), 0))
	for _, e := range d.endpoints {
		select {
		case e.rescan <- struct{}{}:
		default: // a rescan is already pending
		}
	}
}

// Run polls every device until ctx is cancelled or Close is called, then returns nil. Devices
// that cannot be reached are retried with backoff; Run never fails because of them. Run is
// called once.
func (d *Driver) Run(ctx context.Context, sink drivers.Sink) error {
	done := make(chan struct{})
	defer close(done)
	d.mu.Lock()
	d.sink, d.done = sink, done
	d.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func(ctx context.Context) {
		select {
		case <-d.closing:
			cancel()
		case <-ctx.Done():
		}
	}(ctx)
	if len(d.endpoints) == 0 {
		<-ctx.Done()
		return nil
	}
	// Every device's poll batch may be in flight at once (all on the same whole second).
	d.reserveBatches(drivers.ReserveBatches)
	defer d.reserveBatches(drivers.UnreserveBatches)
	g, ctx := errgroup.WithContext(ctx)
	for _, e := range d.endpoints {
		g.Go(func() error {
			e.run(ctx, sink)
			return nil
		})
	}
	return g.Wait()
}

// reserveBatches calls reserve with the batch size of each device.
func (d *Driver) reserveBatches(reserve func(n int)) {
	for _, e := range d.endpoints {
		for _, dev := range e.devices {
			reserve(len(dev.info))
		}
	}
}

// Close stops Run, if it runs, and waits until every endpoint has closed its connection or
// port: requests in flight are interrupted, not waited for; Close gives up after closeWait.
// It is idempotent; a Run that starts after Close returns at once.
func (d *Driver) Close() error {
	d.closeOnce.Do(func() { close(d.closing) })
	d.mu.Lock()
	done := d.done
	d.mu.Unlock()
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-time.After(d.closeWait):
		return fmt.Errorf("modbus: endpoints still busy %v after close", d.closeWait)
	}
}

// Devices describes every device and tag (drivers.Describer). Each device's Tags are the
// driver's own description, the same slice at every call: read only.
func (d *Driver) Devices() []drivers.DeviceInfo {
	out := make([]drivers.DeviceInfo, len(d.devices))
	for i, dev := range d.devices {
		out[i] = drivers.DeviceInfo{Name: dev.name, Driver: dev.driver, Endpoint: describeEndpoint(dev), Tags: dev.info}
	}
	return out
}

// describeEndpoint says how a device is reached, for the status page: "10.0.0.5:502 unit 1",
// "/dev/ttyUSB0 9600 8E1 unit 3".
func describeEndpoint(d *device) string {
	if d.driver == NameRTU {
		s := d.serial
		return fmt.Sprintf("%s %d %d%s%d unit %d", s.Port, s.Baud, s.DataBits, s.Parity, s.StopBits, d.unit)
	}
	return fmt.Sprintf("%s unit %d", d.addr, d.unit)
}

// describeAddress says where a tag's value comes from, for the status page:
// "400011 (hr:10, 2 registers, float32 CDAB)", "000001 (co:0, bool)".
func describeAddress(d *device, t *tag) string {
	return string(appendAddress(nil, d, t))
}

// appendAddress appends describeAddress's text to b: the driver builds every tag's text of a
// device into one buffer, once.
func appendAddress(b []byte, d *device, t *tag) []byte {
	b = address{table: t.table, offset: t.start, bit: int(t.bit), zeroBased: d.zeroBased}.appendTo(b)
	b = append(b, " ("...)
	b = append(b, t.table.prefix()...)
	b = append(b, ':')
	b = strconv.AppendUint(b, uint64(t.start), 10)
	if !t.table.isBit() && t.bit < 0 {
		b = append(b, ", "...)
		b = strconv.AppendUint(b, uint64(t.size), 10)
		b = append(b, " register"...)
		if t.size != 1 {
			b = append(b, 's')
		}
	}
	b = append(b, ", "...)
	b = append(b, t.kind.String()...)
	if t.size > 1 && t.kind != kString {
		b = append(b, ' ')
		b = append(b, t.order.String()...)
	}
	return append(b, ')')
}
