package bridge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/wellgate/wellgate/config"
	"github.com/wellgate/wellgate/sparkplug"
)

// connEvent is a finished connection attempt (from the dialing goroutine).
type connEvent struct {
	gen    uint64
	client mqtt.Client
	server string
	bdSeq  uint64
	err    error
}

// lostEvent is paho's OnConnectionLost, handed off to the run loop.
type lostEvent struct {
	client mqtt.Client
	err    error
}

// inboundEvent is a message received from upstream (commands, STATE, down rules).
type inboundEvent struct {
	client  mqtt.Client
	topic   string
	payload []byte
}

// pingTimeout is how long paho waits for a PINGRESP.
func pingTimeout(keepalive time.Duration) time.Duration {
	return max(min(10*time.Second, keepalive), time.Second)
}

// detectionWindow is how long a sample published at QoS 0 stays in the ring: the configured
// window, but at least the longest time paho can take to notice a dead link (keepalive, a
// ping timeout and two of its check intervals).
func detectionWindow(u config.Upstream) time.Duration {
	k := u.Keepalive.D()
	check := min(5*time.Second, k/4)
	return max(u.Queue.DetectionWindow.D(), k+pingTimeout(k)+2*check)
}

// clientOptions builds paho options for one attempt: clean session, no auto-reconnect (every
// connect needs a new will with a new bdSeq), and every callback handing off to the mailbox.
func (b *Bridge) clientOptions(server string, bdSeq uint64) (*mqtt.ClientOptions, error) {
	u := b.opts.Upstream
	o := mqtt.NewClientOptions().AddBroker(server).
		SetClientID(b.clientID()).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetResumeSubs(false).
		SetProtocolVersion(4).
		SetKeepAlive(u.Keepalive.D()).
		SetPingTimeout(pingTimeout(u.Keepalive.D())).
		SetConnectTimeout(u.ConnectTimeout.D()).
		SetWriteTimeout(u.ConnectTimeout.D()).
		SetOrderMatters(true).
		SetBinaryWill(b.opts.Session.DeathTopic(), sparkplug.WillPayload(bdSeq), 1, false)
	if u.Username != "" {
		o.SetUsername(u.Username)
		o.SetPassword(u.Password)
	}
	if isTLS(server) {
		tc, err := tlsConfig(u.TLS)
		if err != nil {
			return nil, err
		}
		o.SetTLSConfig(tc)
	}
	o.SetConnectionLostHandler(func(c mqtt.Client, err error) { b.mail.put(lostEvent{client: c, err: err}) })
	o.SetDefaultPublishHandler(func(c mqtt.Client, m mqtt.Message) {
		b.mail.put(inboundEvent{client: c, topic: m.Topic(), payload: m.Payload()})
	})
	return o, nil
}

func (b *Bridge) clientID() string {
	if id := b.opts.Upstream.ClientID; id != "" {
		return id
	}
	if t, err := sparkplug.ParseTopic(b.opts.Session.DeathTopic()); err == nil {
		return "wellgate-" + t.Group + "-" + t.EdgeNode
	}
	return "wellgate"
}

func isTLS(server string) bool {
	u, err := url.Parse(server)
	if err != nil {
		return false
	}
	switch strings.ToLower(u.Scheme) {
	case "ssl", "tls", "mqtts", "tcps", "wss":
		return true
	}
	return false
}

// tlsConfig loads the CA and client certificate files (read on every attempt, so that fixed
// files are picked up without a restart).
func tlsConfig(c config.TLS) (*tls.Config, error) {
	tc := &tls.Config{ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls: read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: no certificate in CA file %s", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" || c.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: load client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// connect makes one connection attempt and subscribes to what the session and the rules
// need, all before any birth. It returns a connected client or an error.
func (b *Bridge) connect(ctx context.Context, server string, bdSeq uint64) (mqtt.Client, error) {
	o, err := b.clientOptions(server, bdSeq)
	if err != nil {
		return nil, err
	}
	c := mqtt.NewClient(o)
	if err := wait(ctx, c.Connect(), b.opts.Upstream.ConnectTimeout.D()+time.Second); err != nil {
		c.Disconnect(0)
		return nil, fmt.Errorf("connect: %w", err)
	}
	for _, s := range b.subscriptions() {
		if err := wait(ctx, c.Subscribe(s.topic, s.qos, nil), b.opts.Upstream.ConnectTimeout.D()); err != nil {
			c.Disconnect(0)
			return nil, fmt.Errorf("subscribe %s: %w", s.topic, err)
		}
	}
	return c, nil
}

type subscription struct {
	topic string
	qos   byte
}

func (b *Bridge) subscriptions() []subscription {
	ncmd, dcmd := b.opts.Session.Topics()
	subs := []subscription{{ncmd, 1}, {dcmd, 1}}
	if h := b.opts.PrimaryHostID; h != "" {
		subs = append(subs, subscription{sparkplug.StateTopic(h), 1})
		if b.opts.LegacyState {
			subs = append(subs, subscription{sparkplug.LegacyStateTopic(h), 1})
		}
	}
	for _, r := range b.opts.Rules {
		if r.Direction == Down {
			subs = append(subs, subscription{r.Prefix + r.Filter, r.QoS})
		}
	}
	return subs
}

// wait waits for a paho token, the context or the timeout, whichever comes first.
func wait(ctx context.Context, t mqtt.Token, timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return errors.New("timed out")
	}
}

// backoff is a jittered exponential backoff (full jitter over the upper half).
type backoff struct {
	min, max time.Duration
	cur      time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(b.cur*2, b.max)
	}
	return b.cur/2 + rand.N(b.cur/2+1)
}

func (b *backoff) reset() { b.cur = 0 }
