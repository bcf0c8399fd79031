package modbus

import (
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/goburrow/serial"
)

// crc16 is the Modbus RTU CRC (polynomial 0xA001, initial 0xFFFF), written here independently
// of goburrow's.
func crc16(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, c := range b {
		crc ^= uint16(c)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

// withCRC appends the CRC, low byte first.
func withCRC(b []byte) []byte {
	c := crc16(b)
	return append(b, byte(c), byte(c>>8))
}

// ptyPair starts socat with a linked pty pair in a temporary directory and returns the two
// ends. It fails the test when socat is missing and CI or WELLGATE_REQUIRE_PEERS is set, and
// skips it otherwise.
func ptyPair(t testing.TB) (string, string) {
	t.Helper()
	socat, err := exec.LookPath("socat")
	if err != nil {
		msg := "socat is not installed (scripts/install-peers.sh installs it): the RTU tests need a pty pair"
		if os.Getenv("CI") != "" || os.Getenv("WELLGATE_REQUIRE_PEERS") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	cmd := exec.Command(socat, "-d", "-d", "pty,raw,echo=0,link="+a, "pty,raw,echo=0,link="+b)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	eventually(t, 5*time.Second, "socat's ptys", func() bool {
		_, e1 := os.Stat(a)
		_, e2 := os.Stat(b)
		return e1 == nil && e2 == nil
	})
	return a, b
}

// rtuSlave is a Modbus RTU slave for tests, serving several unit ids on one serial port.
// Each unit can be made silent, to answer with a bad CRC, late (after a delay, or held until
// just before the next reply to another unit, so that it arrives in the middle of that unit's
// exchange), with another function code, or to refuse functions with exception 1.
type rtuSlave struct {
	port serial.Port

	writeMu sync.Mutex // one frame at a time on the line
	closed  bool       // under writeMu: the port is closed, late replies are dropped

	mu       sync.Mutex
	units    map[byte]*bank
	silent   map[byte]bool
	badCRC   map[byte]bool
	late     map[byte]time.Duration // answer this long after the request
	holdLate map[byte]bool          // answer just before the next reply to another unit
	held     [][]byte
	wrongFC  map[byte]byte          // answer with this function code
	refuse   map[byte]map[byte]bool // unit → function codes answered with exception 1
	requests map[byte]int           // requests answered (or held, or made late)
	seen     map[byte]int           // requests received, silent units too
	lateSent map[byte]int           // late or held replies written
	writes   map[byte][]byte        // function codes of the writes each unit accepted
	record   bool
	events   []slaveEvent
	timers   []*time.Timer
}

// slaveEvent is a request's arrival or a reply's departure, for the timing tests.
type slaveEvent struct {
	at    time.Time // a request's: when the read that completed it returned; a reply's: see write
	unit  byte
	reply bool
}

func newRTUSlave(t testing.TB, path string, units ...byte) *rtuSlave {
	t.Helper()
	return newRTUSlaveAt(t, path, 19200, "N", units...)
}

// newRTUSlaveAt serves units on path, opened with the given baud and parity (a pty ignores
// both, but the slave opens its end as a device would).
func newRTUSlaveAt(t testing.TB, path string, baud int, parity string, units ...byte) *rtuSlave {
	t.Helper()
	p, err := serial.Open(&serial.Config{Address: path, BaudRate: baud, DataBits: 8, StopBits: 1, Parity: parity, Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s := &rtuSlave{port: p, units: map[byte]*bank{}, silent: map[byte]bool{}, badCRC: map[byte]bool{},
		late: map[byte]time.Duration{}, holdLate: map[byte]bool{}, wrongFC: map[byte]byte{},
		refuse: map[byte]map[byte]bool{}, requests: map[byte]int{}, seen: map[byte]int{},
		lateSent: map[byte]int{}, writes: map[byte][]byte{}}
	for _, u := range units {
		s.units[u] = newBank()
	}
	done := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		defer close(done)
		s.serve(stop)
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
		s.mu.Lock()
		for _, tm := range s.timers {
			tm.Stop()
		}
		s.mu.Unlock()
		s.writeMu.Lock()
		s.closed = true
		p.Close()
		s.writeMu.Unlock()
	})
	return s
}

func (s *rtuSlave) with(u byte, f func(b *bank, st *rtuSlave)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s.units[u], s)
}

func (s *rtuSlave) count(u byte) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[u]
}

// counter reads one of the slave's counters under its lock.
func (s *rtuSlave) counter(m *map[byte]int, u byte) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return (*m)[u]
}

// write puts one frame on the line, unless the port is closed. A reply is recorded with the
// time just before it is written: the master cannot have it earlier, so a gap measured from
// there to the next request's arrival is never longer than the master kept the line silent.
func (s *rtuSlave) write(frame []byte, unit byte) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.closed {
		return
	}
	s.mu.Lock()
	if s.record {
		s.events = append(s.events, slaveEvent{at: time.Now(), unit: unit, reply: true})
	}
	s.mu.Unlock()
	_, _ = s.port.Write(frame)
}

