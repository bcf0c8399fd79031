package modbus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/goburrow/modbus"
	"github.com/goburrow/serial"
)

// readSlice is how long one read from the serial port waits for bytes. A request's timeout is
// made of slices, so that every device on a bus keeps its own timeout although goburrow/serial
// fixes the port's read timeout when it opens the port.
const readSlice = 10 * time.Millisecond

// rtuLink is one serial bus. It replaces goburrow's RTU transporter (which has no lock, sleeps
// a computed delay and closes the port from an idle timer) with one owned by the bus's
// goroutine; goburrow's RTU packager still builds and checks the frames (address, CRC).
type rtuLink struct {
	cfg     serial.Config
	port    serial.Port
	timeout time.Duration
	gap     time.Duration // 3.5 character times of silence between frames
	lastIO  time.Time
	dirty   bool // the last exchange failed: bytes of it may still arrive
	clients map[byte]modbus.Client
	buf     [256]byte
}

func newRTULink(s SerialOptions) *rtuLink {
	l := &rtuLink{
		cfg: serial.Config{Address: s.Port, BaudRate: s.Baud, DataBits: s.DataBits,
			StopBits: s.StopBits, Parity: s.Parity, Timeout: readSlice},
		clients: map[byte]modbus.Client{},
	}
	// 3.5 characters of 11 bits; the spec fixes 1.75 ms above 19200 baud.
	l.gap = time.Duration(3.5 * 11 * float64(time.Second) / float64(s.Baud))
	if s.Baud > 19200 {
		l.gap = 1750 * time.Microsecond
	}
	return l
}

func (l *rtuLink) client(unit byte) modbus.Client {
	c, ok := l.clients[unit]
	if !ok {
		p := modbus.NewRTUClientHandler(l.cfg.Address) // used as the packager only
		p.SlaveId = unit
		c = modbus.NewClient2(p, l)
		l.clients[unit] = c
	}
	return c
}

func (l *rtuLink) connect() error {
	if l.port != nil {
		return nil
	}
	p, err := serial.Open(&l.cfg)
	if err != nil {
		return &connError{err}
	}
	l.port = p
	return nil
}

// close closes the port after a timeout, a CRC error or garbage. Whatever still arrives
// belongs to the failed exchange: the next Send first waits for the line to fall silent.
func (l *rtuLink) close() {
	if l.port != nil {
		_ = l.port.Close()
		l.port = nil
	}
	l.dirty = true
}

// drain reads and drops bytes until the line has been silent for one read slice, or until
// limit has passed.
func (l *rtuLink) drain(limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		n, err := l.port.Read(l.buf[:])
		if n == 0 || (err != nil && !errors.Is(err, serial.ErrTimeout)) {
			return
		}
	}
}

func (l *rtuLink) setTimeout(d time.Duration) { l.timeout = d }

// Send implements modbus.Transporter: it writes one request frame and reads the reply frame.
func (l *rtuLink) Send(req []byte) ([]byte, error) {
	if err := l.connect(); err != nil {
		return nil, err
	}
	if l.dirty {
		l.drain(l.timeout)
		l.dirty = false
	}
	if wait := l.gap - time.Since(l.lastIO); wait > 0 {
		// Protocol timing, not synchronisation: the bus must stay silent between frames.
		time.Sleep(wait)
	}
	if _, err := l.port.Write(req); err != nil {
		return nil, fmt.Errorf("write: %w", err)
	}
	resp, err := l.readFrame(req, time.Now().Add(l.timeout))
	l.lastIO = time.Now()
	return resp, err
}

// readFrame reads the reply to req until it is complete or the deadline passes.
func (l *rtuLink) readFrame(req []byte, deadline time.Time) ([]byte, error) {
	n := 0
	for {
		m, err := l.port.Read(l.buf[n:])
		if err != nil && !errors.Is(err, serial.ErrTimeout) {
			return nil, fmt.Errorf("read: %w", err)
		}
		n += m
		n = resync(req, l.buf[:n])
		want := frameLength(req, l.buf[:n])
		switch {
		case want > 0 && n >= want:
			return append([]byte(nil), l.buf[:want]...), nil
		case want == 0 && n >= 4 && m == 0:
			// Unknown function: the frame ends with the first silence.
			return append([]byte(nil), l.buf[:n]...), nil
		case n == len(l.buf):
			return nil, fmt.Errorf("%w: frame longer than %d bytes", errGarbage, n)
		case time.Now().After(deadline):
			if n == 0 {
				return nil, errTimeout
			}
			return nil, fmt.Errorf("%w: incomplete frame, %d of %d bytes before the timeout", errGarbage, n, want)
		}
	}
}

// resync drops leading bytes of got that cannot start the reply to req (a late reply to an
// earlier request, line noise) and returns how many bytes remain at the start of got.
func resync(req, got []byte) int {
	skip := 0
	for skip < len(got) {
		if got[skip] == req[0] && (skip+1 == len(got) || got[skip+1] == req[1] || got[skip+1] == req[1]|0x80) {
			break
		}
		skip++
	}
	if skip > 0 {
		copy(got, got[skip:])
	}
	return len(got) - skip
}

// frameLength is the length of the RTU reply to req given its first bytes got, or 0 when the
// function code does not tell.
func frameLength(req, got []byte) int {
	if len(req) < 6 {
		return 0
	}
	if len(got) >= 2 && got[1] == req[1]|0x80 {
		return 5 // address, function, exception code, CRC
	}
	count := int(binary.BigEndian.Uint16(req[4:]))
	switch req[1] {
	case modbus.FuncCodeReadCoils, modbus.FuncCodeReadDiscreteInputs:
		return 5 + (count+7)/8
	case modbus.FuncCodeReadHoldingRegisters, modbus.FuncCodeReadInputRegisters:
		return 5 + 2*count
	case modbus.FuncCodeWriteSingleCoil, modbus.FuncCodeWriteSingleRegister,
		modbus.FuncCodeWriteMultipleCoils, modbus.FuncCodeWriteMultipleRegisters:
		return 8
	}
	return 0
}
