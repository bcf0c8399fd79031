package broker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/wellgate/wellgate/internal/backoff"
	"github.com/wellgate/wellgate/internal/logx"
)

// Listeners. mochi's own TCP listener returns for good on the first failed accept (file
// descriptors exhausted by idle sockets) and leaves sockets that never send CONNECT open
// forever. wellgate's accept loop backs off and goes on, reports what failed, bounds the open
// sockets, gives every new socket ConnectTimeout to complete TLS and send CONNECT, and logs
// how a connection ended at the level it deserves (an EOF is not a warning).

// conns bounds and tracks the broker's open sockets, across its listeners.
type conns struct {
	slots chan struct{}

	mu   sync.Mutex
	open map[*trackedConn]struct{}
}

func newConns(limit int) *conns {
	return &conns{slots: make(chan struct{}, limit), open: map[*trackedConn]struct{}{}}
}

// add takes a slot for c, accepted on listener id, or reports false when all are taken.
func (cs *conns) add(c net.Conn, id string) (*trackedConn, bool) {
	select {
	case cs.slots <- struct{}{}:
	default:
		return nil, false
	}
	tc := &trackedConn{Conn: c, owner: cs, listener: id}
	cs.mu.Lock()
	cs.open[tc] = struct{}{}
	cs.mu.Unlock()
	return tc, true
}

// closeAll closes every open socket of listener id ("" for all), at shutdown.
func (cs *conns) closeAll(id string) {
	cs.mu.Lock()
	all := make([]*trackedConn, 0, len(cs.open))
	for c := range cs.open {
		if id == "" || c.listener == id {
			all = append(all, c)
		}
	}
	cs.mu.Unlock()
	for _, c := range all {
		_ = c.Close()
	}
}

// trackedConn is an accepted socket: closing it frees its slot once.
type trackedConn struct {
	net.Conn
	owner     *conns
	listener  string
	once      sync.Once
	connected atomic.Bool // a CONNECT arrived (set by the access hook)
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.owner.mu.Lock()
		delete(c.owner.open, c)
		c.owner.mu.Unlock()
		<-c.owner.slots
	})
	return err
}

// trackedConnOf finds the trackedConn under a client's connection (TLS and WebSocket wrap it).
func trackedConnOf(c net.Conn) *trackedConn {
	for c != nil {
		switch v := c.(type) {
		case *trackedConn:
			return v
		case *tls.Conn:
			c = v.NetConn()
		case *wsConn:
			c = v.Conn
		default:
			return nil
		}
	}
	return nil
}

// acceptor is a net.Listener whose Accept survives errors: it backs off (5 ms up to 1 s),
// counts and logs the failure and accepts again. It returns an error only once closed. A
// socket past the bound is closed at once; every other gets the CONNECT deadline.
type acceptor struct {
	net.Listener
	id     string
	b      *Broker
	ctx    context.Context
	cancel context.CancelFunc
}

func newAcceptor(ln net.Listener, id string, b *Broker) *acceptor {
	ctx, cancel := context.WithCancel(context.Background())
	return &acceptor{Listener: ln, id: id, b: b, ctx: ctx, cancel: cancel}
}

func (a *acceptor) Accept() (net.Conn, error) {
	bo := backoff.Backoff{Min: 5 * time.Millisecond, Max: time.Second}
	addr := a.Addr().String()
	for {
		c, err := a.Listener.Accept()
		if err != nil {
			if a.ctx.Err() != nil {
				return nil, net.ErrClosed
			}
			a.b.stats.acceptErrors.Add(1)
			a.b.limit.Log(a.b.log, slog.LevelWarn, "accept|"+addr, "mqtt listener: accept failed; backing off",
				"listener", addr, "err", logx.Err(err), "failures_in_a_row", bo.Failures()+1)
			if bo.Wait(a.ctx) != nil {
				return nil, net.ErrClosed
			}
			continue
		}
		bo.Reset()
		tc, ok := a.b.conns.add(c, a.id)
		if !ok {
			a.b.stats.refused.Add(1)
			a.b.limit.Log(a.b.log, slog.LevelWarn, "sockets|"+addr, "mqtt listener: too many open connections; refusing",
				"listener", addr, "remote", c.RemoteAddr().String(), "limit", cap(a.b.conns.slots))
			_ = c.Close()
			continue
		}
		_ = tc.SetDeadline(time.Now().Add(a.b.opts.ConnectTimeout))
		return tc, nil
	}
}

