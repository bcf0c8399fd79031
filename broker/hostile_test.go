package broker

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	ppackets "github.com/eclipse/paho.mqtt.golang/packets"
)

// rawConnect opens a socket to addr, sends an MQTT 3.1.1 CONNECT and reads the CONNACK.
func rawConnect(t *testing.T, addr, id string, keepalive uint16) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	vh := []byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, byte(keepalive >> 8), byte(keepalive)}
	body := append(vh, byte(len(id)>>8), byte(len(id)))
	body = append(body, id...)
	if _, err := c.Write(append(append([]byte{0x10}, varint(len(body))...), body...)); err != nil {
		t.Fatal(err)
	}
	ack := make([]byte, 4)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
		t.Fatalf("CONNACK %x, %v", ack, err)
	}
	_ = c.SetReadDeadline(time.Time{})
	return c
}

// varint encodes an MQTT remaining length.
func varint(n int) []byte {
	var out []byte
	for {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		out = append(out, b)
		if n == 0 {
			return out
		}
	}
}

// closedByPeer waits until the broker has closed c (a read ends in EOF or a reset).
func closedByPeer(t *testing.T, c net.Conn, within time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(within))
	buf := make([]byte, 64)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		if isTimeout(err) {
			t.Fatalf("connection still open after %s", within)
		}
		return
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// A 250 MiB PUBLISH (the one that got the gateway OOM-killed) is refused on its fixed header:
// the client is dropped before the body is read, memory does not grow, and another client
// goes on. The same for an oversized CONNECT, before any session exists.
func TestOversizedPacketRefusedOnFixedHeader(t *testing.T) {
	logs := &logBuffer{}
	b := start(t, Options{MaxPacketSize: 64 << 10, Logger: logs.logger()})
	addr := b.Addr().String()
	in := newInbox()
	watcher := dial(t, pahoOpts("tcp://"+addr, "watcher", true))
	subscribe(t, watcher, "t/#", 1, in.handle)
	before := heapInUse()

	big := rawConnect(t, addr, "big", 60)
	header := append([]byte{0x30}, varint(250<<20)...)
	header = append(header, 0, 3, 't', '/', 'x')
	_, _ = big.Write(header)
	_, _ = big.Write(make([]byte, 1<<20)) // the start of the body; the broker must not wait for the rest
	closedByPeer(t, big, 5*time.Second)

	bigConnect, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer bigConnect.Close()
	_, _ = bigConnect.Write(append([]byte{0x10}, varint(250<<20)...))
	closedByPeer(t, bigConnect, 5*time.Second)

	if grew := int64(heapInUse()) - int64(before); grew > 16<<20 {
		t.Fatalf("heap grew by %d MiB for refused packets", grew>>20)
	}
	// The broker closes the socket, then counts: wait for the count.
	eventually(t, 5*time.Second, "two oversized packets counted", func() bool { return b.Stats().Connections.Oversized == 2 })
	if n := len(logs.lines("level=WARN", "mqtt packet over the size limit")); n != 2 {
		t.Fatalf("%d warnings about the oversized packets, want 2:\n%s", n, logs)
	}
	if err := b.Publish("t/ok", 1, false, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if m := in.wait(t, 1, 10*time.Second)[0]; string(m.Payload()) != "still here" {
		t.Fatalf("watcher got %q", m.Payload())
	}
	// A packet just under the limit still goes through.
	watcher.Publish("t/max", 0, false, make([]byte, 60<<10)).Wait()
	if got := in.wait(t, 2, 10*time.Second); len(got[1].Payload()) != 60<<10 {
		t.Fatalf("a 60 KiB publish arrived with %d bytes", len(got[1].Payload()))
	}
}

// Sockets that never send CONNECT are dropped after the deadline; past the socket bound
// (MaxClients + DefaultMaxPending) new sockets are closed at once. Then a real client gets in.
func TestSilentSocketsDroppedAndBounded(t *testing.T) {
	logs := &logBuffer{}
	const maxClients, silent = 4, 60
	b := start(t, Options{MaxClients: maxClients, ConnectTimeout: 300 * time.Millisecond, Logger: logs.logger()})
	addr := b.Addr().String()
	conns := make([]net.Conn, silent)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	start := time.Now()
	for _, c := range conns {
		closedByPeer(t, c, 5*time.Second)
	}
	bound := uint64(maxClients + DefaultMaxPending)
	eventually(t, 5*time.Second, "every socket counted", func() bool {
		st := b.Stats().Connections
		return st.ConnectTimeouts+st.Refused == silent
	})
	if st := b.Stats().Connections; st.ConnectTimeouts != bound || st.Refused != silent-bound {
		t.Fatalf("%d timed out, %d refused; want %d and %d", st.ConnectTimeouts, st.Refused, bound, silent-bound)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("silent sockets held %s", d)
	}
	if err := dialErr(pahoOpts("tcp://"+addr, "real", true)); err != nil {
		t.Fatalf("a real client after the flood: %v", err)
	}
	if n := len(logs.lines("mqtt connection sent no CONNECT in time")); n != 1 {
		t.Fatalf("%d lines for %d timeouts, want 1 (rate-limited):\n%s", n, bound, logs)
	}
}

// max_clients: one more client is refused with CONNACK "server unavailable"; once one leaves,
// a new one gets in.
func TestMaxClients(t *testing.T) {
	b := start(t, Options{MaxClients: 3})
	url := "tcp://" + b.Addr().String()
	first := dial(t, pahoOpts(url, "c0", true))
	for i := 1; i < 3; i++ {
		dial(t, pahoOpts(url, fmt.Sprintf("c%d", i), true))
	}
	if err := dialErr(pahoOpts(url, "c3", true)); !errors.Is(err, ppackets.ErrorRefusedServerUnavailable) {
		t.Fatalf("fourth client: %v, want server unavailable", err)
	}
	eventually(t, 5*time.Second, "the refusal counted", func() bool { return b.Stats().Connections.Refused >= 1 }) // paho retries as MQTT 3.1
	first.Disconnect(50)
	eventually(t, 5*time.Second, "the first client gone", func() bool { return b.Clients() == 2 })
	if err := dialErr(pahoOpts(url, "c4", true)); err != nil {
		t.Fatalf("a client after one left: %v", err)
	}
}

// flakyListener fails its first n accepts, as accept(2) does when file descriptors run out.
type flakyListener struct {
	net.Listener
	failures atomic.Int32
}

func (f *flakyListener) Accept() (net.Conn, error) {
	if f.failures.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return f.Listener.Accept()
}

// A failed accept does not stop the listener (mochi's returns for good): it backs off, counts
// and logs the failure once, and accepts again.
func TestAcceptErrorsDoNotStopTheListener(t *testing.T) {
	logs := &logBuffer{}
	b := start(t, Options{Logger: logs.logger(), listenFn: func(addr string) (net.Listener, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, err
		}
		f := &flakyListener{Listener: ln}
		f.failures.Store(5)
		return f, nil
	}})
	if err := dialErr(pahoOpts("tcp://"+b.Addr().String(), "after", true)); err != nil {
		t.Fatalf("connect after accept errors: %v", err)
	}
	if n := b.Stats().Connections.AcceptErrors; n != 5 {
		t.Fatalf("%d accept errors counted, want 5", n)
	}
	if n := len(logs.lines("level=WARN", "accept failed", "too many open files")); n != 1 {
		t.Fatalf("%d accept warnings, want 1:\n%s", n, logs)
	}
}

