//go:build load

package modbus

import "time"

// With the load build tag, every case of TestLateSlaveCostsNeighbourNothing runs 8 s: about
// a minute in all (make load, or go test -tags load -run TestLateSlave ./drivers/modbus/).
func init() { lateSlaveSpan = 8 * time.Second }
