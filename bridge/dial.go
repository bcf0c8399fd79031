package bridge

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	netproxy "golang.org/x/net/proxy"
)

// openConn returns the paho function that opens c's network connection. It opens it as paho
// would (TCP, TLS or WebSocket, through the environment's proxy where paho uses one) and wraps
// it so that the bdSeq of c's will is committed (persisted) right before the first byte of the
// CONNECT is written: an attempt that never gets that far (refused, unreachable, a failed TLS
// handshake) spends no bdSeq (docs/sparkplug.md [topics-nbirth-bdseq-increment]). Below
// that, paho's writes are coalesced (batchConn).
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
		bc := newBatchConn(nc, timeout)
		c.sock.Store(bc)
		return &willConn{Conn: bc, commit: func() error {
			if err := b.opts.BdSeq.Commit(c.bdSeq); err != nil {
				return fmt.Errorf("commit bdSeq: %w", err)
			}
			c.sent.Store(true)
			return nil
		}}, nil
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

// willConn runs commit once, before the first write (the CONNECT); if commit fails, the write
// fails and the attempt with it. paho writes from more than one goroutine.
type willConn struct {
	net.Conn
	commit func() error
	mu     sync.Mutex
	done   atomic.Bool
}

func (w *willConn) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.mu.Lock()
		if !w.done.Load() {
			if err := w.commit(); err != nil {
				w.mu.Unlock()
				return 0, err
			}
			w.done.Store(true)
		}
		w.mu.Unlock()
	}
	return w.Conn.Write(p)
}
