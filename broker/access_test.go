package broker

import (
	"errors"
	"strings"
	"testing"
	"time"

	ppackets "github.com/eclipse/paho.mqtt.golang/packets"
)

const (
	testDCMD   = "spBv1.0/Wells/DCMD/gw1/choke"
	testNBIRTH = "spBv1.0/Wells/NBIRTH/gw1"
	testNDATA  = "spBv1.0/Wells/NDATA/gw1"
)

var testEdge = EdgeNode{Group: "Wells", Node: "gw1"}

// ignition is a user as the issue configures it: reads Sparkplug, writes commands and STATE.
func ignition(t testing.TB) User {
	return User{Name: "ignition", PasswordHash: hash(t, "ign-pw"), Access: Access{
		Read:  []string{"spBv1.0/#"},
		Write: []string{"spBv1.0/+/NCMD/#", "spBv1.0/+/DCMD/#", "spBv1.0/STATE/+"}}}
}

// commands subscribes in process, as the gateway's command handler does, and hands over
// every command with its sender.
func commands(t testing.TB, b *Broker) chan Message {
	t.Helper()
	ch := make(chan Message, 100)
	if err := b.SubscribeMessages("spBv1.0/Wells/+/gw1/#", func(m Message) { ch <- m }); err != nil {
		t.Fatal(err)
	}
	return ch
}

func next(t testing.TB, ch chan Message) Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message reached the in-process subscriber")
		return Message{}
	}
}

// An anonymous mosquitto_pub of a DCMD, as in the issue, on a broker that has users: refused
// at CONNECT, logged with its client id, and nothing reaches the command handler. The same
// DCMD from a user whose write list covers it is delivered with who sent it, and audited.
func TestAnonymousCommandRefusedUserCommandAudited(t *testing.T) {
	logs := &logBuffer{}
	b := start(t, Options{Users: []User{ignition(t)}, EdgeNode: testEdge, Logger: logs.logger()})
	cmds := commands(t, b)
	addr := b.Addr().String()

	out, err := mosquitto(t, "mosquitto_pub", addr, "-i", "intruder", "-q", "1", "-t", testDCMD, "-m", "open dump valve")
	if err == nil {
		t.Fatalf("anonymous mosquitto_pub succeeded: %s", out)
	}
	if _, err := mosquitto(t, "mosquitto_pub", addr, "-i", "ignition-1", "-u", "ignition", "-P", "ign-pw",
		"-q", "1", "-t", testDCMD, "-m", "setpoint 42"); err != nil {
		t.Fatalf("mosquitto_pub as ignition: %v", err)
	}
	m := next(t, cmds)
	if string(m.Payload) != "setpoint 42" {
		t.Fatalf("first command to reach the handler is %q: the anonymous one got through", m.Payload)
	}
	if m.Sender.User != "ignition" || m.Sender.ClientID != "ignition-1" || !strings.HasPrefix(m.Sender.Remote, "127.0.0.1:") || m.Sender.Gateway {
		t.Fatalf("sender %+v", m.Sender)
	}
	if n := len(logs.lines("mqtt access denied", `reason="anonymous refused"`, "client=intruder")); n != 1 {
		t.Fatalf("%d denial lines for the intruder, want 1:\n%s", n, logs)
	}
	if n := len(logs.lines("mqtt command accepted", "user=ignition", "client=ignition-1", "topic="+testDCMD, "remote=127.0.0.1:")); n != 1 {
		t.Fatalf("%d audit lines, want 1:\n%s", n, logs)
	}
	st := b.Stats()
	if st.Denials[ReasonAnonymous] != 1 || st.Commands["ignition"] != 1 || len(st.Commands) != 1 {
		t.Fatalf("denials %v, commands %v", st.Denials, st.Commands)
	}
}

