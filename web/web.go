// Package web serves the gateway's local status page for a technician on a laptop or a
// phone: the site's header and summary, every device's communication state, every tag's
// value and quality, kept live by a stream of small changes (Server-Sent Events). The same
// data is served as JSON (/api/status, /api/devices, /api/tags, see API.md), in the
// Prometheus format (/metrics), and as a health check (/healthz).
//
// The gateway fills a Snapshot through the Source interface; this package only reads it.
// The server is read-only, bounded (connections, event-stream clients, timeouts), and can
// require HTTP basic authentication (bcrypt hashes) and TLS.
package web

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wellgate/wellgate/internal/logx"
)

// logEvery is how often one kind of repeated event (refused connection, failed login) may log.
const logEvery = 10 * time.Second

// Options configure the server. Zero values take the defaults given.
type Options struct {
	Listen string // host:port to listen on; "127.0.0.1:8080" when ""

	// Users, when not empty, are required to log in with HTTP basic authentication
	// (everything but /healthz, which then says only ok or not).
	Users []User

	// TLSCertFile and TLSKeyFile, when both set, serve HTTPS with that PEM certificate
	// chain and key.
	TLSCertFile string
	TLSKeyFile  string

	MaxConns          int           // connections open at once; 64
	MaxStreams        int           // open pages (event streams) at once; 16
	ReadHeaderTimeout time.Duration // 5 s
	ReadTimeout       time.Duration // whole request; 10 s
	WriteTimeout      time.Duration // whole response, and each event of a stream; 30 s
	IdleTimeout       time.Duration // idle keep-alive connections are closed after; 60 s
	UpdateInterval    time.Duration // how often open pages get the changes; 1 s

	// Version labels wellgate_build_info on /metrics when the Snapshot's is "".
	Version string

	// Collectors are registered on /metrics besides the page's own (the gateway's
	// wellgate_publish_latency_seconds histogram, which the Sparkplug sessions observe).
	Collectors []prometheus.Collector
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:8080"
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 64
	}
	if o.MaxStreams <= 0 {
		o.MaxStreams = 16
	}
	def(&o.ReadHeaderTimeout, 5*time.Second)
	def(&o.ReadTimeout, 10*time.Second)
	def(&o.WriteTimeout, 30*time.Second)
	def(&o.IdleTimeout, 60*time.Second)
	def(&o.UpdateInterval, time.Second)
}

// Server is the status web server.
type Server struct {
	opts  Options
	src   Source
	log   *slog.Logger
	ln    net.Listener // what Serve reads: TLS over limit when TLS is on
	limit *limitListener
	srv   *http.Server
	auth  *authenticator
	hub   *hub
	reg   *prometheus.Registry
	clock func() time.Time // nil: time.Now
	stop  chan struct{}    // closed when shutdown starts: ends the event streams
	lim   *logx.Limiter
	tls   bool

	closeOnce sync.Once
	closeErr  error
}

// New serves src's page on addr with the default Options. It binds addr at once, so that an
// address in use is reported at start; Run serves.
func New(addr string, src Source, log *slog.Logger) (*Server, error) {
	return NewWithOptions(Options{Listen: addr}, src, log)
}

// NewWithOptions is New with Options. It checks the users' hashes, loads the TLS key pair
// and binds the address; a non-loopback address without authentication logs a warning.
func NewWithOptions(o Options, src Source, log *slog.Logger) (*Server, error) {
	o.defaults()
	log = log.With("part", "web")
	auth, err := newAuthenticator(o.Users, log)
	if err != nil {
		return nil, err
	}
	var tlsConf *tls.Config
	if o.TLSCertFile != "" || o.TLSKeyFile != "" {
		if o.TLSCertFile == "" || o.TLSKeyFile == "" {
			return nil, errors.New("web: TLS needs both a certificate file and a key file")
		}
		cert, err := tls.LoadX509KeyPair(o.TLSCertFile, o.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("web: TLS key pair %s, %s: %w", o.TLSCertFile, o.TLSKeyFile, err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("web: listen on %s: %w", o.Listen, err)
	}
	s := &Server{opts: o, src: src, log: log, auth: auth, stop: make(chan struct{}), lim: logx.NewLimiter(logEvery)}
	s.limit = newLimitListener(ln, o.MaxConns, func(max int) {
		s.lim.Log(s.log, slog.LevelWarn, "connections", "connection refused: too many open connections", "max", max)
	})
	s.ln = s.limit
	if tlsConf != nil {
		s.ln, s.tls = tls.NewListener(s.limit, tlsConf), true
	}
	s.hub = newHub(src, o.UpdateInterval, o.MaxStreams, s.now)
	if s.reg, err = s.registry(); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("web: %w", err)
	}
	s.srv = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		ReadTimeout:       o.ReadTimeout,
		WriteTimeout:      o.WriteTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	s.srv.RegisterOnShutdown(func() { close(s.stop) })
	for _, w := range o.Warnings() {
		log.Warn(w, "listen", o.Listen)
	}
	return s, nil
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.page)
	mux.HandleFunc("GET /static/{file}", s.static)
	mux.HandleFunc("GET /api/status", s.apiStatus)
	mux.HandleFunc("GET /api/devices", s.apiDevices)
	mux.HandleFunc("GET /api/tags", s.apiTags)
	mux.HandleFunc("GET /api/events", s.events)
	mux.HandleFunc("GET /healthz", s.healthz)
	var h http.Handler = gzipped(mux)
	// promhttp negotiates its own compression.
	outer := http.NewServeMux()
	outer.Handle("GET /metrics", s.metricsHandler())
	outer.Handle("/", h)
	return secured(s.auth.require(s.openHealth(outer), "/healthz"))
}

// openHealth hides the failed parts' details from /healthz when authentication is on and
// the request is not authenticated: only "ok" or "unhealthy".
func (s *Server) openHealth(next http.Handler) http.Handler {
	if s.auth == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" || s.auth.check(r.Context(), r) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if snap := s.src.Snapshot(); len(snap.Health) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "unhealthy: %d parts failed\n", len(snap.Health))
			return
		}
		fmt.Fprintln(w, "ok")
	})
}

// Addr is the address the page is served on.
func (s *Server) Addr() net.Addr { return s.limit.Addr() }

// URL is the page's address, http:// or https://.
func (s *Server) URL() string {
	scheme := "http"
	if s.tls {
		scheme = "https"
	}
	return scheme + "://" + s.Addr().String() + "/"
}

// Run serves until ctx is cancelled, then shuts down within five seconds.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	go s.hub.run(s.stop)
	s.log.Info("status page listening", "url", s.URL(), "auth", s.auth != nil)
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("web: %w", err)
	case <-ctx.Done():
	}
	return s.Close()
}

// Close stops serving: it ends the event streams, lets other requests in progress finish
// for up to five seconds, then closes the rest, and releases the port. It is idempotent,
// and it is how a gateway whose start failed after the page was bound gives the port back.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := s.srv.Shutdown(sctx)
		_ = s.ln.Close() // Shutdown closes it only when Serve was called
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			s.closeErr = fmt.Errorf("web: shutdown: %w", err)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			s.closeErr = s.srv.Close()
		}
	})
	return s.closeErr
}
