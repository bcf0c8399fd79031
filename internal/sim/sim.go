// Package sim holds simulated field devices on loopback. Start is a simulated wellsite: a
// Modbus TCP server serving a wellhead RTU whose pressures, temperatures, levels and totals move
// over time the way a flowing gas well's do, with a separator that fills and dumps; `wellgate
// demo` polls it through the real gateway. StartFleet is many plain PLCs (Modbus TCP devices and
// OPC UA servers of numbered tags, a set share changing every second) and WriteFleetConfig the
// gateway configuration that polls them: `wellgate simulate`, for commissioning, training and
// the benchmarks.
package sim

import (
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"sync"
	"time"

	mbserver "github.com/simonvetter/modbus"
)

// Register map of the simulated wellhead RTU (zero-based offsets). demo.toml maps them to tags.
const (
	irTubingPressure = 0  // float32 ABCD, psi
	irCasingPressure = 2  // float32 ABCD, psi
	irFlowlineTemp   = 4  // int16, 0.1 °F
	irGasRate        = 6  // float32 CDAB, Mcf/d
	irBattery        = 8  // uint16, 0.01 V
	hrSepLevel       = 0  // uint16, 0.1 %
	hrOilTotal       = 1  // uint32 ABCD, bbl
	hrChokeSetpoint  = 3  // uint16, % (writable)
	hrTankLevel      = 10 // float32 ABCD, ft
	hrPlungerCycles  = 12 // int32 ABCD
	coilDumpValve    = 0  // bool (writable)
	diESDTripped     = 0
	diDoorOpen       = 1

	numRegisters = 32
	numBits      = 8
)

// Site is a running simulated wellsite.
type Site struct {
	srv  *mbserver.ModbusServer
	addr string

	mu       sync.Mutex
	input    [numRegisters]uint16
	holding  [numRegisters]uint16
	coils    [numBits]bool
	discrete [numBits]bool
	start    time.Time
	sepLevel float64 // %
	oilTotal float64 // bbl
	tank     float64 // ft
	cycles   int32

	stop chan struct{}
	done chan struct{}
}

// Start serves the simulated site on addr ("127.0.0.1:0" picks a free port) and moves its
// values every interval until Close.
func Start(addr string, interval time.Duration) (*Site, error) {
	addr, err := resolvePort(addr)
	if err != nil {
		return nil, err
	}
	s := &Site{addr: addr, start: time.Now(), sepLevel: 35, oilTotal: 18250, tank: 6.5,
		stop: make(chan struct{}), done: make(chan struct{})}
	s.holding[hrChokeSetpoint] = 42
	s.step(time.Now())
	srv, err := mbserver.NewServer(&mbserver.ServerConfiguration{
		URL: "tcp://" + addr, Timeout: 5 * time.Minute, MaxClients: 16,
		Logger: log.New(io.Discard, "", 0),
	}, &handler{s})
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("sim: listen on %s: %w", addr, err)
	}
	s.srv = srv
	go s.run(interval)
	startHookMu.Lock()
	hook := startHook
	startHookMu.Unlock()
	if hook != nil {
		hook(s)
	}
	return s, nil
}

var (
	startHookMu sync.Mutex
	startHook   func(*Site)
)

// SetStartHook has f called with every site Start starts from now on, until the returned
// restore function (idempotent) is called. It is for tests that run `wellgate demo` in process and need
// the demo's simulated RTU, to stop it and see the gateway notice; nothing else sets it.
func SetStartHook(f func(*Site)) (restore func()) {
	startHookMu.Lock()
	prev := startHook
	startHook = f
	startHookMu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			startHookMu.Lock()
			startHook = prev
			startHookMu.Unlock()
		})
	}
}

// resolvePort turns a ":0" port into a free one: the Modbus server library does not report the
// port it bound.
func resolvePort(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("sim: address %q: %w", addr, err)
	}
	if port != "0" {
		return addr, nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", fmt.Errorf("sim: find a free port on %s: %w", host, err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Addr is the host:port the site serves Modbus TCP on.
func (s *Site) Addr() string { return s.addr }

// Close stops the simulation and the server.
func (s *Site) Close() error {
	select {
	case <-s.stop:
		return nil
	default:
	}
	close(s.stop)
	<-s.done
	return s.srv.Stop()
}

func (s *Site) run(interval time.Duration) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.step(now)
		}
	}
}

