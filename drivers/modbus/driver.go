package modbus

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/wellgate/wellgate/config"
	"github.com/wellgate/wellgate/drivers"
)

// Driver polls every Modbus TCP and RTU device of a configuration.
type Driver struct {
	log       *slog.Logger
	devices   []*device
	byName    map[string]*device
	endpoints []*endpoint
	byDevice  map[*device]*endpoint

	mu   sync.Mutex
	sink drivers.Sink // set by Run

	scanRate atomic.Int64 // ns; > 0 overrides every device's poll interval (Node Control/Scan Rate)
}

var (
	_ drivers.Driver         = (*Driver)(nil)
	_ drivers.Describer      = (*Driver)(nil)
	_ drivers.Writer         = (*Driver)(nil)
	_ drivers.StatusReporter = (*Driver)(nil)
)

// New builds the driver for every device in cfg whose Driver is "modbus-tcp" or "modbus-rtu"
// and that is not Disabled. It parses and validates every tag (address notation, type, byte
// order, length, scale, bit index, table and type fit, writability) without any I/O and returns
// all problems at once as config.Errors naming file, line, device and tag.
func New(cfg *config.Config, log *slog.Logger) (*Driver, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Driver{log: log, byName: map[string]*device{}, byDevice: map[*device]*endpoint{}}
	var errs config.Errors
	byKey := map[string]*endpoint{}
	for i := range cfg.Devices {
		cd := &cfg.Devices[i]
		if cd.Disabled || (cd.Driver != config.DriverModbusTCP && cd.Driver != config.DriverModbusRTU) {
			continue
		}
		dev, derrs := parseDevice(cfg, cd, d.log)
		errs = append(errs, derrs...)
		if _, dup := d.byName[dev.name]; dup && dev.name != "" {
			errs = append(errs, cfg.DeviceError(cd, "device name is used twice"))
			continue
		}
		e := byKey[dev.endpoint]
		if e == nil {
			e = newEndpoint(dev, d.log)
			byKey[dev.endpoint] = e
			d.endpoints = append(d.endpoints, e)
		} else if dev.driver == config.DriverModbusRTU && e.devices[0].serial != dev.serial {
			errs = append(errs, cfg.DeviceError(cd, "port %s is shared with device %q, whose baud, data_bits, parity or stop_bits differ",
				dev.serial.port, e.devices[0].name))
		}
		e.devices = append(e.devices, dev)
		d.byDevice[dev] = e
		d.devices = append(d.devices, dev)
		d.byName[dev.name] = dev
		dev.override = &d.scanRate
		dev.replan()
	}
	if len(errs) > 0 {
		slices.SortStableFunc(errs, func(a, b *config.Error) int { return cmp.Compare(a.Line, b.Line) })
		return nil, errs
	}
	return d, nil
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

// Run polls every device until ctx is cancelled, then returns nil. Devices that cannot be
// reached are retried with backoff; Run never fails because of them. Run is called once.
func (d *Driver) Run(ctx context.Context, sink drivers.Sink) error {
	d.mu.Lock()
	d.sink = sink
	d.mu.Unlock()
	if len(d.endpoints) == 0 {
		<-ctx.Done()
		return nil
	}
	g, ctx := errgroup.WithContext(ctx)
	for _, e := range d.endpoints {
		g.Go(func() error {
			e.run(ctx, sink)
			return nil
		})
	}
	return g.Wait()
}

// Devices describes every device and tag (drivers.Describer).
func (d *Driver) Devices() []drivers.DeviceInfo {
	out := make([]drivers.DeviceInfo, len(d.devices))
	for i, dev := range d.devices {
		tags := make([]drivers.TagInfo, len(dev.tags))
		for j, t := range dev.tags {
			tags[j] = t.info
		}
		out[i] = drivers.DeviceInfo{Name: dev.name, Driver: dev.driver, Tags: tags}
	}
	return out
}