// With allow_anonymous and a read-only anonymous list, an anonymous client may watch but not
// command: its DCMD is denied and never reaches the handler.
func TestAnonymousReadListCannotCommand(t *testing.T) {
	b := start(t, Options{Users: []User{ignition(t)}, EdgeNode: testEdge, AllowAnonymous: ptr(true),
		Anonymous: Access{Read: []string{"spBv1.0/#"}}})
	cmds := commands(t, b)
	addr := b.Addr().String()
	watcher := dial(t, pahoOpts("tcp://"+addr, "panel", true))
	if q := subscribe(t, watcher, "spBv1.0/#", 1, nil); q != 1 {
		t.Fatalf("anonymous read list: subscription granted %#x", q)
	}
	_, _ = mosquitto(t, "mosquitto_pub", addr, "-i", "anon-cmd", "-q", "1", "-t", testDCMD, "-m", "open")
	if _, err := mosquitto(t, "mosquitto_pub", addr, "-i", "ignition-1", "-u", "ignition", "-P", "ign-pw",
		"-q", "1", "-t", testDCMD, "-m", "marker"); err != nil {
		t.Fatal(err)
	}
	if m := next(t, cmds); string(m.Payload) != "marker" {
		t.Fatalf("handler got %q from %+v first", m.Payload, m.Sender)
	}
	if n := b.Stats().Denials[ReasonCommand]; n != 1 {
		t.Fatalf("%d command denials, want 1", n)
	}
}

// A user without rights can neither subscribe to nor publish on denied topics, and nobody —
// not even a user allowed to write everywhere — may publish births or data under the
// gateway's own edge node. Each denial is counted; the same denial is logged once.
func TestUserWithoutRights(t *testing.T) {
	logs := &logBuffer{}
	b := start(t, Options{EdgeNode: testEdge, Logger: logs.logger(), Users: []User{
		{Name: "hmi", PasswordHash: hash(t, "hmi-pw"), Access: Access{Read: []string{"wellsite/#"}}},
		{Name: "operator", PasswordHash: hash(t, "op-pw"), Access: Access{Read: []string{"#"}, Write: []string{"#"}}},
	}})
	url := "tcp://" + b.Addr().String()
	seen := commands(t, b)
	hmi := dial(t, pahoOpts(url, "hmi-1", true).SetUsername("hmi").SetPassword("hmi-pw"))
	for range 3 {
		if q := subscribe(t, hmi, "spBv1.0/#", 1, nil); q != 0x80 {
			t.Fatalf("hmi subscribed to spBv1.0/#: granted %#x", q)
		}
	}
	if q := subscribe(t, hmi, "wellsite/#", 1, nil); q != 1 {
		t.Fatalf("hmi's own read list: granted %#x", q)
	}
	for _, topic := range []string{"wellsite/well1/level", testDCMD, testNBIRTH} {
		hmi.Publish(topic, 0, false, "forged").Wait()
	}
	op := dial(t, pahoOpts(url, "op-1", true).SetUsername("operator").SetPassword("op-pw"))
	in := newInbox()
	subscribe(t, op, "#", 1, in.handle)
	op.Publish(testNBIRTH, 0, false, "spoofed birth").Wait()
	op.Publish(testNDATA, 0, false, "spoofed data").Wait()
	eventually(t, 10*time.Second, "the five publishes to be denied", func() bool {
		d := b.Stats().Denials
		return d[ReasonPublish] == 1 && d[ReasonCommand] == 1 && d[ReasonNamespace] == 3
	})
	op.Publish("wellsite/well1/level", 1, false, "allowed").Wait()
	if m := in.wait(t, 1, 10*time.Second)[0]; m.Topic() != "wellsite/well1/level" || string(m.Payload()) != "allowed" {
		t.Fatalf("operator's subscriber first got %s %q: a denied publish was delivered", m.Topic(), m.Payload())
	}
	select {
	case m := <-seen:
		t.Fatalf("the gateway's handler saw %s from %+v", m.Topic, m.Sender)
	default:
	}
	st := b.Stats()
	if st.Denials[ReasonSubscribe] != 3 {
		t.Fatalf("subscribe denials %d, want 3", st.Denials[ReasonSubscribe])
	}
	if n := len(logs.lines("mqtt access denied", `reason="subscribe denied"`, "client=hmi-1", "user=hmi", "topic=spBv1.0/#")); n != 1 {
		t.Fatalf("%d lines for three identical subscribe denials, want 1:\n%s", n, logs)
	}
	if n := len(logs.lines("mqtt access denied", `reason="gateway namespace"`, "user=operator", "topic="+testNBIRTH)); n != 1 {
		t.Fatalf("%d namespace denial lines for the operator's NBIRTH, want 1:\n%s", n, logs)
	}
}

