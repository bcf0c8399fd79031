package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	mbserver "github.com/simonvetter/modbus"
)

// simulateMain is the stand-in for `wellgate simulate`, used only while the binary lacks that
// command: the same flags and ready line, Modbus TCP devices only. The bench runs it as its
// own process (this program again), so that its CPU is never the gateway's or the harness's.
func simulateMain(args []string) int {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	devices := fs.Int("devices", 1, "Modbus TCP devices")
	tags := fs.Int("tags", 10, "int16 holding registers per device")
	change := fs.Float64("change", 10, "percent of the tags changing per second")
	interval := fs.Duration("interval", time.Second, "poll_interval of the devices")
	schedule := fs.String("schedule", "clock", "poll_schedule: clock or start")
	opcua := fs.Int("opcua", 0, "OPC UA servers (not simulated by this stand-in)")
	host := fs.String("listen", "127.0.0.1", "host the devices listen on")
	port := fs.Int("port", 0, "first device's port (0: free ports)")
	cfgPath := fs.String("config", "", "gateway configuration file to write")
	data := fs.String("data", "", "the gateway's data_dir")
	upstream := fs.String("upstream", "", "upstream MQTT server URL")
	broker := fs.String("broker", "127.0.0.1:0", "embedded broker listen address, or off")
	web := fs.String("web", "off", "status page listen address, or off")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *opcua != 0 || *cfgPath == "" || *data == "" || *devices < 1 || *tags < 1 || *tags > 10000 {
		fmt.Fprintln(os.Stderr, "simulate: needs -config and -data, -devices ≥ 1, 1 ≤ -tags ≤ 10000, no -opcua")
		return 2
	}
	devs := make([]*simDevice, *devices)
	addrs := make([]string, *devices)
	for i := range devs {
		devs[i] = &simDevice{reg: make([]uint16, *tags)}
		for j := range devs[i].reg {
			devs[i].reg[j] = uint16(j)
		}
		addrs[i] = net.JoinHostPort(*host, strconv.Itoa(*port+i))
		if *port == 0 {
			a, err := freePort()
			if err != nil {
				fmt.Fprintln(os.Stderr, "simulate:", err)
				return 1
			}
			addrs[i] = a
		}
		srv, err := mbserver.NewServer(&mbserver.ServerConfiguration{URL: "tcp://" + addrs[i],
			Timeout: time.Minute, MaxClients: 4, Logger: log.New(io.Discard, "", 0)}, devs[i])
		if err == nil {
			err = srv.Start()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "simulate:", err)
			return 1
		}
		defer func() { _ = srv.Stop() }()
	}
	conf := simConfig(*data, *upstream, *broker, *web, *interval, *schedule, *tags, addrs)
	if err := os.WriteFile(*cfgPath, []byte(conf), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "simulate:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Printf("ready %d modbus devices, 0 opcua servers, %d tags each; config %s\n", *devices, *tags, *cfgPath)
	changeLoop(ctx, devs, *tags, *change)
	return 0
}

// changeLoop changes change % of each device's tags per second, in 10 steps a second, going
// round the registers so that every change is a new value that a poll can see.
func changeLoop(ctx context.Context, devs []*simDevice, tags int, change float64) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	per := float64(tags) * change / 100 / 10
	var acc float64
	next := 0
	for {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
		acc += per
		k := int(acc)
		acc -= float64(k)
		for _, d := range devs {
			d.mu.Lock()
			for i := range k {
				d.reg[(next+i)%tags]++
			}
			d.mu.Unlock()
		}
		next = (next + k) % tags
	}
}

func simConfig(data, upstream, broker, web string, interval time.Duration, schedule string, tags int, addrs []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[gateway]\ndata_dir = %q\nlog_level = \"warn\"\n[sparkplug]\ngroup_id = %q\nedge_node_id = \"Bench\"\naliases = true\n", data, group)
	if broker == "off" {
		b.WriteString("[broker]\nenabled = false\n")
	} else {
		fmt.Fprintf(&b, "[broker]\nlisten = %q\n", broker)
	}
	if web == "off" {
		b.WriteString("[web]\nenabled = false\n")
	} else {
		fmt.Fprintf(&b, "[web]\nlisten = %q\n", web)
	}
	if upstream != "" {
		fmt.Fprintf(&b, "[upstream]\nservers = [%q]\n", upstream)
	}
	for i, a := range addrs {
		fmt.Fprintf(&b, "[[device]]\nname = \"D%04d\"\ndriver = \"modbus-tcp\"\naddress = %q\npoll_interval = %q\npoll_schedule = %q\ntimeout = \"1s\"\n",
			i, a, interval.String(), schedule)
		for j := range tags {
			fmt.Fprintf(&b, "  [[device.tag]]\n  name = \"R%04d\"\n  address = \"%d\"\n  type = \"int16\"\n  writable = true\n", j, 40001+j)
		}
	}
	return b.String()
}

// simDevice is one simulated device: holding registers behind simonvetter's Modbus server.
type simDevice struct {
	mu  sync.Mutex
	reg []uint16
}

func (d *simDevice) HandleCoils(*mbserver.CoilsRequest) ([]bool, error) {
	return nil, mbserver.ErrIllegalFunction
}

func (d *simDevice) HandleDiscreteInputs(*mbserver.DiscreteInputsRequest) ([]bool, error) {
	return nil, mbserver.ErrIllegalFunction
}

func (d *simDevice) HandleInputRegisters(*mbserver.InputRegistersRequest) ([]uint16, error) {
	return nil, mbserver.ErrIllegalFunction
}

func (d *simDevice) HandleHoldingRegisters(r *mbserver.HoldingRegistersRequest) ([]uint16, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r.IsWrite || int(r.Addr)+int(r.Quantity) > len(d.reg) {
		return nil, mbserver.ErrIllegalDataAddress
	}
	return append([]uint16(nil), d.reg[r.Addr:r.Addr+r.Quantity]...), nil
}
