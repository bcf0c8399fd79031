package broker

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/crypto/bcrypt"

	"github.com/wellgate/wellgate/internal/peers"
)

// logBuffer collects log records (all levels) for checks on what was logged.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// lines returns the logged lines that contain every one of subs.
func (l *logBuffer) lines(subs ...string) []string {
	var out []string
	for _, line := range strings.Split(l.String(), "\n") {
		ok := line != ""
		for _, s := range subs {
			ok = ok && strings.Contains(line, s)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

func (l *logBuffer) logger() *slog.Logger { return sloggerTo(l) }

// sloggerTo logs every level as text to w.
func sloggerTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// start creates and serves a broker with o (on 127.0.0.1:0 unless o names listeners) and
// closes it when the test ends.
func start(t testing.TB, o Options) *Broker {
	t.Helper()
	if o.Listen == "" && o.TLSListen == "" && o.WSListen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if o.Logger == nil {
		o.Logger = quietLogger()
	}
	b, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func ptr[T any](v T) *T { return &v }

// hash returns a bcrypt hash of pw at bcrypt's lowest cost: checking one at the default cost
// takes seconds under the race detector.
func hash(t testing.TB, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// pahoOpts are options for a paho client of b: no auto reconnect, the given id and session.
func pahoOpts(url, id string, clean bool) *paho.ClientOptions {
	return paho.NewClientOptions().AddBroker(url).SetClientID(id).SetCleanSession(clean).
		SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(5 * time.Second).
		SetOrderMatters(true)
}

// dial connects a paho client and disconnects it when the test ends.
func dial(t testing.TB, o *paho.ClientOptions) paho.Client {
	t.Helper()
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", o.ClientID, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c
}

// dialErr connects a paho client and returns the error (nil: connected, and disconnected again).
func dialErr(o *paho.ClientOptions) error {
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return errors.New("connect timed out")
	}
	if tok.Error() == nil {
		c.Disconnect(50)
	}
	return tok.Error()
}

// subscribe subscribes c to filter and returns the granted QoS (0x80: refused).
func subscribe(t testing.TB, c paho.Client, filter string, qos byte, h paho.MessageHandler) byte {
	t.Helper()
	tok := c.Subscribe(filter, qos, h)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	return tok.(*paho.SubscribeToken).Result()[filter]
}

// inbox collects messages a paho client receives.
type inbox struct {
	mu   sync.Mutex
	msgs []paho.Message
	ch   chan struct{}
}

func newInbox() *inbox { return &inbox{ch: make(chan struct{}, 1)} }

func (i *inbox) handle(_ paho.Client, m paho.Message) {
	i.mu.Lock()
	i.msgs = append(i.msgs, m)
	i.mu.Unlock()
	select {
	case i.ch <- struct{}{}:
	default:
	}
}

// wait waits for at least n messages and returns all received.
func (i *inbox) wait(t testing.TB, n int, within time.Duration) []paho.Message {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		i.mu.Lock()
		if len(i.msgs) >= n {
			out := append([]paho.Message(nil), i.msgs...)
			i.mu.Unlock()
			return out
		}
		got := len(i.msgs)
		i.mu.Unlock()
		select {
		case <-i.ch:
		case <-deadline.C:
			t.Fatalf("received %d messages, want %d", got, n)
		}
	}
}

// eventually polls cond until it holds or within passes.
func eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
}

// mosquitto runs one of Debian's mosquitto clients (mosquitto_pub, mosquitto_sub) against
// addr and returns its combined output and error.
func mosquitto(t testing.TB, tool, addr string, args ...string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath(tool)
	if err != nil {
		peers.Missing(t, tool+" (Debian mosquitto-clients)")
	}
	host, port, _ := strings.Cut(addr, ":")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-h", host, "-p", port}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// payloads returns the messages' payloads as strings.
func payloads(msgs []paho.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m.Payload())
	}
	return out
}

// checkSequence fails t unless got is "0", "1", … n-1 in order.
func checkSequence(t testing.TB, got []string, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("got %d messages, want %d", len(got), n)
	}
	for i, p := range got {
		if p != strconv.Itoa(i) {
			t.Fatalf("message %d is %q, want %d: order lost (first 20: %v)", i, p, i, got[:min(20, len(got))])
		}
	}
}