// On loopback with no users (the demo), anonymous clients keep full access, commands
// included (audited with an empty user), but still cannot publish under the edge node.
func TestLoopbackDemoKeepsAnonymousFullAccess(t *testing.T) {
	logs := &logBuffer{}
	b := start(t, Options{EdgeNode: testEdge, Logger: logs.logger()})
	cmds := commands(t, b)
	addr := b.Addr().String()
	_, _ = mosquitto(t, "mosquitto_pub", addr, "-i", "spoofer", "-q", "1", "-t", testNBIRTH, "-m", "birth")
	if _, err := mosquitto(t, "mosquitto_pub", addr, "-i", "local-tool", "-q", "1", "-t", testDCMD, "-m", "42"); err != nil {
		t.Fatal(err)
	}
	m := next(t, cmds)
	if m.Topic != testDCMD || m.Sender.User != "" || m.Sender.ClientID != "local-tool" {
		t.Fatalf("handler got %s from %+v first", m.Topic, m.Sender)
	}
	if n := len(logs.lines("mqtt command accepted", "client=local-tool", `user=""`)); n != 1 {
		t.Fatalf("%d audit lines for the anonymous command, want 1:\n%s", n, logs)
	}
	if b.Stats().Denials[ReasonNamespace] != 1 {
		t.Fatalf("denials %v", b.Stats().Denials)
	}
}

// Refusals at CONNECT: a wrong password, an unknown user, the client id the gateway uses in
// process, and a will under the gateway's edge node.
func TestConnectRefusals(t *testing.T) {
	b := start(t, Options{EdgeNode: testEdge, Users: []User{ignition(t)}, AllowAnonymous: ptr(true),
		Anonymous: Access{Read: []string{"#"}}})
	url := "tcp://" + b.Addr().String()
	for _, c := range []struct {
		name   string
		o      func() error
		want   error
		reason string
	}{
		{"wrong password", func() error {
			return dialErr(pahoOpts(url, "c1", true).SetUsername("ignition").SetPassword("guess"))
		}, ppackets.ErrorRefusedBadUsernameOrPassword, ReasonBadCredentials},
		{"unknown user", func() error {
			return dialErr(pahoOpts(url, "c2", true).SetUsername("root").SetPassword("root"))
		}, ppackets.ErrorRefusedBadUsernameOrPassword, ReasonBadCredentials},
		{"reserved client id", func() error { return dialErr(pahoOpts(url, "inline", true)) },
			ppackets.ErrorRefusedIDRejected, ReasonClientID},
		{"will under the edge node", func() error {
			return dialErr(pahoOpts(url, "c3", true).SetBinaryWill(testNDATA, []byte("x"), 0, false))
		}, ppackets.ErrorRefusedNotAuthorised, ReasonWill},
	} {
		if err := c.o(); !errors.Is(err, c.want) {
			t.Errorf("%s: connect error %v, want %v", c.name, err, c.want)
		}
		if n := b.Stats().Denials[c.reason]; n == 0 {
			t.Errorf("%s: no %q denial counted", c.name, c.reason)
		}
	}
	if err := dialErr(pahoOpts(url, "ok", true).SetUsername("ignition").SetPassword("ign-pw")); err != nil {
		t.Fatalf("right password refused: %v", err)
	}
	if err := dialErr(pahoOpts(url, "ok", true).SetUsername("ignition").SetPassword("ign-pw")); err != nil {
		t.Fatalf("right password refused the second time: %v", err)
	}
}

// Every accepted command is audited, the same one twice included.
func TestEveryCommandAudited(t *testing.T) {
	logs := &logBuffer{}
	b := start(t, Options{EdgeNode: testEdge, Users: []User{ignition(t)}, Logger: logs.logger()})
	cmds := commands(t, b)
	c := dial(t, pahoOpts("tcp://"+b.Addr().String(), "ign", true).SetUsername("ignition").SetPassword("ign-pw"))
	for range 3 {
		c.Publish(testDCMD, 1, false, "setpoint 42").Wait()
		next(t, cmds)
	}
	if n := len(logs.lines("mqtt command accepted", "user=ignition", "client=ign")); n != 3 {
		t.Fatalf("%d audit lines for 3 commands:\n%s", n, logs)
	}
	if b.Stats().Commands["ignition"] != 3 {
		t.Fatalf("commands %v", b.Stats().Commands)
	}
}
