package bridge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/wellgate/wellgate/sparkplug"
)

// pingTimeout is how long paho waits for a PINGRESP.
func pingTimeout(keepalive time.Duration) time.Duration {
	return max(min(10*time.Second, keepalive), time.Second)
}

// detectionWindow is how long a sample published at QoS 0 stays in the ring: the configured
// window, but at least the longest time paho can take to notice a dead link (keepalive, a
// ping timeout and two of its check intervals).
func detectionWindow(keepalive, window time.Duration) time.Duration {
	check := min(5*time.Second, keepalive/4)
	return max(window, keepalive+pingTimeout(keepalive)+2*check)
}

// clientOptions builds paho options for one attempt: clean session, no auto-reconnect (every
// connect needs a new will with a new bdSeq), and every callback handing off to the mailbox.
func (b *Bridge) clientOptions(c *conn) (*mqtt.ClientOptions, error) {
	o := b.opts
	po := mqtt.NewClientOptions().AddBroker(c.server).
		SetClientID(b.clientID()).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetResumeSubs(false).
		SetProtocolVersion(4).
		SetKeepAlive(o.Keepalive).
		SetPingTimeout(pingTimeout(o.Keepalive)).
		SetConnectTimeout(o.ConnectTimeout).
		SetWriteTimeout(o.ConnectTimeout).
		SetOrderMatters(true).
		SetBinaryWill(o.Session.DeathTopic(), sparkplug.WillPayload(c.bdSeq), 1, false)
	if o.Username != "" {
		po.SetUsername(o.Username)
		po.SetPassword(o.Password)
	}
	if isTLS(c.server) {
		tc, err := tlsConfig(o.TLS)
		if err != nil {
			return nil, err
		}
		po.SetTLSConfig(tc)
	}
	po.SetConnectionLostHandler(func(_ mqtt.Client, err error) {
		c.fail(fmt.Errorf("connection lost: %w", err))
	})
	po.SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { b.inbound(c, m.Topic(), m.Payload()) })
	return po, nil
}

func (b *Bridge) clientID() string {
	if id := b.opts.ClientID; id != "" {
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
func tlsConfig(c TLS) (*tls.Config, error) {
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

// connect makes one connection attempt for c (on the dialing goroutine) and subscribes to what
// the session and the rules need, all before any birth.
func (b *Bridge) connect(ctx context.Context, c *conn) error {
	o, err := b.clientOptions(c)
	if err != nil {
		return err
	}
	c.client = mqtt.NewClient(o)
	timeout := b.opts.ConnectTimeout
	if err := wait(ctx, c.client.Connect(), timeout+time.Second); err != nil {
		c.client.Disconnect(0)
		return fmt.Errorf("connect: %w", err)
	}
	for _, s := range b.subscriptions() {
		if err := wait(ctx, c.client.Subscribe(s.topic, s.qos, nil), timeout); err != nil {
			c.client.Disconnect(0)
			return fmt.Errorf("subscribe %s: %w", s.topic, err)
		}
	}
	return nil
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

// wait waits for a paho token, the context or the timeout, whichever comes first. It is a
// network wait: real time, off the run loop.
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