// serve reads request frames (delimited by their length, not by timing) and answers them.
func (s *rtuSlave) serve(stop chan struct{}) {
	var buf []byte
	tmp := make([]byte, 256)
	for {
		select {
		case <-stop:
			return
		default:
		}
		n, err := s.port.Read(tmp)
		if err != nil && !errors.Is(err, serial.ErrTimeout) {
			return
		}
		if n == 0 {
			buf = buf[:0] // silence: drop any partial frame
			continue
		}
		at := time.Now()
		buf = append(buf, tmp[:n]...)
		for {
			size := requestSize(buf)
			if size == 0 || len(buf) < size {
				break
			}
			frame := buf[:size]
			if crc16(frame[:size-2]) == binary.LittleEndian.Uint16(frame[size-2:]) {
				s.answer(frame[:size-2], at)
			}
			buf = append(buf[:0], buf[size:]...)
		}
	}
}

// answer handles one request (without CRC) as the unit's mode says.
func (s *rtuSlave) answer(req []byte, at time.Time) {
	unit := req[0]
	s.mu.Lock()
	s.seen[unit]++
	if s.record {
		s.events = append(s.events, slaveEvent{at: at, unit: unit})
	}
	late, hold := s.late[unit], s.holdLate[unit]
	var flush [][]byte
	if !hold {
		flush, s.held = s.held, nil
	}
	s.mu.Unlock()
	reply := s.handle(req)
	if reply == nil {
		return
	}
	switch {
	case hold:
		s.mu.Lock()
		s.held = append(s.held, reply)
		s.mu.Unlock()
	case late > 0:
		s.mu.Lock()
		s.timers = append(s.timers, time.AfterFunc(late, func() {
			s.mu.Lock()
			s.lateSent[unit]++
			s.mu.Unlock()
			s.write(reply, unit)
		}))
		s.mu.Unlock()
	default:
		for _, f := range flush {
			s.mu.Lock()
			s.lateSent[f[0]]++
			s.mu.Unlock()
			s.write(f, f[0])
		}
		s.write(reply, unit)
	}
}

// requestSize is the length of the request frame starting buf, 0 when not known yet.
func requestSize(buf []byte) int {
	if len(buf) < 2 {
		return 0
	}
	switch buf[1] {
	case 1, 2, 3, 4, 5, 6:
		return 8
	case 15, 16:
		if len(buf) < 7 {
			return 0
		}
		return 9 + int(buf[6])
	}
	return len(buf) // unknown function: drop it
}

// handle returns the reply frame (with CRC) to a request (without CRC), or nil for none.
func (s *rtuSlave) handle(req []byte) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	unit, fc := req[0], req[1]
	b := s.units[unit]
	if b == nil || s.silent[unit] {
		return nil
	}
	s.requests[unit]++
	addr := int(binary.BigEndian.Uint16(req[2:]))
	qty := int(binary.BigEndian.Uint16(req[4:]))
	var pdu []byte
	switch {
	case s.refuse[unit][fc]:
		pdu = []byte{fc | 0x80, 1}
	case fc <= 4 && b.refuses(fc, addr, qty):
		pdu = []byte{fc | 0x80, 2}
	case fc == 1 || fc == 2:
		bits := b.coils
		if fc == 2 {
			bits = b.discrete
		}
		pdu = []byte{fc, byte((qty + 7) / 8)}
		pdu = append(pdu, make([]byte, (qty+7)/8)...)
		for i := range qty {
			if bits[addr+i] {
				pdu[2+i/8] |= 1 << (i % 8)
			}
		}
	case fc == 3 || fc == 4:
		regs := b.holding
		if fc == 4 {
			regs = b.input
		}
		pdu = []byte{fc, byte(2 * qty)}
		for i := range qty {
			pdu = binary.BigEndian.AppendUint16(pdu, regs[addr+i])
		}
	case fc == 5:
		b.coils[addr] = qty == 0xFF00
		pdu = req[1:6]
	case fc == 6:
		b.holding[addr] = uint16(qty)
		pdu = req[1:6]
	case fc == 15:
		for i := range qty {
			b.coils[addr+i] = req[7+i/8]>>(i%8)&1 == 1
		}
		pdu = req[1:6]
	case fc == 16:
		for i := range qty {
			b.holding[addr+i] = binary.BigEndian.Uint16(req[7+2*i:])
		}
		pdu = req[1:6]
	default:
		pdu = []byte{fc | 0x80, 1}
	}
	if fc >= 5 && pdu[0] == fc {
		s.writes[unit] = append(s.writes[unit], fc)
	}
	if w := s.wrongFC[unit]; w != 0 {
		pdu = append([]byte{w}, pdu[1:]...)
	}
	reply := withCRC(append([]byte{unit}, pdu...))
	if s.badCRC[unit] {
		reply[len(reply)-1] ^= 0xFF
	}
	return reply
}

// refuses reports whether a read of qty from addr touches an address the bank refuses.
func (b *bank) refuses(fc byte, addr, qty int) bool {
	tb := map[byte]table{1: coils, 2: discreteInputs, 3: holdingRegisters, 4: inputRegisters}[fc]
	for a := addr; a < addr+qty; a++ {
		if b.illegal[tb][uint16(a)] {
			return true
		}
	}
	return false
}
