package gateway

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/wellgate/wellgate/config"
	"github.com/wellgate/wellgate/drivers"
)

// deviceSet is what the [[device]] tables of one configuration build: the drivers, the devices
// they describe, in the file's order of drivers, and the drivers that accept writes, by device.
type deviceSet struct {
	drivers []drivers.Driver
	devices []drivers.DeviceInfo
	writers map[string]drivers.Writer
}

// buildDevices builds, through the registry, every driver that has enabled devices in cfg.
// Building opens nothing; if one fails, those built before it are closed.
func buildDevices(cfg *config.Config, log *slog.Logger) (deviceSet, error) {
	var built []config.BuiltDriver
	for _, spec := range config.Drivers() {
		devs := cfg.Enabled(spec.Name)
		if len(devs) == 0 {
			continue
		}
		d, err := spec.Build(devs, log.With("driver", spec.Name))
		if err != nil {
			return deviceSet{}, errors.Join(fmt.Errorf("driver %s: %w", spec.Name, err), closeAll(asDrivers(built)))
		}
		built = append(built, d)
	}
	set := deviceSet{writers: make(map[string]drivers.Writer)}
	for _, d := range built {
		set.drivers = append(set.drivers, d)
		for _, dev := range d.Devices() {
			set.devices = append(set.devices, dev)
			if w, ok := d.(drivers.Writer); ok {
				set.writers[dev.Name] = w
			}
		}
	}
	return set, nil
}

func asDrivers(built []config.BuiltDriver) []drivers.Driver {
	ds := make([]drivers.Driver, len(built))
	for i, d := range built {
		ds[i] = d
	}
	return ds
}

// closeAll closes the drivers that can be closed (idempotent: drivers' Close is).
func closeAll(ds []drivers.Driver) error {
	var errs []error
	for _, d := range ds {
		if c, ok := d.(io.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}
