package gateway

import (
	"errors"
	"fmt"
	"io"

	"github.com/wellgate/wellgate/config"
	"github.com/wellgate/wellgate/drivers"
)

// buildDrivers builds, through the registry, every driver that has enabled devices in the
// configuration. Building opens nothing; if one fails, those built before it are closed.
func (g *Gateway) buildDrivers() error {
	var built []config.BuiltDriver
	for _, spec := range config.Drivers() {
		devs := g.cfg.Enabled(spec.Name)
		if len(devs) == 0 {
			continue
		}
		d, err := spec.Build(devs, g.log.With("driver", spec.Name))
		if err != nil {
			return errors.Join(fmt.Errorf("driver %s: %w", spec.Name, err), closeAll(asDrivers(built)))
		}
		built = append(built, d)
	}
	for _, d := range built {
		g.addDriver(d)
	}
	return nil
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
