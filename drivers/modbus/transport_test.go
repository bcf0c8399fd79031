package modbus

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The TCP link's framing of replies out of its receive buffer, against peers that write
// replies in pieces and in bundles of their choosing.

// scriptPeer is a Modbus TCP peer on loopback whose answer function writes to the connection
// whatever and however it likes (one write or many, then closing or not) for the n-th request
// (from 1) on the conn-th connection (from 1). answer returns false to close the connection.
type scriptPeer struct {
	addr  string
	conns atomic.Int32
}

func newScriptPeer(t *testing.T, answer func(c net.Conn, conn, n int, req []byte) bool) *scriptPeer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &scriptPeer{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			conn := int(p.conns.Add(1))
			wg.Go(func() {
				defer c.Close()
				var in [tcpMaxADU]byte
				for n := 1; ; n++ {
					if _, err := io.ReadFull(c, in[:7]); err != nil {
						return
					}
					size := 6 + int(binary.BigEndian.Uint16(in[4:]))
					if _, err := io.ReadFull(c, in[7:size]); err != nil {
						return
					}
					if !answer(c, conn, n, slices.Clone(in[:size])) {
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return p
}

// linkTo returns a TCP link to addr and the frames it reports late.
func linkTo(t *testing.T, addr string) (*tcpLink, func() [][]byte) {
	t.Helper()
	var mu sync.Mutex
	var late [][]byte
	l := newTCPLink(addr, func(_ byte, frame []byte, why error) {
		if why == nil {
			t.Errorf("late frame % x without a reason", frame)
		}
		mu.Lock()
		defer mu.Unlock()
		late = append(late, frame)
	})
	t.Cleanup(l.close)
	return l, func() [][]byte {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(late)
	}
}

// readTwo is the PDU of a read of holding registers 0 and 1.
var readTwo = []byte{fcReadHolding, 0, 0, 0, 2}

// twoRegisters answers the read ADU req with registers holding v and v+1.
func twoRegisters(req []byte, v byte) []byte {
	return mbap(binary.BigEndian.Uint16(req), req[6], []byte{fcReadHolding, 4, 0, v, 0, v + 1})
}

// staleReply is a reply to the request before req, holding registers of size bytes (at most
// 251: a PDU of 253 bytes, the longest).
func staleReply(req []byte, size int) []byte {
	pdu := []byte{fcReadHolding, byte(size)}
	for i := range size {
		pdu = append(pdu, 0xA0+byte(i))
	}
	return mbap(binary.BigEndian.Uint16(req)-1, req[6], pdu)
}

// exchangeTwo reads registers 0 and 1 of unit 1 through l and checks that they hold v and
// v+1.
func exchangeTwo(t *testing.T, l *tcpLink, v byte) {
	t.Helper()
	data, err := l.exchange(t.Context(), 1, readTwo, 5*time.Second)
	if want := []byte{0, v, 0, v + 1}; err != nil || !bytes.Equal(data, want) {
		t.Fatalf("exchange: % x, %v; want % x", data, err, want)
	}
}

// TestTCPLateAndReplyInOneWrite: late replies and the reply in one write, so in one read (or
// more than one when they do not fit the link's buffer): every late reply is reported whole,
// the reply is the answer.
func TestTCPLateAndReplyInOneWrite(t *testing.T) {
	for _, c := range []struct {
		name        string
		late, sizes int // late replies per request, their register bytes
	}{
		{"one short late reply", 1, 4},
		{"three of the longest", 3, 250},
	} {
		t.Run(c.name, func(t *testing.T) {
			var mu sync.Mutex // the race detector sees no order in the bytes on the socket
			var sent [][]byte
			peer := newScriptPeer(t, func(conn net.Conn, _, n int, req []byte) bool {
				var out []byte
				for range c.late {
					stale := staleReply(req, c.sizes)
					mu.Lock()
					sent = append(sent, stale)
					mu.Unlock()
					out = append(out, stale...)
				}
				_, err := conn.Write(append(out, twoRegisters(req, byte(n))...))
				return err == nil
			})
			l, late := linkTo(t, peer.addr)
			for n := 1; n <= 3; n++ {
				exchangeTwo(t, l, byte(n))
			}
			mu.Lock()
			defer mu.Unlock()
			if got := late(); !slices.EqualFunc(got, sent, bytes.Equal) {
				t.Errorf("late frames\n% x\nwant\n% x", got, sent)
			}
			if n := peer.conns.Load(); n != 1 {
				t.Errorf("%d connections, want 1", n)
			}
		})
	}
}

// TestTCPReplyByteByByte: a late reply and the reply written one byte at a time, as a slow
// gateway might: the link keeps reading until each frame is whole.
func TestTCPReplyByteByByte(t *testing.T) {
	peer := newScriptPeer(t, func(conn net.Conn, _, n int, req []byte) bool {
		for _, b := range append(staleReply(req, 2), twoRegisters(req, byte(n))...) {
			if _, err := conn.Write([]byte{b}); err != nil {
				return false
			}
			time.Sleep(time.Millisecond) // a slow peer; not synchronisation
		}
		return true
	})
	l, late := linkTo(t, peer.addr)
	exchangeTwo(t, l, 1)
	exchangeTwo(t, l, 2)
	if got := late(); len(got) != 2 {
		t.Errorf("late frames % x, want 2", got)
	}
}

// TestTCPStrayBytesAfterReply: bytes that come after a reply in the same read are kept for the
// next exchange, within the connection, exactly as they would have waited in the socket: the
// next exchange frames them first, as a late reply when they make one and as garbage when
// they do not (then the link closes the connection, and the bytes go with it).
func TestTCPStrayBytesAfterReply(t *testing.T) {
	t.Run("late reply split across two answers", func(t *testing.T) {
		stale := staleReply(mbap(10, 1, readTwo), 20) // transaction id 9
		peer := newScriptPeer(t, func(conn net.Conn, _, n int, req []byte) bool {
			var out []byte
			switch n {
			case 1: // the reply, then the first 16 bytes of a late one: more than the reply
				// is long, so that moving them to the front early would overwrite its data
				out = append(twoRegisters(req, 1), stale[:16]...)
			case 2: // the rest of the late reply, then the reply
				out = append(stale[16:], twoRegisters(req, 2)...)
			default:
				out = twoRegisters(req, byte(n))
			}
			_, err := conn.Write(out)
			return err == nil
		})
		l, late := linkTo(t, peer.addr)
		exchangeTwo(t, l, 1)
		if got := late(); len(got) != 0 {
			t.Fatalf("late frames % x after the first exchange", got)
		}
		exchangeTwo(t, l, 2)
		exchangeTwo(t, l, 3)
		if got := late(); len(got) != 1 || !bytes.Equal(got[0], stale) {
			t.Errorf("late frames % x, want % x", got, stale)
		}
		if n := peer.conns.Load(); n != 1 {
			t.Errorf("%d connections, want 1", n)
		}
	})

	t.Run("garbage after the reply", func(t *testing.T) {
		peer := newScriptPeer(t, func(conn net.Conn, c, n int, req []byte) bool {
			out := twoRegisters(req, byte(n))
			if c == 1 && n == 1 {
				out = append(out, 0xFF, 0xFF, 0xFF)
			}
			_, err := conn.Write(out)
			return err == nil
		})
		l, late := linkTo(t, peer.addr)
		exchangeTwo(t, l, 1)
		_, err := l.exchange(t.Context(), 1, readTwo, 5*time.Second)
		var pe *protocolError
		if !errors.As(err, &pe) || pe.kind != kindGarbage {
			t.Fatalf("second exchange: %v, want garbage", err)
		}
		// The stray bytes, then reply 2's transaction id (2) and protocol id.
		if want := []byte{0xFF, 0xFF, 0xFF, 0, 2, 0, 0}; !bytes.Equal(pe.frame, want) {
			t.Errorf("garbage header % x, want % x", pe.frame, want)
		}
		// The next exchange dials again and starts clean: nothing of the old connection's
		// bytes (the rest of reply 2) is framed on the new one.
		exchangeTwo(t, l, 1)
		if n := peer.conns.Load(); n != 2 {
			t.Errorf("%d connections, want 2", n)
		}
		if got := late(); len(got) != 0 {
			t.Errorf("late frames % x", got)
		}
	})

	t.Run("peer closes after stray bytes", func(t *testing.T) {
		peer := newScriptPeer(t, func(conn net.Conn, c, n int, req []byte) bool {
			out := twoRegisters(req, byte(n))
			if c == 1 {
				out = append(out, 0, 0, 0) // the start of a header, then the peer is gone
			}
			_, err := conn.Write(out)
			return err == nil && c > 1
		})
		l, _ := linkTo(t, peer.addr)
		exchangeTwo(t, l, 1)
		_, err := l.exchange(t.Context(), 1, readTwo, 5*time.Second)
		if err == nil || errorKind(err) != kindConnection {
			t.Fatalf("exchange on the closed connection: %v, want a connection error", err)
		}
		exchangeTwo(t, l, 1)
		exchangeTwo(t, l, 2)
	})

	t.Run("half a reply, then silence", func(t *testing.T) {
		peer := newScriptPeer(t, func(conn net.Conn, c, n int, req []byte) bool {
			out := twoRegisters(req, byte(n))
			if c == 1 && n == 2 {
				out = out[:9]
			}
			_, err := conn.Write(out)
			return err == nil
		})
		l, _ := linkTo(t, peer.addr)
		exchangeTwo(t, l, 1)
		if _, err := l.exchange(t.Context(), 1, readTwo, 100*time.Millisecond); !errors.Is(err, errTimeout) {
			t.Fatalf("exchange of half a reply: %v, want a timeout", err)
		}
		exchangeTwo(t, l, 1) // a new connection, without the half reply
	})
}
