package modbus

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// link is the connection (TCP) or port (RTU) an endpoint's goroutine owns. It is used by that
// goroutine only. Both kinds frame and check replies themselves: goburrow's client cannot tell
// an exception from a reply with another function code, cannot skip a stale reply, and its
// transporters cannot be interrupted in a read.
type link interface {
	// connect opens the connection or port if it is not open; a failure is a *connError.
	connect(ctx context.Context, timeout time.Duration) error
	// exchange sends the request PDU req to unit and waits, at most timeout, for its reply.
	// It returns what checkReply returns for the reply (a read's data, an *exceptionError),
	// or a *protocolError, errTimeout or an I/O error; ctx's error as soon as ctx ends. A
	// frame that arrives but does not answer req is handed to the link's late function and
	// never returned as the answer. After a failure the link recovers on its own (closes,
	// drains) so that the next exchange starts clean. The data returned may be the link's own
	// buffer: it is valid until the next exchange (every caller decodes it at once).
	exchange(ctx context.Context, unit byte, req []byte, timeout time.Duration) ([]byte, error)
	// close closes it; the next exchange opens it again. Idempotent.
	close()
}

// lateFunc is told about every frame a link discards: unit is the frame's unit id, why says
// what makes it no answer to the request in flight.
type lateFunc func(unit byte, frame []byte, why error)

// tcpLink is one Modbus TCP connection shared by every unit id behind an endpoint. Replies are
// matched to requests by transaction id; one with an older id (a reply that came after its
// request timed out) is discarded.
type tcpLink struct {
	addr string
	conn net.Conn
	tid  uint16
	late lateFunc
	buf  [7 + 253]byte // MBAP header and the longest PDU, received
	adu  []byte        // the request being sent, reused
	// watch closes conn when the context of the exchanges ends (context.AfterFunc), so that
	// shutdown does not wait for a slow device; it is set up once per connection and context
	// (watching is that context's Done channel), not per request. nil when not set up.
	watch    func() bool
	watching <-chan struct{}
}

func newTCPLink(addr string, late lateFunc) *tcpLink {
	return &tcpLink{addr: addr, late: late}
}

func (l *tcpLink) connect(ctx context.Context, timeout time.Duration) error {
	if l.conn != nil {
		return nil
	}
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "tcp", l.addr)
	if err != nil {
		return &connError{err}
	}
	l.conn = c
	return nil
}

func (l *tcpLink) close() {
	if l.watch != nil {
		l.watch()
		l.watch, l.watching = nil, nil
	}
	if l.conn != nil {
		_ = l.conn.Close()
		l.conn = nil
	}
}

func (l *tcpLink) exchange(ctx context.Context, unit byte, req []byte, timeout time.Duration) ([]byte, error) {
	if err := l.connect(ctx, timeout); err != nil {
		return nil, err
	}
	conn := l.conn
	// Shutdown must not wait for a slow device: closing the connection ends a blocked read.
	if done := ctx.Done(); l.watch == nil || done != l.watching {
		if l.watch != nil {
			l.watch()
		}
		l.watch, l.watching = context.AfterFunc(ctx, func() { _ = conn.Close() }), done
	}
	data, err := l.roundTrip(conn, unit, req, timeout)
	if ctx.Err() != nil {
		l.close()
		return nil, ctx.Err()
	}
	if err != nil && !isException(err) {
		// A late reply would only be discarded, but a connection that timed out may be dead
		// (a TCP-to-RTU gateway that restarted): the next request dials again.
		l.close()
	}
	return data, err
}

// roundTrip writes one request and reads frames until the one with its transaction id.
func (l *tcpLink) roundTrip(conn net.Conn, unit byte, req []byte, timeout time.Duration) ([]byte, error) {
	l.tid++
	adu := append(l.adu[:0], 0, 0, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint16(adu[0:], l.tid)
	binary.BigEndian.PutUint16(adu[4:], uint16(len(req)+1))
	adu[6] = unit
	adu = append(adu, req...)
	l.adu = adu
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	if _, err := conn.Write(adu); err != nil {
		return nil, tcpErr(err)
	}
	for {
		if _, err := io.ReadFull(conn, l.buf[:7]); err != nil {
			return nil, tcpErr(err)
		}
		n := int(binary.BigEndian.Uint16(l.buf[4:]))
		if binary.BigEndian.Uint16(l.buf[2:]) != 0 || n < 2 || n > 254 {
			return nil, protoErr(kindGarbage, append([]byte(nil), l.buf[:7]...), "garbage in reply (not a Modbus TCP header)")
		}
		if _, err := io.ReadFull(conn, l.buf[7:6+n]); err != nil {
			return nil, tcpErr(err)
		}
		frame := l.buf[:6+n]
		if binary.BigEndian.Uint16(frame) != l.tid {
			l.late(frame[6], append([]byte(nil), frame...), fmt.Errorf("transaction id %d, want %d", binary.BigEndian.Uint16(frame), l.tid))
			continue
		}
		if frame[6] != unit {
			return nil, protoErr(kindWrongUnit, append([]byte(nil), frame...), "wrong unit in reply (%d, want %d)", frame[6], unit)
		}
		data, err := checkReply(req, frame[7:])
		if err != nil {
			if pe := (*protocolError)(nil); errors.As(err, &pe) {
				pe.frame = append([]byte(nil), frame...)
			}
		}
		return data, err // in l.buf: valid until the next exchange
	}
}

// tcpErr maps a read or write error: a deadline is a timeout.
func tcpErr(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errTimeout
	}
	return err
}
