package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/wellgate/wellgate/config"
	"github.com/wellgate/wellgate/internal/sim"
)

// simulateFlags are the flags of `wellgate simulate`: the fleet's and the written config's.
type simulateFlags struct {
	fleet sim.FleetOptions
	conf  sim.FleetConfig
	path  string
}

// parseSimulate decodes and checks the flags; an error is a usage error (exit 2).
func parseSimulate(args []string, stderr io.Writer) (simulateFlags, error) {
	var f simulateFlags
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&f.fleet.Devices, "devices", 10, "Modbus TCP devices, each on its own port")
	fs.IntVar(&f.fleet.OPCUA, "opcua", 0, "OPC UA servers, each with the same tags as variables")
	fs.IntVar(&f.fleet.Tags, "tags", 100, fmt.Sprintf("tags per device (1..%d)", sim.MaxTags))
	fs.Float64Var(&f.fleet.ChangePercent, "change", 10, "percent of each device's tags that change per second (0..100)")
	fs.StringVar(&f.fleet.Host, "listen", "127.0.0.1", "host to listen on")
	fs.IntVar(&f.fleet.FirstPort, "port", 0, "first port: Modbus device i listens on port+i, OPC UA server k on port+devices+k (0: ephemeral ports)")
	fs.DurationVar(&f.conf.Interval, "interval", time.Second, "poll_interval written into the config")
	fs.StringVar(&f.conf.Schedule, "schedule", config.ScheduleClock, `poll_schedule written into the config: "clock" or "start"`)
	fs.StringVar(&f.path, "config", "simulate.toml", "write the matching gateway config here")
	fs.StringVar(&f.conf.DataDir, "data", "./simulate-data", "gateway data_dir written into the config")
	fs.StringVar(&f.conf.Upstream, "upstream", "", "when set, an [upstream] section with servers = [URL]")
	fs.StringVar(&f.conf.Broker, "broker", "127.0.0.1:1883", `[broker] listen written into the config ("off": disabled)`)
	fs.StringVar(&f.conf.Web, "web", "127.0.0.1:8080", `[web] listen written into the config ("off": disabled)`)
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	var oe *sim.OptionError
	switch err := f.fleet.Check(); {
	case errors.As(err, &oe):
		return f, fmt.Errorf("-%v", oe)
	case err != nil:
		return f, err
	case fs.NArg() > 0:
		return f, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case f.conf.Interval <= 0:
		return f, fmt.Errorf("-interval %v: want a positive duration", f.conf.Interval)
	case f.conf.Schedule != config.ScheduleClock && f.conf.Schedule != config.ScheduleStart:
		return f, fmt.Errorf("-schedule %q: want %q or %q", f.conf.Schedule, config.ScheduleClock, config.ScheduleStart)
	case f.fleet.Host == "":
		return f, errors.New("-listen: want a host")
	case f.path == "" || f.conf.DataDir == "" || f.conf.Broker == "" || f.conf.Web == "":
		return f, errors.New("-config, -data, -broker and -web need a value")
	}
	f.conf.Tags = f.fleet.Tags
	return f, nil
}

// cmdSimulate serves simulated devices and writes the gateway config that polls them; it
// prints one "ready" line to stdout once both are done, and stops when ctx ends.
func cmdSimulate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, err := parseSimulate(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "wellgate simulate: %v\n", err)
		}
		return 2
	}
	fleet, err := sim.StartFleet(f.fleet)
	if err != nil {
		fmt.Fprintf(stderr, "wellgate simulate: %v\n", err)
		return 1
	}
	defer fleet.Close()
	f.conf.Modbus, f.conf.OPCUA = fleet.Addrs(), fleet.OPCUAEndpoints()
	if err := sim.WriteFleetConfig(f.path, f.conf); err != nil {
		fmt.Fprintf(stderr, "wellgate simulate: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "ready %d modbus devices, %d opcua servers, %d tags each; config %s\n",
		f.fleet.Devices, f.fleet.OPCUA, f.fleet.Tags, f.path)
	<-ctx.Done()
	if err := fleet.Close(); err != nil {
		fmt.Fprintf(stderr, "wellgate simulate: stop: %v\n", err)
	}
	return 0
}