// step moves every value to time now.
func (s *Site) step(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	el := now.Sub(s.start).Seconds()
	wave := func(period, amp float64) float64 { return amp * math.Sin(2*math.Pi*el/period) }
	choke := float64(s.holding[hrChokeSetpoint]) / 100

	setF32(s.input[:], irTubingPressure, float32(850+wave(120, 18)+wave(7, 1.5)-choke*40), false)
	setF32(s.input[:], irCasingPressure, float32(420+wave(300, 6)), false)
	s.input[irFlowlineTemp] = uint16(int16(1125 + wave(600, 35)))
	setF32(s.input[:], irGasRate, float32(1250*choke/0.42+wave(60, 25)), true)
	s.input[irBattery] = uint16(1310 + wave(900, 40))

	// The separator fills; at 60 % the dump valve opens and it drains to 30 % into the tank.
	if s.coils[coilDumpValve] {
		s.sepLevel -= 2.5
		s.tank += 0.004
		s.oilTotal += 0.35
		if s.sepLevel <= 30 {
			s.coils[coilDumpValve] = false
			s.cycles++
		}
	} else {
		s.sepLevel += 0.6
		if s.sepLevel >= 60 {
			s.coils[coilDumpValve] = true
		}
	}
	s.holding[hrSepLevel] = uint16(math.Round(s.sepLevel * 10))
	setU32(s.holding[:], hrOilTotal, uint32(s.oilTotal))
	setF32(s.holding[:], hrTankLevel, float32(s.tank), false)
	setU32(s.holding[:], hrPlungerCycles, uint32(s.cycles))
	s.discrete[diDoorOpen] = int(el)%300 < 20
}

func setU32(regs []uint16, at int, v uint32) {
	regs[at], regs[at+1] = uint16(v>>16), uint16(v)
}

func setF32(regs []uint16, at int, v float32, wordSwap bool) {
	b := math.Float32bits(v)
	hi, lo := uint16(b>>16), uint16(b)
	if wordSwap {
		hi, lo = lo, hi
	}
	regs[at], regs[at+1] = hi, lo
}

// handler serves the register tables of unit 1.
type handler struct{ s *Site }

func span(addr, qty uint16, size int) (int, int, error) {
	end := int(addr) + int(qty)
	if end > size {
		return 0, 0, mbserver.ErrIllegalDataAddress
	}
	return int(addr), end, nil
}

func (h *handler) HandleCoils(req *mbserver.CoilsRequest) ([]bool, error) {
	from, to, err := span(req.Addr, req.Quantity, numBits)
	if err != nil {
		return nil, err
	}
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	if req.IsWrite {
		copy(h.s.coils[from:to], req.Args)
	}
	return append([]bool(nil), h.s.coils[from:to]...), nil
}

func (h *handler) HandleDiscreteInputs(req *mbserver.DiscreteInputsRequest) ([]bool, error) {
	from, to, err := span(req.Addr, req.Quantity, numBits)
	if err != nil {
		return nil, err
	}
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	return append([]bool(nil), h.s.discrete[from:to]...), nil
}

func (h *handler) HandleHoldingRegisters(req *mbserver.HoldingRegistersRequest) ([]uint16, error) {
	from, to, err := span(req.Addr, req.Quantity, numRegisters)
	if err != nil {
		return nil, err
	}
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	if req.IsWrite {
		if from <= hrChokeSetpoint && hrChokeSetpoint < to && req.Args[hrChokeSetpoint-from] > 100 {
			return nil, mbserver.ErrIllegalDataValue
		}
		copy(h.s.holding[from:to], req.Args)
	}
	return append([]uint16(nil), h.s.holding[from:to]...), nil
}

func (h *handler) HandleInputRegisters(req *mbserver.InputRegistersRequest) ([]uint16, error) {
	from, to, err := span(req.Addr, req.Quantity, numRegisters)
	if err != nil {
		return nil, err
	}
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	return append([]uint16(nil), h.s.input[from:to]...), nil
}
