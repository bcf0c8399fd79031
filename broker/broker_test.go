package broker

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func startBroker(t *testing.T, listen, dataDir string) *Broker {
	t.Helper()
	b, err := New(Options{Listen: listen, DataDir: dataDir, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

type received struct {
	mu   sync.Mutex
	msgs []paho.Message
	ch   chan struct{}
}

func newReceived() *received { return &received{ch: make(chan struct{}, 1000)} }

func (r *received) handle(_ paho.Client, m paho.Message) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
	r.ch <- struct{}{}
}

func (r *received) wait(t *testing.T, n int) []paho.Message {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		if len(r.msgs) >= n {
			out := append([]paho.Message(nil), r.msgs...)
			r.mu.Unlock()
			return out
		}
		r.mu.Unlock()
		select {
		case <-r.ch:
		case <-deadline:
			t.Fatalf("got %d messages, want %d", len(r.msgs), n)
		}
	}
}

func connect(t *testing.T, addr, id string, clean bool, onMsg paho.MessageHandler) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
		SetCleanSession(clean).SetAutoReconnect(false).SetDefaultPublishHandler(onMsg)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	return c
}

func TestPublishReachesTCPClient(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0", "")
	r := newReceived()
	c := connect(t, b.Addr().String(), "hmi", true, r.handle)
	defer c.Disconnect(100)
	if tok := c.Subscribe("spBv1.0/#", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if err := b.Publish("spBv1.0/G/NDATA/E", 0, false, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	m := r.wait(t, 1)[0]
	if m.Topic() != "spBv1.0/G/NDATA/E" || string(m.Payload()) != "\x01\x02\x03" || m.Retained() {
		t.Fatalf("got topic %q payload %x retained %v", m.Topic(), m.Payload(), m.Retained())
	}
}

func TestSubscribeSeesLocalClientsInOrder(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0", "")
	var mu sync.Mutex
	var got []string
	done := make(chan struct{})
	const n = 200
	err := b.Subscribe("site/+/value", func(topic string, payload []byte, qos byte, retain bool) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, string(payload))
		if len(got) == n {
			close(done)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	c := connect(t, b.Addr().String(), "plc", true, nil)
	defer c.Disconnect(100)
	for i := 0; i < n; i++ {
		c.Publish("site/tank/value", 1, false, fmt.Sprint(i)).Wait()
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("handler saw %d of %d messages", len(got), n)
	}
	for i, p := range got {
		if p != fmt.Sprint(i) {
			t.Fatalf("message %d is %q: order lost", i, p)
		}
	}
}

// A persistent session's queued QoS 1 messages must survive a restart of the broker: an HMI or
// an MQTT Engine that connects in with clean session = false must not lose what it missed.
func TestPersistentSessionSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	b, err := New(Options{Listen: "127.0.0.1:0", DataDir: dir, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Serve(); err != nil {
		t.Fatal(err)
	}
	addr := b.Addr().String()
	c := connect(t, addr, "historian", false, func(paho.Client, paho.Message) {})
	if tok := c.Subscribe("tags/#", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	c.Disconnect(100)
	waitNoClients(t, b)
	for i := 0; i < 5; i++ {
		if err := b.Publish("tags/level", 1, false, []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b2 := startBroker(t, addr, dir)
	r := newReceived()
	c2 := connect(t, b2.Addr().String(), "historian", false, r.handle)
	defer c2.Disconnect(100)
	msgs := r.wait(t, 5)
	// In publish order (MQTT 3.1.1 §4.6): see TestPersistentSessionInOrder for 1,000.
	for i, m := range msgs {
		if string(m.Payload()) != fmt.Sprint(i) {
			t.Fatalf("message %d is %q: lost or out of order across the broker restart", i, m.Payload())
		}
	}
}

func waitNoClients(t *testing.T, b *Broker) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for b.Clients() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("client still connected")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestListenErrorNamesAddress(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0", "")
	_, err := New(Options{Listen: b.Addr().String(), Logger: quietLogger()})
	if err == nil {
		t.Fatal("second broker on the same address started")
	}
	if want := b.Addr().String(); !contains(err.Error(), want) {
		t.Fatalf("error %q does not name %s", err, want)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
