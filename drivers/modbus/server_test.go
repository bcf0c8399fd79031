package modbus

import (
	"fmt"
	"io"
	"log"
	"net"
	"sync"
	"testing"
	"time"

	smodbus "github.com/simonvetter/modbus"
)

// bank is one unit's memory in the test server.
type bank struct {
	coils, discrete []bool
	holding, input  []uint16
	illegal         map[table]map[uint16]bool // offsets that answer "illegal data address"
	delay           time.Duration             // every request waits this long (a slow or dead device)
	exception       error                     // when set, every request answers this
	reads           map[table]int             // read requests served, by table
}

func newBank() *bank {
	return &bank{
		coils: make([]bool, 65536), discrete: make([]bool, 65536),
		holding: make([]uint16, 65536), input: make([]uint16, 65536),
		illegal: map[table]map[uint16]bool{}, reads: map[table]int{},
	}
}

// testServer is an in-process Modbus TCP server (github.com/simonvetter/modbus) on loopback,
// serving one bank per unit id.
type testServer struct {
	t    testing.TB
	addr string

	mu    sync.Mutex
	units map[uint8]*bank
	srv   *smodbus.ModbusServer
	quit  chan struct{}
}

// newTestServer starts a server on a free loopback port serving the given units.
func newTestServer(t testing.TB, units ...uint8) *testServer {
	t.Helper()
	return newTestServerAt(t, freeAddr(t), units...)
}

// newTestServerAt starts a server on addr.
func newTestServerAt(t testing.TB, addr string, units ...uint8) *testServer {
	t.Helper()
	s := &testServer{t: t, units: map[uint8]*bank{}, quit: make(chan struct{}), addr: addr}
	for _, u := range units {
		s.units[u] = newBank()
	}
	s.start()
	t.Cleanup(func() {
		close(s.quit)
		s.stop()
	})
	return s
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// start starts (or restarts) the server on s.addr.
func (s *testServer) start() {
	s.t.Helper()
	srv, err := smodbus.NewServer(&smodbus.ServerConfiguration{
		URL: "tcp://" + s.addr, Timeout: 30 * time.Second, MaxClients: 200,
		Logger: log.New(io.Discard, "", 0),
	}, s)
	if err != nil {
		s.t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err = srv.Start(); err == nil {
			break
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("start test server on %s: %v", s.addr, err)
		}
		time.Sleep(10 * time.Millisecond) // the port is still in TIME_WAIT; retry until it binds
	}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
}

// stop stops the server and drops its clients.
func (s *testServer) stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Stop()
	}
}

// with runs f on unit u's bank under the lock.
func (s *testServer) with(u uint8, f func(b *bank)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s.units[u])
}

// reads returns the read requests unit u served for table tb.
func (s *testServer) reads(u uint8, tb table) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.units[u].reads[tb]
}

// enter looks the unit up, applies its delay and checks its exception and illegal addresses.
func (s *testServer) enter(unit uint8, tb table, addr, qty uint16, isRead bool) (*bank, error) {
	s.mu.Lock()
	b := s.units[unit]
	if b == nil {
		s.mu.Unlock()
		return nil, smodbus.ErrGWTargetFailedToRespond
	}
	delay := b.delay
	s.mu.Unlock()
	if delay > 0 {
		select { // simulates a slow device; not synchronisation
		case <-time.After(delay):
		case <-s.quit:
		}
	}
	s.mu.Lock()
	if isRead {
		b.reads[tb]++
	}
	if b.exception != nil {
		s.mu.Unlock()
		return nil, b.exception
	}
	for a := uint32(addr); a < uint32(addr)+uint32(qty); a++ {
		if b.illegal[tb][uint16(a)] {
			s.mu.Unlock()
			return nil, smodbus.ErrIllegalDataAddress
		}
	}
	return b, nil // s.mu stays locked; the handler unlocks
}

func (s *testServer) HandleCoils(req *smodbus.CoilsRequest) ([]bool, error) {
	b, err := s.enter(req.UnitId, coils, req.Addr, req.Quantity, !req.IsWrite)
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if req.IsWrite {
		copy(b.coils[req.Addr:], req.Args)
		return nil, nil
	}
	return append([]bool(nil), b.coils[req.Addr:int(req.Addr)+int(req.Quantity)]...), nil
}

func (s *testServer) HandleDiscreteInputs(req *smodbus.DiscreteInputsRequest) ([]bool, error) {
	b, err := s.enter(req.UnitId, discreteInputs, req.Addr, req.Quantity, true)
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	return append([]bool(nil), b.discrete[req.Addr:int(req.Addr)+int(req.Quantity)]...), nil
}

func (s *testServer) HandleHoldingRegisters(req *smodbus.HoldingRegistersRequest) ([]uint16, error) {
	b, err := s.enter(req.UnitId, holdingRegisters, req.Addr, req.Quantity, !req.IsWrite)
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if req.IsWrite {
		copy(b.holding[req.Addr:], req.Args)
		return nil, nil
	}
	return append([]uint16(nil), b.holding[req.Addr:int(req.Addr)+int(req.Quantity)]...), nil
}

func (s *testServer) HandleInputRegisters(req *smodbus.InputRegistersRequest) ([]uint16, error) {
	b, err := s.enter(req.UnitId, inputRegisters, req.Addr, req.Quantity, true)
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	return append([]uint16(nil), b.input[req.Addr:int(req.Addr)+int(req.Quantity)]...), nil
}

func (s *testServer) String() string { return fmt.Sprintf("test server %s", s.addr) }
