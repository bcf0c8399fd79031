package bridge

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// countingConn counts the writes that reach the socket.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// tcpPair returns both ends of a real loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// A burst of 500 packets written as paho writes them (one write each) reaches the socket in a
// handful of writes, whole and in order; Close writes what is left before it closes.
func TestBatchConnCoalescesBurst(t *testing.T) {
	client, server := tcpPair(t)
	counted := &countingConn{Conn: client}
	b := newBatchConn(counted, 5*time.Second, nil)
	got := make(chan []byte, 1)
	go func() {
		all, _ := io.ReadAll(server)
		got <- all
	}()
	var want bytes.Buffer
	for i := range 500 {
		p := fmt.Appendf(nil, "packet %03d;", i)
		want.Write(p)
		if n, err := b.Write(p); n != len(p) || err != nil {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
	}
	time.Sleep(20 * time.Millisecond) // the burst goes out
	last := []byte("DISCONNECT")
	want.Write(last)
	if _, err := b.Write(last); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil { // at once: the last packet is still buffered
		t.Fatal(err)
	}
	all := <-got
	if !bytes.Equal(all, want.Bytes()) {
		t.Fatalf("the peer read %d bytes, want the %d written, in order", len(all), want.Len())
	}
	if n := counted.writes.Load(); n > 20 {
		t.Errorf("501 packets took %d socket writes, want a handful", n)
	}
	if _, err := b.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close: %v, want net.ErrClosed", err)
	}
}

// A socket that fails a write closes the connection (so that paho's reader ends it), and
// every later Write returns the error: nothing is reported written that could not be.
func TestBatchConnWriteFailure(t *testing.T) {
	client, server := tcpPair(t)
	b := newBatchConn(client, time.Second, nil)
	defer b.Close()
	server.(*net.TCPConn).SetLinger(0)
	server.Close() // a reset: the next socket writes fail
	deadline := time.Now().Add(10 * time.Second)
	var err error
	for err == nil {
		if time.Now().After(deadline) {
			t.Fatal("writes to a reset connection never failed")
		}
		_, err = b.Write(make([]byte, 1024))
		time.Sleep(time.Millisecond)
	}
	if _, again := b.Write([]byte("x")); !errors.Is(again, err) {
		t.Errorf("after a failed socket write: %v, then %v; want the same error again", err, again)
	}
	if _, rerr := client.Read(make([]byte, 1)); rerr == nil {
		t.Error("the socket is still open after a failed write: paho's reader would not end the connection")
	}
}

// A socket that does not take what is written (a peer that stops reading) makes paho's writes
// wait once 4×coalesceMax is buffered, and fail once the writer's bounded write gives up:
// memory stays bounded and the connection ends.
func TestBatchConnStalledPeerBounded(t *testing.T) {
	client, _ := tcpPair(t) // the server never reads
	b := newBatchConn(client, 300*time.Millisecond, nil)
	defer b.Close()
	chunk := make([]byte, 16<<10)
	start := time.Now()
	var err error
	for err == nil && time.Since(start) < 20*time.Second {
		_, err = b.Write(chunk)
		b.mu.Lock()
		held := len(b.buf)
		b.mu.Unlock()
		if held > 4*coalesceMax+len(chunk) {
			t.Fatalf("%d bytes buffered for a peer that does not read, want at most %d", held, 4*coalesceMax+len(chunk))
		}
	}
	if err == nil {
		t.Fatal("writes to a peer that does not read never failed")
	}
}

// Two Closes at once (paho's outgoing goroutine after the DISCONNECT, and its disconnect
// path) both wait for what is buffered to be written: the last packet is never lost.
func TestBatchConnConcurrentClose(t *testing.T) {
	for range 50 {
		client, server := tcpPair(t)
		b := newBatchConn(client, 5*time.Second, nil)
		got := make(chan []byte, 1)
		go func() {
			all, _ := io.ReadAll(server)
			got <- all
		}()
		if _, err := b.Write([]byte("DISCONNECT")); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { b.Close(); close(done) }()
		b.Close()
		<-done
		if all := <-got; string(all) != "DISCONNECT" {
			t.Fatalf("the peer read %q before the connection closed, want the last packet", all)
		}
	}
}

// writePublish frames MQTT 3.1.1 QoS 0 PUBLISH packets that paho's own decoder reads back,
// whole and in order among paho's packets (here a PINGREQ written through Write), whatever
// their size (one-, two- and three-byte remaining lengths), retained or not.
func TestBatchConnWritePublish(t *testing.T) {
	client, server := tcpPair(t)
	b := newBatchConn(client, 5*time.Second, nil)
	type pub struct {
		topic   string
		retain  bool
		payload []byte
	}
	pubs := []pub{
		{"spBv1.0/G/DDATA/E/D1", false, []byte{1, 2, 3}},
		{"spBv1.0/G/DBIRTH/E/D1", true, bytes.Repeat([]byte{7}, 300)},
		{"a", false, nil},
		{"spBv1.0/G/DDATA/E/D2", false, bytes.Repeat([]byte{9}, 70_000)},
	}
	for i, p := range pubs {
		if err := b.writePublish(p.topic, p.retain, p.payload); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			ping := packets.NewControlPacket(packets.Pingreq)
			if err := ping.Write(b); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := b.writePublish(string(make([]byte, 70_000)), false, nil); err == nil {
		t.Error("a topic longer than 65,535 bytes was framed")
	}
	for i, want := range pubs {
		cp, err := packets.ReadPacket(server)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		got, ok := cp.(*packets.PublishPacket)
		if !ok || got.TopicName != want.topic || got.Retain != want.retain || got.Qos != 0 || !bytes.Equal(got.Payload, want.payload) {
			t.Fatalf("packet %d: %v, want a QoS 0 PUBLISH on %q (retain %v) with %d payload bytes", i, cp, want.topic, want.retain, len(want.payload))
		}
		if i == 1 {
			if cp, err := packets.ReadPacket(server); err != nil {
				t.Fatalf("after packet 1: %v", err)
			} else if _, ok := cp.(*packets.PingreqPacket); !ok {
				t.Fatalf("after packet 1: %v (%v), want paho's PINGREQ", cp, err)
			}
		}
	}
	b.Close()
}

// commit runs once, before the first write's bytes go anywhere (the bdSeq of the will is
// persisted before the CONNECT); a commit that fails fails that write, and nothing reaches the
// peer until one succeeds.
func TestBatchConnCommitBeforeFirstWrite(t *testing.T) {
	client, server := tcpPair(t)
	var commits atomic.Int64
	fail := true
	b := newBatchConn(client, 5*time.Second, func() error {
		commits.Add(1)
		if fail {
			return errors.New("disk full")
		}
		return nil
	})
	if _, err := b.Write([]byte("CONNECT")); err == nil || err.Error() != "disk full" {
		t.Fatalf("first write with a failing commit: %v, want its error", err)
	}
	fail = false
	for _, p := range []string{"CONNECT", "PUBLISH"} {
		if _, err := b.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.writePublish("t", false, nil); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	go func() { all, _ := io.ReadAll(server); got <- all }()
	b.Close()
	if all := <-got; !bytes.HasPrefix(all, []byte("CONNECTPUBLISH")) {
		t.Errorf("the peer read %q, want the writes after the commit, and nothing of the failed one", all)
	}
	if n := commits.Load(); n != 2 {
		t.Errorf("commit ran %d times, want 2: the failed one, and once for every later write", n)
	}
}
