package web

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/bcrypt"

	"github.com/wellgate/wellgate/internal/logx"
	"github.com/wellgate/wellgate/internal/netaddr"
)

// contentSecurityPolicy allows only the page's own embedded script, style and event stream:
// no inline script or style, no framing, no other origin.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// secured sets the security headers on every response.
func secured(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// User is one account of the page's HTTP basic authentication.
type User struct {
	Name string
	Hash string // bcrypt hash of the password, as `wellgate passwd` prints it
}

// authenticator checks HTTP basic credentials against bcrypt hashes. A bcrypt check costs
// ~50 ms on a small ARM box, and the page makes a request a second, so a password once
// verified is remembered as its SHA-256 (in memory only) until a different one is tried;
// and at most two bcrypt checks run at a time, so that guessing cannot take every core.
type authenticator struct {
	users map[string][]byte
	dummy []byte        // a hash to check unknown names against, so they take as long
	sem   chan struct{} // bounds concurrent bcrypt checks

	mu     sync.Mutex
	proven map[string][sha256.Size]byte // user → SHA-256 of the password last verified

	failures atomic.Uint64
	limit    *logx.Limiter
	log      *slog.Logger
}

func newAuthenticator(users []User, log *slog.Logger) (*authenticator, error) {
	if len(users) == 0 {
		return nil, nil
	}
	a := &authenticator{users: map[string][]byte{}, sem: make(chan struct{}, 2),
		proven: map[string][sha256.Size]byte{}, limit: logx.NewLimiter(logEvery), log: log}
	for _, u := range users {
		if u.Name == "" {
			return nil, errors.New("web: a user without a name")
		}
		if _, err := bcrypt.Cost([]byte(u.Hash)); err != nil {
			return nil, fmt.Errorf("web: user %q: password hash is not a bcrypt hash (use `wellgate passwd`): %w", u.Name, err)
		}
		if _, dup := a.users[u.Name]; dup {
			return nil, fmt.Errorf("web: user %q listed twice", u.Name)
		}
		a.users[u.Name] = []byte(u.Hash)
		a.dummy = []byte(u.Hash)
	}
	return a, nil
}

// check reports whether r carries the credentials of a user. ctx bounds the wait for a
// bcrypt slot.
func (a *authenticator) check(ctx context.Context, r *http.Request) bool {
	name, pw, ok := r.BasicAuth()
	if !ok {
		return false
	}
	sum := sha256.Sum256([]byte(pw))
	hash, known := a.users[name]
	if known {
		a.mu.Lock()
		prev, seen := a.proven[name]
		a.mu.Unlock()
		if seen && subtle.ConstantTimeCompare(prev[:], sum[:]) == 1 {
			return true
		}
	} else {
		hash = a.dummy
	}
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	err := bcrypt.CompareHashAndPassword(hash, []byte(pw))
	<-a.sem
	if err != nil || !known {
		a.failures.Add(1)
		a.limit.Log(a.log, slog.LevelWarn, "auth failed", "status page: authentication failed",
			"user", logx.Value(name), "remote", r.RemoteAddr)
		return false
	}
	a.mu.Lock()
	a.proven[name] = sum
	a.mu.Unlock()
	return true
}

// require answers 401 to requests without valid credentials; open paths pass anyway.
func (a *authenticator) require(next http.Handler, open ...string) http.Handler {
	if a == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, p := range open {
			if r.URL.Path == p {
				next.ServeHTTP(w, r)
				return
			}
		}
		if !a.check(r.Context(), r) {
			w.Header().Set("WWW-Authenticate", `Basic realm="wellgate", charset="UTF-8"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// limitListener bounds the connections open at once: past the bound, a new connection is
// closed at once (and counted) rather than queued, so that a client holding connections
// cannot make the page hang for everyone else without it showing.
type limitListener struct {
	net.Listener
	slots   chan struct{}
	refused atomic.Uint64
	onFull  func(open int)
}

func newLimitListener(ln net.Listener, max int, onFull func(open int)) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, max), onFull: onFull}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
		default:
			l.refused.Add(1)
			_ = c.Close()
			if l.onFull != nil {
				l.onFull(cap(l.slots))
			}
		}
	}
}

// open is the number of connections open now.
func (l *limitListener) open() int { return len(l.slots) }

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// Warnings lists what a start with these options should warn about: a listen address beyond
// this machine without users (anyone on the network reads the page), or with users but without
// TLS (passwords in clear). `wellgate check` prints the same.
func (o Options) Warnings() []string {
	switch {
	case o.Listen == "" || netaddr.Loopback(o.Listen):
		return nil
	case len(o.Users) == 0:
		return []string{"status page listens beyond this machine without authentication: anyone on the network can read it; set users to require a login"}
	case o.TLSCertFile == "":
		return []string{"status page listens beyond this machine without TLS: passwords cross the network in clear; set a certificate and key"}
	}
	return nil
}
