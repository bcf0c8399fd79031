package bridge

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/wellgate/wellgate/sparkplug"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond) // polling, not synchronisation
	}
}

// received is one message seen by the test subscriber.
type received struct {
	topic   string
	payload *sparkplug.Payload
	raw     []byte
	retain  bool
	qos     byte
}

// collector subscribes at a broker and keeps every message, in order.
type collector struct {
	mu   sync.Mutex
	msgs []received
	c    mqtt.Client
}

func newCollector(t *testing.T, addr string, filters ...string) *collector {
	t.Helper()
	col := &collector{}
	col.connect(t, addr, filters...)
	return col
}

// connect (re)subscribes at addr, keeping what was collected so far.
func (col *collector) connect(t *testing.T, addr string, filters ...string) {
	t.Helper()
	if len(filters) == 0 {
		filters = []string{"spBv1.0/#"}
	}
	o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(fmt.Sprintf("collector-%d", time.Now().UnixNano())).
		SetCleanSession(true).SetAutoReconnect(false)
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("collector connect: %v", tok.Error())
	}
	for _, f := range filters {
		tok := c.Subscribe(f, 1, func(_ mqtt.Client, m mqtt.Message) {
			r := received{topic: m.Topic(), raw: m.Payload(), retain: m.Retained(), qos: m.Qos()}
			r.payload, _ = sparkplug.Unmarshal(m.Payload())
			col.mu.Lock()
			col.msgs = append(col.msgs, r)
			col.mu.Unlock()
		})
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("collector subscribe: %v", tok.Error())
		}
	}
	col.c = c
	t.Cleanup(func() { c.Disconnect(0) })
}

func (col *collector) all() []received {
	col.mu.Lock()
	defer col.mu.Unlock()
	return append([]received(nil), col.msgs...)
}

// proxy is a TCP proxy between the bridge and the broker that can refuse connections or
// black-hole them (stop forwarding without closing).
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	mode   string // "pass", "refuse", "blackhole"
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, mode: "pass"}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.closeAll() })
	return p
}

func (p *proxy) url() string { return "tcp://" + p.ln.Addr().String() }

func (p *proxy) setMode(mode string) {
	p.mu.Lock()
	p.mode = mode
	p.mu.Unlock()
	if mode != "blackhole" {
		p.closeAll() // a healed link starts with new connections
	}
}

func (p *proxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		mode := p.mode
		p.mu.Unlock()
		if mode == "refuse" {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

// pipe copies src to dst until the connection ends; in black-hole mode it reads and discards.
func (p *proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			hole := p.mode == "blackhole"
			p.mu.Unlock()
			if !hole {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				src.Close()
			}
			dst.Close()
			return
		}
	}
}

// testLogger returns a logger writing to the test log and a buffer of what it wrote.
func testLogger(t *testing.T) (*slog.Logger, *logBuffer) {
	lb := &logBuffer{t: t}
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelInfo})), lb
}

type logBuffer struct {
	mu    sync.Mutex
	t     *testing.T
	lines []string
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, strings.TrimSpace(string(p)))
	return len(p), nil
}

func (l *logBuffer) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, substr) {
			n++
		}
	}
	return n
}

func (l *logBuffer) dump() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}
