package broker

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	pebbledb "github.com/cockroachdb/pebble"
	"github.com/mochi-mqtt/server/v2/packets"
)

const queuedMessages = 1000

// subscribeAway makes mosquitto_sub (an independent client) subscribe historian with a
// persistent session, and go away.
func subscribeAway(t *testing.T, addr string) {
	t.Helper()
	if out, err := mosquitto(t, "mosquitto_sub", addr, "-c", "-i", "historian", "-q", "1", "-t", "tags/#", "-E"); err != nil {
		t.Fatalf("mosquitto_sub -E: %v: %s", err, out)
	}
}

// receiveAll brings historian back with mosquitto_sub and returns the n payloads it prints.
func receiveAll(t *testing.T, addr string, n int) []string {
	t.Helper()
	out, err := mosquitto(t, "mosquitto_sub", addr, "-c", "-i", "historian", "-q", "1", "-t", "tags/#",
		"-C", strconv.Itoa(n), "-W", "20")
	if err != nil {
		t.Fatalf("mosquitto_sub -C %d: %v (%d lines)", n, err, strings.Count(out, "\n"))
	}
	return strings.Fields(out)
}

func publishNumbered(t testing.TB, b *Broker, n int) {
	t.Helper()
	for i := range n {
		if err := b.Publish("tags/level", 1, false, []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
}

// A persistent subscriber that is away while 1,000 QoS 1 messages are published gets them
// all, in publish order, when it comes back (mochi alone resends them sorted by the uint16 of
// their creation second, with an unstable sort: within a second, in no set order).
func TestPersistentSessionInOrder(t *testing.T) {
	b := start(t, Options{DataDir: t.TempDir()})
	addr := b.Addr().String()
	subscribeAway(t, addr)
	eventually(t, 5*time.Second, "the session away", func() bool { return b.Stats().Sessions == 1 })
	publishNumbered(t, b, queuedMessages)
	st := b.Stats()
	if st.QueuedMessages != queuedMessages || len(st.Queued) != 1 || st.Queued[0].ClientID != "historian" {
		t.Fatalf("stats: %d queued in %+v", st.QueuedMessages, st.Queued)
	}
	checkSequence(t, receiveAll(t, addr, queuedMessages), queuedMessages)
	eventually(t, 5*time.Second, "the queue acknowledged", func() bool { return b.Stats().QueuedMessages == 0 })
}

// The same across a restart of the broker on the same data dir.
func TestPersistentSessionInOrderAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	b, err := New(Options{Listen: "127.0.0.1:0", DataDir: dir, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Serve(); err != nil {
		t.Fatal(err)
	}
	subscribeAway(t, b.Addr().String())
	eventually(t, 5*time.Second, "the session away", func() bool { return b.Stats().Sessions == 1 })
	publishNumbered(t, b, queuedMessages)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b2 := start(t, Options{DataDir: dir})
	if st := b2.Stats(); st.Sessions != 1 || st.QueuedMessages != queuedMessages || st.Store.State != "ok" {
		t.Fatalf("after restart: %d sessions, %d queued, store %+v", st.Sessions, st.QueuedMessages, st.Store)
	}
	checkSequence(t, receiveAll(t, b2.Addr().String(), queuedMessages), queuedMessages)
}

const killChildEnv = "WELLGATE_BROKER_KILL_CHILD_DIR"

// The power-loss test: the broker runs in a child process (this test binary); a
// persistent subscriber goes away, the child publishes 1,000 QoS 1 messages as the gateway
// does (in process) and is SIGKILLed; a broker restarted on the same data dir hands the
// returning subscriber all 1,000, in publish order.
func TestPersistentSessionSurvivesSIGKILL(t *testing.T) {
	if dir := os.Getenv(killChildEnv); dir != "" {
		killChild(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestPersistentSessionSurvivesSIGKILL$")
	cmd.Env = append(os.Environ(), killChildEnv+"="+dir)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	sc := bufio.NewScanner(stdout)
	expect := func(prefix string) string {
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
				return v
			}
		}
		t.Fatalf("child exited before printing %q", prefix)
		return ""
	}
	addr := expect("addr ")
	subscribeAway(t, addr)
	fmt.Fprintf(stdin, "publish %d\n", queuedMessages)
	if got := expect("published "); got != strconv.Itoa(queuedMessages) {
		t.Fatalf("child published %s", got)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	b := start(t, Options{DataDir: dir})
	checkSequence(t, receiveAll(t, b.Addr().String(), queuedMessages), queuedMessages)
}

// killChild serves a broker on dir, and on "publish N" (once its subscriber is away)
// publishes N numbered QoS 1 messages, then says so and waits for SIGKILL.
func killChild(dir string) {
	b, err := New(Options{Listen: "127.0.0.1:0", DataDir: dir, Logger: sloggerTo(io.Discard)})
	if err != nil {
		panic(err)
	}
	if err := b.Serve(); err != nil {
		panic(err)
	}
	fmt.Println("addr " + b.Addr().String())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		v, ok := strings.CutPrefix(in.Text(), "publish ")
		if !ok {
			continue
		}
		n, _ := strconv.Atoi(v)
		for b.Stats().Sessions != 1 {
			time.Sleep(time.Millisecond) // the subscriber's disconnect is being processed
		}
		for i := range n {
			if err := b.Publish("tags/level", 1, false, []byte(strconv.Itoa(i))); err != nil {
				panic(err)
			}
		}
		fmt.Printf("published %d\n", n)
	}
	select {}
}

// An MQTT 5 subscriber with a session expiry interval (mosquitto_sub -V 5 -x) is a persistent
// session too: away, it gets its messages in order; its denied subscription is refused.
func TestPersistentSessionMQTT5(t *testing.T) {
	b := start(t, Options{DataDir: t.TempDir(), Users: []User{
		{Name: "hmi", PasswordHash: hash(t, "hmi-pw"), Access: Access{Read: []string{"tags/#"}}}}})
	addr := b.Addr().String()
	v5 := []string{"-V", "5", "-c", "-x", "3600", "-i", "h5", "-u", "hmi", "-P", "hmi-pw", "-q", "1"}
	if out, _ := mosquitto(t, "mosquitto_sub", addr, append(v5, "-t", "spBv1.0/#", "-E")...); !strings.Contains(out, "All subscription requests were denied") {
		t.Fatalf("a denied MQTT 5 subscription: %s", out)
	}
	if out, err := mosquitto(t, "mosquitto_sub", addr, append(v5, "-t", "tags/#", "-E")...); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	eventually(t, 5*time.Second, "the session away", func() bool { return b.Stats().Sessions == 1 })
	publishNumbered(t, b, 300)
	out, err := mosquitto(t, "mosquitto_sub", addr, append(v5, "-t", "tags/#", "-C", "300", "-W", "20")...)
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	checkSequence(t, strings.Fields(out), 300)
}

// An MQTT 5 session that sets its expiry to 0 on DISCONNECT ends there, and its records
// (session, subscription, queued messages) leave the store with it.
func TestMQTT5SessionEndedOnDisconnect(t *testing.T) {
	dir := t.TempDir()
	b, err := New(Options{Listen: "127.0.0.1:0", DataDir: dir, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Serve(); err != nil {
		t.Fatal(err)
	}
	c := rawV5(t, b.Addr().String(), "h5", 3600)
	c.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, PacketID: 1,
		Filters: packets.Subscriptions{{Filter: "tags/#", Qos: 1}}})
	c.expect(packets.Suback)
	publishNumbered(t, b, 3) // queued in flight: the client does not acknowledge them
	c.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Disconnect},
		Properties: packets.Properties{SessionExpiryInterval: 0, SessionExpiryIntervalFlag: true}})
	eventually(t, 5*time.Second, "the session gone", func() bool { return b.Stats().Sessions == 0 && b.Clients() == 0 })
	if keys := storeKeys(t, b, "h5"); len(keys) != 0 {
		t.Fatalf("records left in the store: %q", keys)
	}
}

