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
// request timed out) is discarded. Bytes that come behind a reply in the same read wait in
// the link's buffer for the next exchange, as they would have waited in the socket: it frames
// them first, as a late reply when they make one, as garbage (and a new connection) when they
// do not.
type tcpLink struct {
	addr string
	conn net.Conn
	tid  uint16
	late lateFunc
	in   tcpReader // the replies received, framed
	adu  []byte    // the request being sent, reused
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
	l.in.reset() // bytes left from this connection mean nothing on the next
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
		frame, err := l.in.next(conn)
		if err != nil {
			return nil, tcpErr(err)
		}
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
		return data, err // in l.in's buffer: valid until the next exchange
	}
}

// tcpMaxADU is the longest Modbus TCP frame: the 7-byte MBAP header and a PDU of 253 bytes.
const tcpMaxADU = 7 + 253

// tcpReader frames Modbus TCP replies. It reads as much as the connection has into a fixed
// buffer, so that one read normally brings a whole reply (instead of one read for the header
// and one for the rest), and keeps the bytes after a frame (a reply that came right behind a
// late one, the start of the next) for the next frame. The byte stream it frames is the one
// the connection delivers, whatever the reads that bring it.
type tcpReader struct {
	// Room for a reply and a late one before it, in one read. It must hold at least one
	// tcpMaxADU: then a full buffer always starts with a frame or a garbage header.
	buf        [2 * tcpMaxADU]byte
	start, end int // buf[start:end] is received and not yet framed
}

// reset drops the bytes received, for a new connection.
func (r *tcpReader) reset() { r.start, r.end = 0, 0 }

// next returns the next frame received on c, reading from c until one is whole. The frame is
// in r's buffer: it is valid until the next call, which moves the bytes after it to the front
// of the buffer before reading more. A header that is no Modbus TCP (protocol id not 0, length
// below 2 or above 254) is a *protocolError of kindGarbage holding the 7 header bytes; the
// bytes stay where they are, as the connection is useless (the link closes it). Read errors
// are c's, io.ErrUnexpectedEOF for an end of stream within a frame.
func (r *tcpReader) next(c io.Reader) ([]byte, error) {
	var rerr error
	for {
		if frame, err := r.frame(); frame != nil || err != nil {
			// A read error that came with the frame's last bytes is dropped here: the
			// connection's next read returns it again.
			return frame, err
		}
		if rerr != nil {
			if rerr == io.EOF && r.end > r.start {
				rerr = io.ErrUnexpectedEOF
			}
			return nil, rerr
		}
		if r.start > 0 {
			// The frame returned by the previous call is no longer used: this is the next call.
			r.end = copy(r.buf[:], r.buf[r.start:r.end])
			r.start = 0
		}
		var n int
		n, rerr = c.Read(r.buf[r.end:])
		r.end += n
	}
}

// frame takes the next frame out of the bytes received: nil (and no error) when it is not
// whole yet.
func (r *tcpReader) frame() ([]byte, error) {
	b := r.buf[r.start:r.end]
	if len(b) < 7 {
		return nil, nil
	}
	n := int(binary.BigEndian.Uint16(b[4:]))
	if binary.BigEndian.Uint16(b[2:]) != 0 || n < 2 || n > 254 {
		return nil, protoErr(kindGarbage, append([]byte(nil), b[:7]...), "garbage in reply (not a Modbus TCP header)")
	}
	if len(b) < 6+n {
		return nil, nil
	}
	r.start += 6 + n
	return b[:6+n], nil
}

// tcpErr maps a read or write error: a deadline is a timeout.
func tcpErr(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errTimeout
	}
	return err
}
