package bridge

import (
	"fmt"
	"net"
	"sync"
	"time"
)

// Coalescing paho's writes. paho writes every packet with a write of its own, so a poll's
// burst (a DDATA per device, all on the same whole second) cost the gateway a write syscall
// per message, and the broker a read and a wake-up per message. batchConn gathers what paho
// writes and hands it to the socket in one write per burst.
const (
	// coalesceDelay is how long the first packet of a burst waits for the rest before it is
	// written: little against the latency the gateway answers for (milliseconds), much against
	// the microseconds between a burst's publishes.
	coalesceDelay = 200 * time.Microsecond
	// coalesceMax is a burst worth writing at once without waiting; paho's writes wait while
	// four times that is not written yet (the socket does not keep up).
	coalesceMax = 64 << 10
)

// batchConn is the connection paho writes to. Before the first byte of the first write (the
// CONNECT) goes anywhere it runs commit, once: the bdSeq of the attempt's will is persisted
// right before the CONNECT, so that an attempt that never gets that far spends none; if
// commit fails, that write fails and the attempt with it. Then a Write appends to a buffer and returns, and
// one goroutine writes the buffer to the socket coalesceDelay after the first byte of a
// burst (at once when coalesceMax is reached), each write bounded by timeout. The first
// failed socket write closes the socket, so that paho's reader ends the connection as it
// would have, and every later Write returns that error. A QoS 0 token so completes once its
// packet is buffered rather than written: the bridge counts the detection window from then,
// at most coalesceDelay plus one write earlier, which the window's margin covers. Close
// writes what is buffered first (paho's DISCONNECT), bounded by timeout.
type batchConn struct {
	net.Conn
	timeout time.Duration
	commit  func() error // until the first write has run it; nil after

	mu     sync.Mutex
	moved  sync.Cond // signalled when the buffer was written or a write failed
	buf    []byte    // written by paho, not yet handed to the socket
	err    error     // the first failed socket write
	closed bool
	kick   chan struct{} // wakes the writer: something to write, or closed
	done   chan struct{} // closed when the writer has returned
}

func newBatchConn(c net.Conn, timeout time.Duration, commit func() error) *batchConn {
	b := &batchConn{Conn: c, timeout: timeout, commit: commit, kick: make(chan struct{}, 1), done: make(chan struct{})}
	b.moved.L = &b.mu
	go b.writer()
	return b
}

// Write buffers p for the writer. It waits while 4×coalesceMax bytes are not written yet,
// at most until a socket write fails (each is bounded by timeout).
func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.room(); err != nil {
		return 0, err
	}
	b.buf = append(b.buf, p...)
	b.wake()
	return len(p), nil
}

// writePublish buffers an MQTT 3.1.1 QoS 0 PUBLISH of payload on topic, as one packet among
// paho's: the bridge's sender writes its QoS 0 publishes here instead of through paho's three
// goroutine hand-offs per message (Publish, its forwarder, its outgoing goroutine). paho's
// packets and these never interleave within a packet, and what the sender wrote before a
// paho publish (a QoS 1 probe) is in the buffer before it.
func (b *batchConn) writePublish(topic string, retain bool, payload []byte) error {
	n := 2 + len(topic) + len(payload) // the remaining length
	if len(topic) > 0xffff || n > maxRemainingLength {
		return fmt.Errorf("publish on %q: %d bytes, more than MQTT carries", topic, n)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.room(); err != nil {
		return err
	}
	hdr := byte(0x30) // PUBLISH, QoS 0
	if retain {
		hdr |= 1
	}
	b.buf = append(b.buf, hdr)
	for ; n >= 0x80; n >>= 7 {
		b.buf = append(b.buf, byte(n)|0x80)
	}
	b.buf = append(b.buf, byte(n), byte(len(topic)>>8), byte(len(topic)))
	b.buf = append(append(b.buf, topic...), payload...)
	b.wake()
	return nil
}

// maxRemainingLength is the largest MQTT remaining length (four bytes of varint).
const maxRemainingLength = 268_435_455

// room runs commit if no write has yet, waits while 4×coalesceMax bytes are not written yet,
// and returns the error a write would get now: commit's, a failed socket write's, or
// net.ErrClosed. Called with mu held.
func (b *batchConn) room() error {
	for b.err == nil && !b.closed && len(b.buf) >= 4*coalesceMax {
		b.moved.Wait()
	}
	switch {
	case b.err != nil:
		return b.err
	case b.closed:
		return net.ErrClosed
	case b.commit != nil:
		if err := b.commit(); err != nil {
			return err
		}
		b.commit = nil
	}
	return nil
}

// wake tells the writer that there is something to do. Called with mu held.
func (b *batchConn) wake() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// SetWriteDeadline is paho's deadline for a write that no longer reaches the socket: it is
// ignored, the writer bounds its own writes by timeout.
func (b *batchConn) SetWriteDeadline(time.Time) error { return nil }

// writer writes the buffer to the socket, a burst at a time, until Close or a failed write.
func (b *batchConn) writer() {
	defer close(b.done)
	var out []byte
	for range b.kick {
		b.mu.Lock()
		if !b.closed && len(b.buf) < coalesceMax {
			b.mu.Unlock()
			time.Sleep(coalesceDelay) // the rest of the burst joins the first packet
			b.mu.Lock()
		}
		out, b.buf = b.buf, out[:0]
		closed := b.closed
		b.mu.Unlock()
		if len(out) > 0 {
			err := b.Conn.SetWriteDeadline(time.Now().Add(b.timeout))
			if err == nil {
				_, err = b.Conn.Write(out)
			}
			b.mu.Lock()
			if err != nil && b.err == nil {
				b.err = err
			}
			b.moved.Broadcast()
			b.mu.Unlock()
			if err != nil {
				_ = b.Conn.Close() // paho's reader ends the connection
				return
			}
		}
		if cap(out) > 4*coalesceMax {
			out = nil // a burst's buffer is not kept for good
		}
		if closed {
			return
		}
	}
}

// Close writes what is buffered (bounded by timeout), stops the writer and closes the socket.
// Every call waits for that write: paho closes from more than one goroutine (its outgoing one
// right after the DISCONNECT, its disconnect path as well), and a second Close that closed
// the socket under the write would lose the DISCONNECT, and the broker would publish the will.
func (b *batchConn) Close() error {
	b.mu.Lock()
	b.closed = true
	b.wake()
	b.moved.Broadcast()
	b.mu.Unlock()
	<-b.done
	return b.Conn.Close()
}
