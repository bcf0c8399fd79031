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
func ptyPair(t *testing.T) (string, string) {
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
// Each unit can be made silent or to answer with a bad CRC.
type rtuSlave struct {
	port serial.Port

	mu       sync.Mutex
	units    map[byte]*bank
	silent   map[byte]bool
	badCRC   map[byte]bool
	requests map[byte]int
}

func newRTUSlave(t *testing.T, path string, units ...byte) *rtuSlave {
	t.Helper()
	p, err := serial.Open(&serial.Config{Address: path, BaudRate: 19200, DataBits: 8, StopBits: 1, Parity: "N", Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s := &rtuSlave{port: p, units: map[byte]*bank{}, silent: map[byte]bool{}, badCRC: map[byte]bool{}, requests: map[byte]int{}}
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
		p.Close()
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
		buf = append(buf, tmp[:n]...)
		for {
			size := requestSize(buf)
			if size == 0 || len(buf) < size {
				break
			}
			frame := buf[:size]
			if crc16(frame[:size-2]) == binary.LittleEndian.Uint16(frame[size-2:]) {
				if reply := s.handle(frame[:size-2]); reply != nil {
					_, _ = s.port.Write(reply)
				}
			}
			buf = append(buf[:0], buf[size:]...)
		}
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
	switch fc {
	case 1, 2:
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
	case 3, 4:
		regs := b.holding
		if fc == 4 {
			regs = b.input
		}
		pdu = []byte{fc, byte(2 * qty)}
		for i := range qty {
			pdu = binary.BigEndian.AppendUint16(pdu, regs[addr+i])
		}
	case 5:
		b.coils[addr] = qty == 0xFF00
		pdu = req[1:6]
	case 6:
		b.holding[addr] = uint16(qty)
		pdu = req[1:6]
	case 16:
		for i := range qty {
			b.holding[addr+i] = binary.BigEndian.Uint16(req[7+2*i:])
		}
		pdu = req[1:6]
	default:
		pdu = []byte{fc | 0x80, 1}
	}
	reply := withCRC(append([]byte{unit}, pdu...))
	if s.badCRC[unit] {
		reply[len(reply)-1] ^= 0xFF
	}
	return reply
}