func (a *acceptor) Close() error {
	a.cancel()
	return a.Listener.Close()
}

// tcpListener serves MQTT over TCP, or over TLS when tls is set, as a mochi listener.
type tcpListener struct {
	id  string
	acc *acceptor
	tls *tls.Config
	b   *Broker
	wg  sync.WaitGroup
}

func (l *tcpListener) ID() string      { return l.id }
func (l *tcpListener) Address() string { return l.acc.Addr().String() }
func (l *tcpListener) Protocol() string {
	if l.tls != nil {
		return "tls"
	}
	return "tcp"
}
func (l *tcpListener) Init(*slog.Logger) error { return nil } // bound in New, to report an address in use there

func (l *tcpListener) Serve(establish listeners.EstablishFn) {
	for {
		c, err := l.acc.Accept()
		if err != nil {
			return
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.handle(c.(*trackedConn), establish)
		}()
	}
}

func (l *tcpListener) handle(c *trackedConn, establish listeners.EstablishFn) {
	defer c.Close()
	var nc net.Conn = c
	if l.tls != nil {
		tc := tls.Server(c, l.tls)
		if err := tc.Handshake(); err != nil { // bounded by the CONNECT deadline
			l.b.connEnded(c, fmt.Errorf("%w: %w", errTLS, err))
			return
		}
		nc = tc
	}
	l.b.connEnded(c, establish(l.id, nc))
}

func (l *tcpListener) Close(closeClients listeners.CloseFn) {
	_ = l.acc.Close()
	closeClients(l.id)       // mochi's clients get a DISCONNECT
	l.b.conns.closeAll(l.id) // and sockets still in TLS or before CONNECT are closed
}

var errTLS = errors.New("tls handshake")

// wsListener serves MQTT over WebSocket (subprotocol "mqtt") as a mochi listener.
type wsListener struct {
	id        string
	acc       *acceptor
	b         *Broker
	srv       *http.Server
	upgrader  websocket.Upgrader
	establish listeners.EstablishFn
}

func newWSListener(id string, acc *acceptor, b *Broker) *wsListener {
	l := &wsListener{id: id, acc: acc, b: b}
	l.upgrader = websocket.Upgrader{Subprotocols: []string{"mqtt"}, CheckOrigin: l.checkOrigin}
	l.srv = &http.Server{Handler: http.HandlerFunc(l.handle), ReadHeaderTimeout: b.opts.ConnectTimeout,
		MaxHeaderBytes: 8 << 10, ErrorLog: log.New(io.Discard, "", 0)}
	return l
}

func (l *wsListener) ID() string                    { return l.id }
func (l *wsListener) Address() string               { return l.acc.Addr().String() }
func (l *wsListener) Protocol() string              { return "ws" }
func (l *wsListener) Init(*slog.Logger) error       { return nil }
func (l *wsListener) Serve(e listeners.EstablishFn) { l.establish = e; _ = l.srv.Serve(l.acc) }

func (l *wsListener) Close(closeClients listeners.CloseFn) {
	_ = l.srv.Close() // closes the acceptor; upgraded connections are mochi's clients:
	closeClients(l.id)
	l.b.conns.closeAll(l.id)
}

// checkOrigin lets in non-browser clients (no Origin), pages served by the same host, and —
// HMI panels are often served from elsewhere — pages from any origin as long as anonymous
// clients may not publish: then a user name and password decide. Where anonymous clients may
// publish (the loopback demo), any web page open in a browser on the box could otherwise
// send commands through ws://127.0.0.1.
func (l *wsListener) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || !l.b.access.anonymousWrites() {
		return true
	}
	if u, err := url.Parse(origin); err == nil && strings.EqualFold(u.Host, r.Host) {
		return true
	}
	l.b.stats.deny(ReasonOrigin)
	l.b.limit.Log(l.b.log, slog.LevelWarn, "origin|"+logx.Value(origin), "mqtt websocket refused: a web page from another origin, and anonymous clients may publish",
		"origin", logx.Value(origin), "remote", r.RemoteAddr)
	return false
}

