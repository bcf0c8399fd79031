// Command wellgate is the wellsite OT-to-MQTT edge gateway: it polls Modbus devices, publishes
// every tag as Sparkplug B into its embedded MQTT broker and to an upstream Ignition broker,
// and serves a local status page.
//
//	wellgate run   -config FILE     run the gateway
//	wellgate check -config FILE     validate FILE (exit 0 valid, 1 not); -plan prints the poll plan
//	wellgate demo                   run against a built-in simulated wellsite
//	wellgate simulate [flags]       serve simulated devices and write the config that polls them
//	wellgate version
package main

import (
	"os"

	_ "github.com/wellgate/wellgate/drivers/all" // the built-in drivers register themselves
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }
