// Package web serves the gateway's local status page: every tag with its value, quality and
// timestamp, every device's communication state, and the same as JSON at /api/tags.
package web

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

//go:embed status.html
var files embed.FS

var page = template.Must(template.New("status.html").Funcs(template.FuncMap{
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return time.Since(t).Round(time.Second).String() + " ago"
	},
	"stamp": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05.000Z")
	},
}).ParseFS(files, "status.html"))

// Snapshot is what the page shows, taken at one instant.
type Snapshot struct {
	Group    string    `json:"group"`
	EdgeNode string    `json:"edge_node"`
	Version  string    `json:"version"`
	Started  time.Time `json:"started"`
	Broker   string    `json:"broker,omitempty"` // embedded broker address
	Upstream Upstream  `json:"upstream"`
	Devices  []Device  `json:"devices"`
}

// Upstream is the upstream connection's state.
type Upstream struct {
	Enabled   bool      `json:"enabled"`
	Connected bool      `json:"connected"`       // an MQTT connection is up
	State     string    `json:"state,omitempty"` // "online", "waiting-host", "connecting", "disconnected"
	Server    string    `json:"server,omitempty"`
	Since     time.Time `json:"since,omitempty"`
	Queued    int       `json:"queued"`  // samples waiting in store-and-forward
	Dropped   uint64    `json:"dropped"` // samples the queue dropped or refused since start
}

// Device is one device and its tags.
type Device struct {
	Name      string    `json:"name"`
	Driver    string    `json:"driver"`
	Up        bool      `json:"up"`
	LastError string    `json:"last_error,omitempty"`
	LastGood  time.Time `json:"last_good,omitempty"`
	Requests  uint64    `json:"requests"`
	Errors    uint64    `json:"errors"`
	// ErrorsByKind counts failed requests by kind: timeout, exception, crc, connection, garbage.
	ErrorsByKind map[string]uint64 `json:"errors_by_kind,omitempty"`
	ResponseTime time.Duration     `json:"response_time_ns"` // of the last good request
	Tags         []Tag             `json:"tags"`
}

// Tag is one tag's latest state.
type Tag struct {
	Device   string    `json:"device"`
	Name     string    `json:"tag"`
	Type     string    `json:"type"`
	Value    any       `json:"value"`   // JSON value; null when there is none
	Display  string    `json:"display"` // formatted for people
	Quality  string    `json:"quality"` // good, bad, stale
	Time     time.Time `json:"timestamp,omitempty"`
	Units    string    `json:"units,omitempty"`
	Writable bool      `json:"writable"`
}

// Source gives the page its data.
type Source interface {
	Snapshot() Snapshot
}

// Server is the status web server.
type Server struct {
	src Source
	log *slog.Logger
	ln  net.Listener
	srv *http.Server

	closeOnce sync.Once
	closeErr  error
}

// New binds addr, so that an address in use is reported at start. Serve serves.
func New(addr string, src Source, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("web: listen on %s: %w", addr, err)
	}
	s := &Server{src: src, log: log.With("part", "web"), ln: ln}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.status)
	mux.HandleFunc("GET /api/tags", s.tags)
	mux.HandleFunc("GET /api/status", s.statusJSON)
	mux.HandleFunc("GET /metrics", s.metrics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return s, nil
}

// Addr is the address the page is served on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Run serves until ctx is cancelled, then shuts down within five seconds.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	s.log.Info("status page listening", "url", "http://"+s.ln.Addr().String()+"/")
	select {
	case err := <-errc:
		return fmt.Errorf("web: %w", err)
	case <-ctx.Done():
	}
	return s.Close()
}

// Close stops serving: it lets requests in progress finish for up to five seconds, then
// closes the rest, and releases the port. It is idempotent, and it is how a gateway whose
// start failed after the page was bound gives the port back.
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

func (s *Server) status(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := page.Execute(w, s.src.Snapshot()); err != nil {
		s.log.Warn("render status page", "err", err)
	}
}

func (s *Server) tags(w http.ResponseWriter, _ *http.Request) {
	snap := s.src.Snapshot()
	out := []Tag{}
	for _, d := range snap.Devices {
		out = append(out, d.Tags...)
	}
	writeJSON(w, out)
}

func (s *Server) statusJSON(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, s.src.Snapshot())
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
