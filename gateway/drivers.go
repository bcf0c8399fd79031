package gateway

import (
	"errors"
	"fmt"
	"io"

	"github.com/wellgate/wellgate/config"
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
			return errors.Join(fmt.Errorf("driver %s: %w", spec.Name, err), closeAll(built))
		}
		built = append(built, d)
	}
	for _, d := range built {
		g.addDriver(d)
	}
	return nil
}

// closeAll closes the drivers that can be closed.
func closeAll(ds []config.BuiltDriver) error {
	var errs []error
	for _, d := range ds {
		if c, ok := d.(io.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}
