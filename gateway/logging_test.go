package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/wellgate/wellgate/config"
	"github.com/wellgate/wellgate/gateway"
	"github.com/wellgate/wellgate/sparkplug"
)

// lockedBuffer collects log output from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Split(strings.TrimSpace(l.b.String()), "\n")
}

// A flood of garbage commands writes a bounded number of log lines, and none of them carries
// the whole of an outside value.
func TestGarbageCommandsLogBounded(t *testing.T) {
	p := &plc{}
	cfg, err := config.Load(writableConfig(t, t.TempDir(), startPLC(t, p)))
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	g, err := gateway.New(cfg, slog.New(slog.NewTextHandler(&logs, nil)), "test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for g.BrokerAddr() == "" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	// The garbage comes from a client of its own (the test host would flag it as undecodable).
	o := paho.NewClientOptions().AddBroker("tcp://" + g.BrokerAddr()).SetClientID("garbage")
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(0)
	const flood = 5000
	topic := sparkplug.DeviceTopic("Scenario", sparkplug.DCMD, "Node2", "PLC1")
	for i := range flood {
		c.Publish(topic, 0, false, []byte(fmt.Sprintf("garbage %d", i)))
	}
	long := sparkplug.DeviceTopic("Scenario", sparkplug.DCMD, "Node2", strings.Repeat("D", 60_000))
	c.Publish(long, 0, false, dcmd("Choke/Setpoint", 1))
	if tok := c.Publish(topic, 1, false, []byte("garbage, last")); !tok.WaitTimeout(10 * time.Second) {
		t.Fatal("garbage flood not acknowledged")
	}
	// A good command after the flood (handled in order) marks the point by which the flood
	// was handled; it is repeated until the device is up to take it.
	for deadline := time.Now().Add(20 * time.Second); ; {
		c.Publish(topic, 1, false, dcmd("Choke/Setpoint", 42)).WaitTimeout(5 * time.Second)
		p.Lock()
		done := p.Holding[0] == 42
		p.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the setpoint was never written")
		}
		time.Sleep(200 * time.Millisecond)
	}
	lines := logs.lines()
	ignored := 0
	for _, l := range lines {
		if strings.Contains(l, "command ignored") {
			ignored++
		}
		if len(l) > 2000 {
			t.Errorf("a log line of %d bytes: %.120s…", len(l), l)
		}
	}
	if ignored == 0 || ignored > 5 {
		t.Errorf("%d garbage commands logged %d 'command ignored' lines, want 1 to 5", flood, ignored)
	}
}
