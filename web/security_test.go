package web

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func TestSecurityHeaders(t *testing.T) {
	base := serve(t, fixed(site()))
	for _, path := range []string{"/", "/api/tags", "/api/status", "/metrics", "/healthz", "/static/status.js", "/nope"} {
		_, h, _ := fetch(t, base+path, nil)
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: nosniff/frame headers %v", path, h)
		}
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") ||
			strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
	}
	body, h := get(t, base+"/static/status.css")
	if h.Get("Content-Type") != "text/css; charset=utf-8" || !strings.Contains(body, ".badge") {
		t.Errorf("status.css: %v", h)
	}
}

func TestGzip(t *testing.T) {
	base := serve(t, fixed(site()))
	gz := map[string]string{"Accept-Encoding": "gzip"}
	for _, path := range []string{"/", "/api/tags", "/api/status", "/api/devices", "/static/status.js", "/metrics"} {
		body, h, code := fetch(t, base+path, gz)
		if code != 200 || h.Get("Content-Encoding") != "gzip" {
			t.Errorf("%s: %d, Content-Encoding %q", path, code, h.Get("Content-Encoding"))
			continue
		}
		zr, err := gzip.NewReader(strings.NewReader(body))
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		plain, err := io.ReadAll(zr)
		if err != nil || len(plain) == 0 {
			t.Errorf("%s: %v, %d bytes", path, err, len(plain))
		}
	}
	// Without Accept-Encoding, plain.
	if _, h, _ := fetch(t, base+"/api/tags", nil); h.Get("Content-Encoding") != "" {
		t.Errorf("compressed for a client that did not ask: %v", h)
	}
	if _, h, _ := fetch(t, base+"/", map[string]string{"Accept-Encoding": "gzip;q=0"}); h.Get("Content-Encoding") != "" {
		t.Errorf("compressed for gzip;q=0: %v", h)
	}
}

// syncBuffer is a log destination tests read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func hash(t testing.TB, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func TestBasicAuth(t *testing.T) {
	src := newFake(site())
	s := serveOpts(t, Options{Users: []User{{Name: "tech", Hash: hash(t, "s3cret")}}}, src)
	base := "http://" + s.Addr().String()
	for _, path := range []string{"/", "/api/tags", "/api/events", "/metrics", "/static/status.js"} {
		_, h, code := fetch(t, base+path, nil)
		if code != 401 || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("%s without credentials: %d %v", path, code, h)
		}
	}
	req := func(user, pw string) int {
		r, _ := http.NewRequest("GET", base+"/api/tags", nil)
		r.SetBasicAuth(user, pw)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := req("tech", "wrong"); code != 401 {
		t.Errorf("wrong password: %d", code)
	}
	if code := req("nobody", "s3cret"); code != 401 {
		t.Errorf("unknown user: %d", code)
	}
	for range 3 { // the second and third use the remembered proof
		if code := req("tech", "s3cret"); code != 200 {
			t.Errorf("right password: %d", code)
		}
	}
	if code := req("tech", "wrong"); code != 401 {
		t.Errorf("wrong password after a right one: %d", code)
	}
	if n := s.auth.failures.Load(); n != 3 {
		t.Errorf("%d failures counted, want 3", n)
	}
	// /healthz stays open for supervisors, but says only ok or not without credentials.
	src.update(func(s *Snapshot) { s.Health = []string{"queue: disk full at /var/lib/wellgate"} })
	if body, _, code := fetch(t, base+"/healthz", nil); code != 503 || strings.Contains(body, "/var/lib") {
		t.Errorf("unauthenticated /healthz: %d %q", code, body)
	}
}

func TestBadUserHashRefused(t *testing.T) {
	_, err := NewWithOptions(Options{Listen: "127.0.0.1:0", Users: []User{{Name: "tech", Hash: "plain"}}},
		fixed(site()), slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "tech") {
		t.Fatalf("plain-text hash accepted: %v", err)
	}
}

func TestWarnsWhenListeningWideWithoutAuth(t *testing.T) {
	for _, c := range []struct {
		listen string
		users  []User
		want   string
	}{
		{"0.0.0.0:0", nil, "without authentication"},
		{"0.0.0.0:0", []User{{Name: "u", Hash: hash(t, "p")}}, "without TLS"},
		{"127.0.0.1:0", nil, ""},
	} {
		var buf syncBuffer
		s, err := NewWithOptions(Options{Listen: c.listen, Users: c.users}, fixed(site()), slog.New(slog.NewTextHandler(&buf, nil)))
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		got := buf.String()
		if c.want == "" && strings.Contains(got, "WARN") || c.want != "" && !strings.Contains(got, c.want) {
			t.Errorf("%s users=%d: log %q, want %q", c.listen, len(c.users), got, c.want)
		}
	}
}

// The server holds at most MaxConns connections: the next is closed at once, and a slot
// comes back when a connection closes.
func TestConnectionsBounded(t *testing.T) {
	s := serveOpts(t, Options{MaxConns: 3}, fixed(site()))
	addr := s.Addr().String()
	var conns []net.Conn
	for range 3 {
		c := dialGet(t, addr)
		conns = append(conns, c)
	}
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = extra.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(extra, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	if n, err := extra.Read(make([]byte, 1)); n != 0 || err == nil || isTimeout(err) {
		t.Errorf("connection over the bound: read %d, %v; want closed at once", n, err)
	}
	extra.Close()
	if got := s.limit.refused.Load(); got != 1 {
		t.Errorf("refused = %d, want 1", got)
	}
	conns[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for s.limit.open() > 2 {
		if time.Now().After(deadline) {
			t.Fatal("slot not released after a close")
		}
		time.Sleep(5 * time.Millisecond)
	}
	dialGet(t, addr).Close()
	for _, c := range conns[1:] {
		c.Close()
	}
}

// dialGet opens a keep-alive connection and makes one request on it.
func dialGet(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("request on a connection within the bound: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	_ = c.SetDeadline(time.Time{})
	return c
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// An idle keep-alive connection is closed after IdleTimeout.
func TestIdleConnectionsTimeOut(t *testing.T) {
	s := serveOpts(t, Options{IdleTimeout: 200 * time.Millisecond}, fixed(site()))
	c := dialGet(t, s.Addr().String())
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	n, err := c.Read(make([]byte, 1))
	if n != 0 || err != io.EOF {
		t.Fatalf("idle connection: read %d, %v; want EOF", n, err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("idle connection closed after %v", d)
	}
}

// A client that sends its headers slowly is cut off.
func TestSlowHeadersTimeOut(t *testing.T) {
	s := serveOpts(t, Options{ReadHeaderTimeout: 200 * time.Millisecond}, fixed(site()))
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\n")
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err != nil && isTimeout(err) {
		t.Fatal("a connection with unfinished headers stayed open 5 s")
	}
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := selfSigned(t, dir)
	s := serveOpts(t, Options{TLSCertFile: certFile, TLSKeyFile: keyFile}, fixed(site()))
	if !strings.HasPrefix(s.URL(), "https://") {
		t.Errorf("URL %s", s.URL())
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 5 * time.Second}
	resp, err := client.Get(s.URL() + "api/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Errorf("https: %d, TLS %v", resp.StatusCode, resp.TLS != nil)
	}
	_, err = NewWithOptions(Options{Listen: "127.0.0.1:0", TLSCertFile: certFile, TLSKeyFile: filepath.Join(dir, "missing.pem")},
		fixed(site()), slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "missing.pem") {
		t.Errorf("missing key: %v", err)
	}
}

func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "wellgate"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
