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

// pahoCheck is how often paho v1.5.1 checks its keepalive (ping.go): a quarter of the
// keepalive (in whole seconds, as paho keeps it) up to 10 s, 5 s above.
func pahoCheck(keepalive time.Duration) time.Duration {
	k := keepalive.Truncate(time.Second)
	if k > 10*time.Second {
		return 5 * time.Second
	}
	return k / 4
}

// pahoDetection is the longest paho takes to notice a dead link, counted from the last packet
// it received: the keepalive passes, the next check sends a PINGREQ (up to one check
// interval later), the ping timeout passes, and the next check gives up (up to one more).
// Anything written on the dead link was written after that last packet.
func pahoDetection(keepalive time.Duration) time.Duration {
	return keepalive.Truncate(time.Second) + pingTimeout(keepalive) + 2*pahoCheck(keepalive)
}

// detectionMargin is added to paho's worst case for the bridge's own lag: the connection-lost
// callback reaching the run loop, and timers firing late on a loaded box.
func detectionMargin(keepalive time.Duration) time.Duration {
	return pahoCheck(keepalive) + 2*time.Second
}

// detectionWindow is how long a value published at QoS 0 without proof of delivery (see
// proof.go) is kept before it is taken as delivered: the configured window, but never less
// than paho's worst-case detection time plus the margin. In one formula:
//
//	window = keepalive + ping timeout + 3 × check + 2 s
//
// with ping timeout = keepalive (1 s … 10 s) and check = keepalive/4 (5 s above a 10 s
// keepalive): 57 s at the default 30 s keepalive, 15.75 s at 5 s.
func detectionWindow(keepalive, configured time.Duration) time.Duration {
	return max(configured, pahoDetection(keepalive)+detectionMargin(keepalive))
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
		SetBinaryWill(o.Session.DeathTopic(), sparkplug.WillPayload(c.bdSeq), 1, false).
		SetCustomOpenConnectionFn(b.openConn(c))
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
	po.SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
		b.inbound(c, m.Topic(), m.Payload(), m.Retained())
	})
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
