package bridge

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	netproxy "golang.org/x/net/proxy"
)

// openConn returns the paho function that opens c's network connection. It opens it as paho
// would (TCP, TLS or WebSocket, through the environment's proxy where paho uses one) and wraps
// it in a batchConn, which commits (persists) the bdSeq of c's will right before the first
// byte of the CONNECT is written, so that an attempt that never gets that far (refused,
// unreachable, a failed TLS handshake) spends no bdSeq (docs/sparkplug.md
// [topics-nbirth-bdseq-increment]), and then coalesces paho's writes.
func (b *Bridge) openConn(c *conn) mqtt.OpenConnectionFunc {
	return func(uri *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
		nc, err := dialBroker(uri, o)
		if err != nil {
			return nil, err
		}
		timeout := o.WriteTimeout
		if timeout <= 0 {
			timeout = 30 * time.Second // paho's own default
		}
		bc := newBatchConn(nc, timeout, func() error {
			if err := b.opts.BdSeq.Commit(c.bdSeq); err != nil {
				return fmt.Errorf("commit bdSeq: %w", err)
			}
			c.sent.Store(true)
			return nil
		})
		c.sock.Store(bc)
		return bc, nil
	}
}

// dialBroker is paho v1.5.1's openConnection for the schemes wellgate accepts.
func dialBroker(uri *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
	dialer := o.Dialer
	if dialer == nil {
		dialer = &net.Dialer{Timeout: o.ConnectTimeout}
	}
	switch uri.Scheme {
	case "ws", "wss":
		var tc *tls.Config
		if uri.Scheme == "wss" {
			tc = o.TLSConfig
		}
		u := *uri
		u.User = nil
		return mqtt.NewWebsocket(u.String(), tc, o.ConnectTimeout, o.HTTPHeaders, o.WebsocketOptions)
	case "mqtt", "tcp":
		return netproxy.FromEnvironmentUsing(dialer).Dial("tcp", uri.Host)
	case "ssl", "tls", "mqtts", "mqtt+ssl", "tcps":
		if os.Getenv("all_proxy") == "" {
			return tls.DialWithDialer(dialer, "tcp", uri.Host, o.TLSConfig)
		}
		nc, err := netproxy.FromEnvironment().Dial("tcp", uri.Host)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(nc, o.TLSConfig)
		if err := tc.Handshake(); err != nil {
			_ = nc.Close()
			return nil, err
		}
		return tc, nil
	}
	return nil, errors.New("unknown protocol " + uri.Scheme)
}
