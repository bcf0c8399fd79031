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

// keptConfig is what the gateway keeps of cfg once the drivers are built from it: every
// section, and of each device the common keys, but of its tags only those the gateway reads
// later: every tag of a disabled device (the page lists them) and the tags that set flat_qos
// or flat_retain (the flat output). The drivers keep their own descriptions of the tags; the
// [[device.tag]] tables of a 40,000-tag file, with the drivers' settings they point to, are
// garbage once the gateway is built.
func keptConfig(cfg *config.Config) *config.Config {
	kept := *cfg
	kept.Devices = make([]config.Device, len(cfg.Devices))
	for i, d := range cfg.Devices {
		var tags []config.Tag
		for _, t := range d.Tags {
			if d.Disabled || t.FlatQoS != nil || t.FlatRetain != nil {
				t.Settings = nil
				tags = append(tags, t)
			}
		}
		d.Tags = tags
		kept.Devices[i] = d
	}
	return &kept
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