// storeKeys closes b and lists the keys in its store that contain sub.
func storeKeys(t *testing.T, b *Broker, sub string) []string {
	t.Helper()
	dir := b.store.dir
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := pebbledb.Open(dir, &pebbledb.Options{ReadOnly: true, Logger: quietPebble{}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	it, _ := db.NewIter(nil)
	defer it.Close()
	var keys []string
	for it.First(); it.Valid(); it.Next() {
		if strings.Contains(string(it.Key()), sub) {
			keys = append(keys, string(it.Key()))
		}
	}
	return keys
}

// rawConn is a minimal MQTT 5 client that speaks in mochi's packet encoding.
type rawConn struct {
	t *testing.T
	net.Conn
	r *bufio.Reader
}

func rawV5(t *testing.T, addr, id string, expiry uint32) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &rawConn{t: t, Conn: nc, r: bufio.NewReader(nc)}
	c.send(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 5,
		Connect:    packets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: id, Keepalive: 60},
		Properties: packets.Properties{SessionExpiryInterval: expiry, SessionExpiryIntervalFlag: true}})
	c.expect(packets.Connack)
	return c
}

func (c *rawConn) send(pk packets.Packet) {
	c.t.Helper()
	pk.ProtocolVersion = 5
	var buf bytes.Buffer
	var err error
	switch pk.FixedHeader.Type {
	case packets.Connect:
		err = pk.ConnectEncode(&buf)
	case packets.Subscribe:
		err = pk.SubscribeEncode(&buf)
	case packets.Publish:
		err = pk.PublishEncode(&buf)
	case packets.Disconnect:
		err = pk.DisconnectEncode(&buf)
	}
	if err == nil {
		_, err = c.Write(buf.Bytes())
	}
	if err != nil {
		c.t.Fatal(err)
	}
}

// expect reads packets until one of type typ arrives.
func (c *rawConn) expect(typ byte) {
	c.t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		b, err := c.r.ReadByte()
		if err != nil {
			c.t.Fatalf("waiting for packet type %d: %v", typ, err)
		}
		n, _, err := packets.DecodeLength(c.r)
		if err != nil {
			c.t.Fatal(err)
		}
		if _, err := io.CopyN(io.Discard, c.r, int64(n)); err != nil {
			c.t.Fatal(err)
		}
		if b>>4 == typ {
			return
		}
	}
}
