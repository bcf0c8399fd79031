package peers

import (
	"io"
	"log"
	"sync"
	"testing"
	"time"

	mbserver "github.com/simonvetter/modbus"
)

// PLC is a register image served by an in-process Modbus TCP server (simonvetter/modbus), for
// tests that need a real device. Lock it (or use Set) to change registers while it serves.
type PLC struct {
	sync.Mutex
	Holding  [64]uint16
	Input    [64]uint16
	Coils    [16]bool
	Discrete [16]bool

	// BeforeWrite, when set, runs (without the lock) before each write request is applied:
	// a test blocks in it to play a device that answers reads but not writes.
	BeforeWrite func()
}

func (p *PLC) beforeWrite() {
	p.Lock()
	fn := p.BeforeWrite
	p.Unlock()
	if fn != nil {
		fn()
	}
}

// Set runs fn with the image locked.
func (p *PLC) Set(fn func(p *PLC)) {
	p.Lock()
	defer p.Unlock()
	fn(p)
}

// HandleCoils implements the server's handler.
func (p *PLC) HandleCoils(r *mbserver.CoilsRequest) ([]bool, error) {
	if r.IsWrite {
		p.beforeWrite()
	}
	p.Lock()
	defer p.Unlock()
	if int(r.Addr)+int(r.Quantity) > len(p.Coils) {
		return nil, mbserver.ErrIllegalDataAddress
	}
	if r.IsWrite {
		copy(p.Coils[r.Addr:], r.Args)
	}
	return append([]bool(nil), p.Coils[r.Addr:r.Addr+r.Quantity]...), nil
}

// HandleDiscreteInputs implements the server's handler.
func (p *PLC) HandleDiscreteInputs(r *mbserver.DiscreteInputsRequest) ([]bool, error) {
	p.Lock()
	defer p.Unlock()
	if int(r.Addr)+int(r.Quantity) > len(p.Discrete) {
		return nil, mbserver.ErrIllegalDataAddress
	}
	return append([]bool(nil), p.Discrete[r.Addr:r.Addr+r.Quantity]...), nil
}

// HandleHoldingRegisters implements the server's handler.
func (p *PLC) HandleHoldingRegisters(r *mbserver.HoldingRegistersRequest) ([]uint16, error) {
	if r.IsWrite {
		p.beforeWrite()
	}
	p.Lock()
	defer p.Unlock()
	if int(r.Addr)+int(r.Quantity) > len(p.Holding) {
		return nil, mbserver.ErrIllegalDataAddress
	}
	if r.IsWrite {
		copy(p.Holding[r.Addr:], r.Args)
	}
	return append([]uint16(nil), p.Holding[r.Addr:r.Addr+r.Quantity]...), nil
}

// HandleInputRegisters implements the server's handler.
func (p *PLC) HandleInputRegisters(r *mbserver.InputRegistersRequest) ([]uint16, error) {
	p.Lock()
	defer p.Unlock()
	if int(r.Addr)+int(r.Quantity) > len(p.Input) {
		return nil, mbserver.ErrIllegalDataAddress
	}
	return append([]uint16(nil), p.Input[r.Addr:r.Addr+r.Quantity]...), nil
}

// StartPLC serves p on a free loopback port until the test ends and returns its host:port.
func StartPLC(t testing.TB, p *PLC) string {
	t.Helper()
	addr := FreePort(t)
	ServePLC(t, addr, p)
	return addr
}

// ServePLC serves p on addr (retrying while the port is still being released) until the test
// ends or the returned server is stopped.
func ServePLC(t testing.TB, addr string, p *PLC) *mbserver.ModbusServer {
	t.Helper()
	srv, err := mbserver.NewServer(&mbserver.ServerConfiguration{URL: "tcp://" + addr,
		Timeout: time.Minute, MaxClients: 8, Logger: log.New(io.Discard, "", 0)}, p)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err = srv.Start(); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("modbus server on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	return srv
}
