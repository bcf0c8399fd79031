package sim

import (
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	mbserver "github.com/simonvetter/modbus"
)

// A fleet is many simulated PLCs for `wellgate simulate`, the benchmarks and commissioning:
// each Modbus TCP device serves M holding registers (40001…, initial value j) on a port of
// its own, and each OPC UA server M Int16 variables; a share of them changes every second.

// MaxTags is the most tags (registers or variables) a simulated device has.
const MaxTags = 10000

// changeTick is how often values change: each tick a tenth of a second's changes, so that
// they are spread evenly over the second.
const changeTick = 100 * time.Millisecond

// FleetOptions are the size and addresses of a fleet.
type FleetOptions struct {
	Devices       int     // Modbus TCP devices
	OPCUA         int     // OPC UA servers
	Tags          int     // per device and server, 1..MaxTags
	ChangePercent float64 // percent of each device's tags that change per second, 0..100
	Host          string  // listen host ("127.0.0.1" when empty)
	// FirstPort is the port of the first device: Modbus device i listens on FirstPort+i and
	// OPC UA server k on FirstPort+Devices+k. 0: every one on an ephemeral port.
	FirstPort int
}

// OptionError is a fleet option out of its range.
type OptionError struct {
	Option string // devices, opcua, tags, change or port: the option's (and the flag's) name
	Value  float64
	Want   string
}

func (e *OptionError) Error() string { return fmt.Sprintf("%s %v: want %s", e.Option, e.Value, e.Want) }

// Check returns an *OptionError for the first option of o out of range, or nil.
func (o FleetOptions) Check() error {
	bad := func(opt string, v float64, want string, args ...any) error {
		return &OptionError{Option: opt, Value: v, Want: fmt.Sprintf(want, args...)}
	}
	switch {
	case o.Devices < 0:
		return bad("devices", float64(o.Devices), "0 or more")
	case o.OPCUA < 0:
		return bad("opcua", float64(o.OPCUA), "0 or more")
	case o.Devices+o.OPCUA == 0:
		return bad("devices", float64(o.Devices), "at least one device (or opcua server)")
	case o.Tags < 1 || o.Tags > MaxTags:
		return bad("tags", float64(o.Tags), "1..%d", MaxTags)
	case !(o.ChangePercent >= 0 && o.ChangePercent <= 100): // NaN too
		return bad("change", o.ChangePercent, "0..100 (percent a second)")
	case o.FirstPort < 0 || o.FirstPort > 65535:
		return bad("port", float64(o.FirstPort), "0 (ephemeral) or 1..65535")
	case o.FirstPort > 0 && o.FirstPort+o.Devices+o.OPCUA-1 > 65535:
		return bad("port", float64(o.FirstPort), "at most %d, so that %d devices fit below 65536",
			65536-o.Devices-o.OPCUA, o.Devices+o.OPCUA)
	}
	return nil
}

// Fleet is a running set of simulated devices. Values change on two goroutines, one for all
// the Modbus devices and one for all the OPC UA servers: gopcua's ChangeNotification can
// block on a subscription nobody drains, and must not stop the Modbus values.
type Fleet struct {
	modbus  []*fleetDevice
	servers []*mbserver.ModbusServer
	addrs   []string
	opcua   []*OPCUAServer

	stop      chan struct{}
	done      sync.WaitGroup
	closeOnce sync.Once
}

// StartFleet starts the servers of o and the changing of their values; Close stops them.
// After an error nothing started is left running.
func StartFleet(o FleetOptions) (*Fleet, error) {
	if err := o.Check(); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	f := &Fleet{stop: make(chan struct{})}
	for i := range o.Devices {
		d := newFleetDevice(o.Tags, uint64(i))
		srv, addr, err := serveModbus(o.Host, portFor(o, i), d)
		if err != nil {
			f.Close()
			return nil, err
		}
		f.modbus, f.servers, f.addrs = append(f.modbus, d), append(f.servers, srv), append(f.addrs, addr)
	}
	for k := range o.OPCUA {
		s, err := StartOPCUA(o.Host, portFor(o, o.Devices+k), o.Tags, uint64(o.Devices+k))
		if err != nil {
			f.Close()
			return nil, err
		}
		f.opcua = append(f.opcua, s)
	}
	// Changes a second in thousandths: whole percentages of any tag count are exact.
	milli := int64(math.Round(float64(o.Tags) * o.ChangePercent * 10))
	if milli > 0 && len(f.modbus) > 0 {
		f.done.Add(1)
		go f.change(milli, func(n int) {
			for _, d := range f.modbus {
				d.change(n)
			}
		})
	}
	if milli > 0 && len(f.opcua) > 0 {
		f.done.Add(1)
		go f.change(milli, func(n int) {
			for _, s := range f.opcua {
				s.change(n)
			}
		})
	}
	return f, nil
}

func portFor(o FleetOptions, i int) int {
	if o.FirstPort == 0 {
		return 0
	}
	return o.FirstPort + i
}

// Addrs are the host:port of the Modbus devices, in order.
func (f *Fleet) Addrs() []string { return f.addrs }

