package modbus

import (
	"github.com/wellgate/wellgate/drivers"
)

// Status returns every device's counters (drivers.StatusReporter). Safe for concurrent use.
func (d *Driver) Status() []drivers.DeviceStatus {
	out := make([]drivers.DeviceStatus, len(d.devices))
	for i, dev := range d.devices {
		out[i] = dev.stats.Status(dev.name)
	}
	return out
}