const fdChildEnv = "WELLGATE_BROKER_FD_CHILD"

// The case for real: a broker process with a low file descriptor limit, flooded with
// silent sockets until accept fails with EMFILE. Once the sockets are gone, it accepts again.
// The broker runs in a child process (this test binary), so that the limit is its own.
func TestAcceptSurvivesFileDescriptorExhaustion(t *testing.T) {
	if os.Getenv(fdChildEnv) != "" {
		fdChild()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestAcceptSurvivesFileDescriptorExhaustion$")
	cmd.Env = append(os.Environ(), fdChildEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	addr := ""
	for addr == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("child exited before listening")
			}
			if a, ok := strings.CutPrefix(l, "addr "); ok {
				addr = a
			}
		case <-time.After(20 * time.Second):
			t.Fatal("child did not start")
		}
	}
	var silent []net.Conn
	defer func() {
		for _, c := range silent {
			c.Close()
		}
	}()
	sawEMFILE := false
	for i := 0; i < 200 && !sawEMFILE; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		silent = append(silent, c)
		for more := true; more; {
			select {
			case l := <-lines:
				sawEMFILE = sawEMFILE || strings.Contains(l, "accept failed") && strings.Contains(l, "too many open files")
			default:
				more = false
			}
		}
		if i > 60 && !sawEMFILE {
			time.Sleep(10 * time.Millisecond) // let the child's accept loop reach the limit
		}
	}
	if !sawEMFILE {
		t.Fatal("the child never ran out of file descriptors")
	}
	for _, c := range silent {
		c.Close()
	}
	silent = nil
	if err := dialErr(pahoOpts("tcp://"+addr, "after-emfile", true)); err != nil {
		t.Fatalf("connect after the descriptors came back: %v", err)
	}
}