// OPCUAEndpoints are the opc.tcp:// endpoints of the OPC UA servers, in order.
func (f *Fleet) OPCUAEndpoints() []string {
	out := make([]string, len(f.opcua))
	for k, s := range f.opcua {
		out[k] = s.Endpoint()
	}
	return out
}

// closeWait bounds how long Close waits for the changes to stop.
const closeWait = 2 * time.Second

// Close stops the changes and the servers. It is idempotent and bounded: gopcua's
// ChangeNotification can block for good (sending to a subscription that has just ended,
// under the lock its deletion needs), and then Close leaves that goroutine behind.
func (f *Fleet) Close() error {
	var errs []error
	f.closeOnce.Do(func() {
		close(f.stop)
		stopped := make(chan struct{})
		go func() { f.done.Wait(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(closeWait):
			errs = append(errs, errors.New("sim: the OPC UA changes did not stop"))
		}
		for _, s := range f.servers {
			errs = append(errs, s.Stop())
		}
		for _, s := range f.opcua {
			s.Close()
		}
	})
	return errors.Join(errs...)
}

// change calls step with the number of tags to change every changeTick until Close.
func (f *Fleet) change(milliPerSecond int64, step func(n int)) {
	defer f.done.Done()
	t := time.NewTicker(changeTick)
	defer t.Stop()
	s := changeSchedule{milliPerSecond: milliPerSecond}
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
			step(s.next())
		}
	}
}

// changeSchedule spreads milliPerSecond/1000 changes a second evenly over the ten ticks of
// each second: the ticks' counts differ by at most one, and those of every second add up to
// the whole changes a second (with a fraction, those of every 1000 s add up exactly).
type changeSchedule struct {
	milliPerSecond int64
	tick           int64 // ticks since the last whole 1000 s
}

func (s *changeSchedule) next() int {
	k := s.tick
	s.tick = (k + 1) % 10000
	return int(s.milliPerSecond*(k+1)/10000 - s.milliPerSecond*k/10000)
}

// changeOrder is the order in which a device's n tags change: a permutation drawn from a PCG
// seeded with the device's index, so that runs repeat and, at up to 100 % a second, no tag
// changes twice within a second.
func changeOrder(n int, seed uint64) []uint16 {
	order := make([]uint16, n)
	for j := range order {
		order[j] = uint16(j)
	}
	r := rand.New(rand.NewPCG(seed, 0x5157e11))
	r.Shuffle(n, func(a, b int) { order[a], order[b] = order[b], order[a] })
	return order
}

// fleetDevice is one simulated Modbus device: holding registers only (unit id ignored).
type fleetDevice struct {
	mu    sync.Mutex
	reg   []uint16
	order []uint16 // changeOrder
	next  int      // index into order of the next register to change
}

func newFleetDevice(tags int, seed uint64) *fleetDevice {
	d := &fleetDevice{reg: make([]uint16, tags), order: changeOrder(tags, seed)}
	for j := range d.reg {
		d.reg[j] = uint16(j)
	}
	return d
}

// change increments (wrapping) the next n registers of the device's order.
func (d *fleetDevice) change(n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for range n {
		d.reg[d.order[d.next]]++
		if d.next++; d.next == len(d.order) {
			d.next = 0
		}
	}
}

func (d *fleetDevice) HandleCoils(*mbserver.CoilsRequest) ([]bool, error) {
	return nil, mbserver.ErrIllegalFunction
}

func (d *fleetDevice) HandleDiscreteInputs(*mbserver.DiscreteInputsRequest) ([]bool, error) {
	return nil, mbserver.ErrIllegalFunction
}

func (d *fleetDevice) HandleInputRegisters(*mbserver.InputRegistersRequest) ([]uint16, error) {
	return nil, mbserver.ErrIllegalFunction
}

// HandleHoldingRegisters reads (FC3) and writes (FC6, FC16) the registers.
func (d *fleetDevice) HandleHoldingRegisters(r *mbserver.HoldingRegistersRequest) ([]uint16, error) {
	from, to, err := span(r.Addr, r.Quantity, len(d.reg))
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if r.IsWrite {
		copy(d.reg[from:to], r.Args)
	}
	return append([]uint16(nil), d.reg[from:to]...), nil
}

// serveModbus serves h on host:port and returns the address it listens on. Port 0 picks a
// free port; as the server library does not report the port it bound, one taken between the
// pick and the bind is picked again.
func serveModbus(host string, port int, h mbserver.RequestHandler) (*mbserver.ModbusServer, string, error) {
	for attempt := 0; ; attempt++ {
		addr := net.JoinHostPort(host, strconv.Itoa(port))
		if port == 0 {
			var err error
			if addr, err = resolvePort(addr); err != nil {
				return nil, "", err
			}
		}
		srv, err := mbserver.NewServer(&mbserver.ServerConfiguration{
			URL: "tcp://" + addr, Timeout: 5 * time.Minute, MaxClients: 8,
			Logger: log.New(io.Discard, "", 0),
		}, h)
		if err != nil {
			return nil, "", fmt.Errorf("sim: modbus server on %s: %w", addr, err)
		}
		err = srv.Start()
		if err == nil {
			return srv, addr, nil
		}
		if port != 0 || attempt == 3 || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, "", fmt.Errorf("sim: listen on %s: %w", addr, err)
		}
	}
}
