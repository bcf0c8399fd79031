package gateway

import (
	"errors"

	"github.com/wellgate/wellgate/config"
	"github.com/wellgate/wellgate/drivers/modbus"
)

// buildDrivers constructs the field drivers of the configuration.
func (g *Gateway) buildDrivers() error {
	var errs config.Errors
	mb, err := modbus.New(g.cfg, g.log.With("driver", "modbus"))
	if err != nil {
		var ce config.Errors
		if !errors.As(err, &ce) {
			return err
		}
		errs = append(errs, ce...)
	} else if len(mb.Devices()) > 0 {
		g.addDriver(mb)
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}