func (l *wsListener) handle(w http.ResponseWriter, r *http.Request) {
	ws, err := l.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered with an HTTP error
	}
	c := trackedConnOf(ws.NetConn())
	_ = ws.NetConn().SetDeadline(time.Now().Add(l.b.opts.ConnectTimeout)) // Upgrade clears it
	err = l.establish(l.id, &wsConn{Conn: ws.NetConn(), ws: ws})
	if c != nil {
		l.b.connEnded(c, err)
	}
	_ = ws.NetConn().Close()
}

// wsConn carries an MQTT byte stream in binary WebSocket messages.
type wsConn struct {
	net.Conn
	ws *websocket.Conn
	r  io.Reader
}

var errWSText = errors.New("websocket: text message where MQTT needs binary")

func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			op, r, err := c.ws.NextReader()
			if err != nil {
				return 0, err
			}
			if op != websocket.BinaryMessage {
				return 0, errWSText
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			c.r = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

func (c *wsConn) Write(p []byte) (int, error) {
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// connEnded logs and counts how a connection ended.
func (b *Broker) connEnded(c *trackedConn, err error) {
	if err == nil {
		return
	}
	remote := c.RemoteAddr().String()
	switch {
	case errors.Is(err, packets.ErrPacketTooLarge):
		b.stats.oversized.Add(1)
		b.limit.Log(b.log, slog.LevelWarn, "oversized|"+remote, "mqtt packet over the size limit; client dropped before its body was read",
			"remote", remote, "max_packet_size", b.opts.MaxPacketSize)
	case errors.Is(err, errTLS):
		b.stats.tlsFailures.Add(1)
		b.limit.Log(b.log, slog.LevelInfo, "tls|"+remote, "mqtt tls handshake failed", "remote", remote, "err", logx.Err(err))
	case isTimeout(err) && !c.connected.Load():
		b.stats.connectTimeouts.Add(1)
		b.limit.Log(b.log, slog.LevelInfo, "noconnect", "mqtt connection sent no CONNECT in time; dropped",
			"remote", remote, "connect_timeout", b.opts.ConnectTimeout.String())
	case errors.Is(err, packets.ErrServerBusy):
		b.stats.refused.Add(1)
		b.limit.Log(b.log, slog.LevelWarn, "maxclients", "mqtt client refused: max_clients reached",
			"remote", remote, "max_clients", b.opts.MaxClients)
	case ordinaryEnd(err):
		b.log.Debug("mqtt connection closed", "remote", remote, "err", logx.Err(err))
	case malformed(err):
		b.stats.malformed.Add(1)
		b.limit.Log(b.log, slog.LevelInfo, "malformed|"+remote, "mqtt client dropped: malformed packet or protocol violation",
			"remote", remote, "err", logx.Err(err))
	default:
		b.limit.Log(b.log, slog.LevelWarn, "connerr|"+logx.Err(err), "mqtt connection ended with an error",
			"remote", remote, "err", logx.Err(err))
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// ordinaryEnd reports an error that ends a connection in the ordinary way: the peer went
// away, a keepalive ran out, the session moved to a new connection, the broker is stopping,
// or a refusal the access hook has logged already.
func ordinaryEnd(err error) bool {
	if isTimeout(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, mqtt.ErrConnectionClosed) || websocket.IsCloseError(err, websocket.CloseNormalClosure,
		websocket.CloseGoingAway, websocket.CloseNoStatusReceived, websocket.CloseAbnormalClosure) {
		return true
	}
	for _, c := range []packets.Code{packets.ErrSessionTakenOver, packets.ErrServerShuttingDown, packets.CodeDisconnect,
		packets.ErrNotAuthorized, packets.ErrBadUsernameOrPassword, packets.ErrMalformedUsername,
		packets.ErrClientIdentifierNotValid} {
		if errors.Is(err, c) {
			return true
		}
	}
	return false
}

// malformed reports a packet mochi could not decode or a protocol violation.
func malformed(err error) bool {
	var code packets.Code
	return errors.As(err, &code) || errors.Is(err, errWSText)
}

// loadTLS builds the TLS listener's configuration from the certificate, key and client CA
// files. Errors name the file.
func loadTLS(o Options) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(o.TLSCertFile, o.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("broker: tls certificate %s / key %s: %w", o.TLSCertFile, o.TLSKeyFile, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if o.TLSClientCAFile != "" {
		pem, err := os.ReadFile(o.TLSClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("broker: tls client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("broker: tls client CA %s: no PEM certificate in it", o.TLSClientCAFile)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}
