package modbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/goburrow/serial"
)

// Bounds of the serial read slice (see rtuLink).
const (
	minReadSlice = time.Millisecond
	maxReadSlice = 10 * time.Millisecond
)

// rtuLink is one serial bus, owned by the bus's goroutine; goburrow/serial opens and reads the
// port. Bus discipline:
//
//   - Before every request, and after every failed exchange, the input is drained until the
//     line has been silent for the silent interval (3.5 characters at the line's baud and
//     framing, or inter_frame_delay if longer) plus turnaround_delay. Frames drained are late
//     replies, reported as such; nothing left over from one exchange reaches the next.
//   - A reply is read until it is complete or the timeout passes. Frames are found by their
//     structure and CRC (rtuReader), sliding past false starts; a frame that does not answer
//     the request (another unit, another function, a byte count that does not fit, a write's
//     echo of another address or value) is discarded, reported as late, and never decoded as
//     the answer.
//   - goburrow/serial fixes a port's read timeout when it opens it. Reads wait at most one
//     slice (the silent interval, within 1…10 ms), so each device keeps its own timeout, an
//     empty read proves a silent interval, and a cancelled context ends a read within a
//     slice. The port is never closed under a read from another goroutine: goburrow's port
//     keeps its descriptor in a plain field, so that would race, and a reused descriptor could
//     be read by mistake.
type rtuLink struct {
	cfg        serial.Config
	port       serial.Port
	char       time.Duration // one character on the wire: start, data, parity and stop bits
	gap        time.Duration // silent interval between frames
	turnaround time.Duration // extra silence after the line was last busy, before a request
	lastIO     time.Time     // when the line was last busy: last byte read, or end of our request
	late       lateFunc
	log        *slog.Logger
	reader     rtuReader
	rd         [rtuMaxFrame]byte
	adu        []byte // the request being sent, reused
}

func newRTULink(s SerialOptions, late lateFunc, log *slog.Logger) *rtuLink {
	char, t35 := charTime(s, 1), silentInterval(s)
	l := &rtuLink{
		cfg: serial.Config{Address: s.Port, BaudRate: s.Baud, DataBits: s.DataBits,
			StopBits: s.StopBits, Parity: s.Parity, Timeout: min(max(t35, minReadSlice), maxReadSlice)},
		char: char, gap: max(t35, s.InterFrameDelay), turnaround: s.TurnaroundDelay,
		late: late, log: log,
	}
	return l
}

// charTime is the time n characters take on the line, each a start bit, the data bits, a
// parity bit unless parity is N, and the stop bits.
func charTime(s SerialOptions, n float64) time.Duration {
	bits := 1 + s.DataBits + s.StopBits
	if s.Parity != "N" && s.Parity != "n" {
		bits++
	}
	return time.Duration(n * float64(bits) * float64(time.Second) / float64(max(s.Baud, 1)))
}

// silentInterval is the 3.5 character times that separate RTU frames; the specification fixes
// it at 1.75 ms above 19200 baud.
func silentInterval(s SerialOptions) time.Duration {
	if s.Baud > 19200 {
		return 1750 * time.Microsecond
	}
	return charTime(s, 3.5)
}

func (l *rtuLink) connect(context.Context, time.Duration) error {
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

// close closes the port after an I/O error or at the end; the next exchange opens it again.
func (l *rtuLink) close() {
	if l.port != nil {
		_ = l.port.Close()
		l.port = nil
	}
}

func (l *rtuLink) exchange(ctx context.Context, unit byte, req []byte, timeout time.Duration) ([]byte, error) {
	if err := l.connect(ctx, timeout); err != nil {
		return nil, err
	}
	if err := l.quiet(ctx, timeout); err != nil {
		return nil, err
	}
	adu := rtuEncode(l.adu[:0], unit, req)
	l.adu = adu
	if _, err := l.port.Write(adu); err != nil {
		l.close()
		return nil, fmt.Errorf("write: %w", err)
	}
	l.lastIO = time.Now().Add(time.Duration(len(adu)) * l.char) // the request leaves the wire
	data, err := l.await(ctx, unit, req, l.lastIO.Add(timeout))
	if err != nil && ctx.Err() == nil && l.port != nil && !isException(err) {
		// Whatever is still arriving belongs to the failed exchange.
		if qerr := l.quiet(ctx, timeout); qerr != nil && ctx.Err() == nil {
			return nil, qerr
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return data, err
}

// read reads what the line has within one slice; it returns 0 bytes on silence.
func (l *rtuLink) read() (int, error) {
	n, err := l.port.Read(l.rd[:])
	if err != nil && !errors.Is(err, serial.ErrTimeout) {
		l.close()
		return 0, fmt.Errorf("read: %w", err)
	}
	if n > 0 {
		l.lastIO = time.Now()
	}
	return n, nil
}

// quiet drains the input until the line has been silent for the silent interval plus the
// turnaround delay, or at most limit (a line that never falls silent). Frames drained are
// reported as late; other bytes are dropped.
func (l *rtuLink) quiet(ctx context.Context, limit time.Duration) error {
	need := l.gap + l.turnaround
	deadline := time.Now().Add(max(limit, need))
	defer func() { // the line fell silent (or never will): what is held is all there is
		for _, f := range l.reader.flush() {
			l.late(f[0], f, errors.New("arrived while no request was in flight"))
		}
		if l.reader.noise > 0 {
			l.log.Debug("dropped bytes between frames", "bytes", l.reader.noise)
		}
		l.reader.reset(0, 0)
	}()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := l.read()
		if err != nil {
			return err
		}
		if n > 0 {
			l.reader.add(l.rd[:n])
			for f, _, ok := l.reader.next(nil); ok; f, _, ok = l.reader.next(nil) {
				l.late(f[0], slices.Clone(f), errors.New("arrived while no request was in flight"))
			}
		} else if time.Since(l.lastIO) >= need {
			return nil
		}
		if time.Now().After(deadline) {
			l.log.Debug("line never fell silent; sending anyway", "waited", limit)
			return nil
		}
	}
}

// await reads the reply to req from unit until the deadline.
func (l *rtuLink) await(ctx context.Context, unit byte, req []byte, deadline time.Time) ([]byte, error) {
	r := &l.reader
	r.reset(unit, req[0])
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n, err := l.read()
		if err != nil {
			return nil, err
		}
		if n > 0 {
			r.add(l.rd[:n])
			if data, done, err := r.take(req, l.late); done {
				return data, err
			}
		}
		if time.Now().After(deadline) {
			return nil, r.failure()
		}
	}
}