// fdChild serves a broker with at most 48 file descriptors and prints its address.
func fdChild() {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		panic(err)
	}
	lim.Cur = 48
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		panic(err)
	}
	b, err := New(Options{Listen: "127.0.0.1:0", MaxClients: 1000, ConnectTimeout: time.Hour,
		Logger: sloggerTo(os.Stdout)})
	if err != nil {
		panic(err)
	}
	if err := b.Serve(); err != nil {
		panic(err)
	}
	fmt.Println("addr " + b.Addr().String())
	select {}
}

// A malformed packet (PUBLISH with QoS 3) drops that client, counted, at info; the others go on.
func TestMalformedPacketDropsOnlyThatClient(t *testing.T) {
	logs := &logBuffer{}
	b := start(t, Options{Logger: logs.logger()})
	in := newInbox()
	watcher := dial(t, pahoOpts("tcp://"+b.Addr().String(), "watcher", true))
	subscribe(t, watcher, "t/#", 0, in.handle)
	bad := rawConnect(t, b.Addr().String(), "bad", 60)
	_, _ = bad.Write([]byte{0x36, 5, 0, 3, 't', '/', 'x'})
	closedByPeer(t, bad, 5*time.Second)
	// The broker counts, then logs (connEnded, on the connection's goroutine): wait for both.
	eventually(t, 5*time.Second, "the malformed packet counted and logged", func() bool {
		return b.Stats().Connections.Malformed == 1 && len(logs.lines("mqtt client dropped: malformed packet")) > 0
	})
	if n := len(logs.lines("level=INFO", "malformed packet")); n != 1 {
		t.Fatalf("%d info lines about the malformed packet:\n%s", n, logs)
	}
	watcher.Publish("t/ok", 0, false, "ok").Wait()
	in.wait(t, 1, 10*time.Second)
}

// Ordinary disconnects — a clean DISCONNECT, a dropped socket, an expired keepalive, a
// refused password, mosquitto_sub giving up — are not warnings.
func TestOrdinaryDisconnectsAreNotWarnings(t *testing.T) {
	logs := &logBuffer{}
	b := start(t, Options{Logger: logs.logger(), Users: []User{ignition(t)}, AllowAnonymous: ptr(true),
		Anonymous: Access{Read: []string{"#"}, Write: []string{"t/#"}}})
	addr := b.Addr().String()
	c := dial(t, pahoOpts("tcp://"+addr, "clean", true))
	c.Disconnect(50)
	dropped := rawConnect(t, addr, "dropped", 60)
	dropped.Close()
	idle := rawConnect(t, addr, "idle", 1)
	closedByPeer(t, idle, 5*time.Second) // keepalive 1 s: dropped after 1.5 s
	_ = dialErr(pahoOpts("tcp://"+addr, "wrong", true).SetUsername("ignition").SetPassword("nope"))
	if _, err := mosquitto(t, "mosquitto_sub", addr, "-i", "sub", "-t", "t/#", "-W", "1"); err == nil {
		t.Log("mosquitto_sub -W 1 exited without an error")
	}
	eventually(t, 5*time.Second, "every client gone", func() bool { return b.Clients() == 0 })
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "level=WARN") && !strings.Contains(l, "mqtt access denied") || strings.Contains(l, "level=ERROR") {
			t.Errorf("ordinary disconnects logged: %s", l)
		}
	}
}
