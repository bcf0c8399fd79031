// Package all registers wellgate's built-in drivers. Import it for its side effect, with a
// blank import, wherever a configuration with real devices is loaded: cmd/wellgate, and the
// tests that load such files. Adding a driver is one line here.
package all

import (
	_ "github.com/wellgate/wellgate/drivers/modbus" // modbus-tcp, modbus-rtu
	_ "github.com/wellgate/wellgate/drivers/opcua"  // opcua
)
