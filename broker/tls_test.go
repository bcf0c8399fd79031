package broker

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client certificate, as PEM
// files.
type testPKI struct {
	ca, serverCert, serverKey, clientCert, clientKey string
	otherCert, otherKey                              string // a client certificate from another CA
}

func newPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	newCA := func(name string) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c, key, der
	}
	issue := func(ca *x509.Certificate, caKey *ecdsa.PrivateKey, serial int64, cn string, usage x509.ExtKeyUsage, prefix string) (string, string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalECPrivateKey(key)
		return write(prefix+".crt", "CERTIFICATE", der), write(prefix+".key", "EC PRIVATE KEY", kder)
	}
	ca, caKey, caDER := newCA("wellgate test CA")
	other, otherKey, _ := newCA("someone else's CA")
	var p testPKI
	p.ca = write("ca.crt", "CERTIFICATE", caDER)
	p.serverCert, p.serverKey = issue(ca, caKey, 2, "127.0.0.1", x509.ExtKeyUsageServerAuth, "server")
	p.clientCert, p.clientKey = issue(ca, caKey, 3, "ignition", x509.ExtKeyUsageClientAuth, "client")
	p.otherCert, p.otherKey = issue(other, otherKey, 4, "stranger", x509.ExtKeyUsageClientAuth, "other")
	return p
}

func (p testPKI) clientTLS(t *testing.T, cert, key string) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	b, _ := os.ReadFile(p.ca)
	pool.AppendCertsFromPEM(b)
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if cert != "" {
		c, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg
}

// A TLS listener with a client CA: a client with a certificate from that CA gets in (paho, and
// mosquitto_sub as an independent client); without a certificate, or with one from another
// CA, the handshake is refused and counted.
func TestTLSRequiresClientCertificate(t *testing.T) {
	p := newPKI(t)
	b := start(t, Options{TLSListen: "127.0.0.1:0", TLSCertFile: p.serverCert, TLSKeyFile: p.serverKey,
		TLSClientCAFile: p.ca, Users: []User{ignition(t)}})
	url := "ssl://" + b.TLSAddr().String()
	if b.Addr().String() != b.TLSAddr().String() {
		t.Fatalf("Addr %s without a plain listener, TLS on %s", b.Addr(), b.TLSAddr())
	}

	for name, cfg := range map[string]*tls.Config{
		"no client certificate":       p.clientTLS(t, "", ""),
		"certificate from another CA": p.clientTLS(t, p.otherCert, p.otherKey),
	} {
		o := pahoOpts(url, "c-"+strings.ReplaceAll(name, " ", "-"), true).SetTLSConfig(cfg).
			SetUsername("ignition").SetPassword("ign-pw")
		if err := dialErr(o); err == nil {
			t.Errorf("%s: connected", name)
		}
	}
	// paho tries MQTT 3.1.1 and then 3.1: two handshakes per refused client.
	eventually(t, 5*time.Second, "the TLS failures counted", func() bool { return b.Stats().Connections.TLSFailures >= 2 })

	c := dial(t, pahoOpts(url, "ignition-tls", true).SetTLSConfig(p.clientTLS(t, p.clientCert, p.clientKey)).
		SetUsername("ignition").SetPassword("ign-pw"))
	done := make(chan string, 1)
	go func() {
		out, err := mosquitto(t, "mosquitto_sub", b.TLSAddr().String(), "--cafile", p.ca, "--cert", p.clientCert,
			"--key", p.clientKey, "-u", "ignition", "-P", "ign-pw", "-i", "sub-tls", "-t", "spBv1.0/STATE/+", "-C", "1", "-q", "1")
		if err != nil {
			out += " error: " + err.Error()
		}
		done <- out
	}()
	eventually(t, 10*time.Second, "mosquitto_sub subscribed", func() bool { return b.Stats().Subscriptions == 1 })
	c.Publish("spBv1.0/STATE/ignition", 1, false, "online").Wait()
	select {
	case out := <-done:
		if strings.TrimSpace(out) != "online" {
			t.Fatalf("mosquitto_sub over TLS printed %q", out)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("mosquitto_sub over TLS got nothing")
	}
}

func TestTLSFilesAreReportedAtStart(t *testing.T) {
	p := newPKI(t)
	_, err := New(Options{TLSListen: "127.0.0.1:0", TLSCertFile: p.serverCert, TLSKeyFile: filepath.Join(t.TempDir(), "missing.key"),
		Logger: quietLogger()})
	if err == nil || !strings.Contains(err.Error(), "missing.key") {
		t.Fatalf("error %v does not name the missing key file", err)
	}
	_, err = New(Options{TLSListen: "127.0.0.1:0", TLSCertFile: p.serverCert, TLSKeyFile: p.serverKey,
		TLSClientCAFile: p.serverKey, Logger: quietLogger()})
	if err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("a key given as the client CA: error %v", err)
	}
}

// An HMI panel over WebSocket subscribes and gets what the gateway publishes.
func TestWebSocketListener(t *testing.T) {
	b := start(t, Options{Listen: "127.0.0.1:0", WSListen: "127.0.0.1:0"})
	in := newInbox()
	c := dial(t, pahoOpts("ws://"+b.WSAddr().String()+"/mqtt", "panel", true))
	subscribe(t, c, "wellsite/#", 1, in.handle)
	if err := b.Publish("wellsite/well1/level", 1, true, []byte("4.2")); err != nil {
		t.Fatal(err)
	}
	if m := in.wait(t, 1, 10*time.Second)[0]; string(m.Payload()) != "4.2" {
		t.Fatalf("got %q", m.Payload())
	}
	late := newInbox()
	c2 := dial(t, pahoOpts("ws://"+b.WSAddr().String()+"/mqtt", "panel2", true))
	subscribe(t, c2, "wellsite/#", 1, late.handle)
	if m := late.wait(t, 1, 10*time.Second)[0]; !m.Retained() || string(m.Payload()) != "4.2" {
		t.Fatalf("late WebSocket subscriber got %q retained=%v", m.Payload(), m.Retained())
	}
}

// Where anonymous clients may publish (the loopback demo), a page from another origin open in
// a browser on the box must not reach the broker through WebSocket; with users, the user name
// and password decide, and an HMI page from anywhere may connect.
func TestWebSocketOrigin(t *testing.T) {
	upgrade := func(b *Broker, origin string) int {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		d := websocket.Dialer{Subprotocols: []string{"mqtt"}, HandshakeTimeout: 5 * time.Second}
		c, resp, err := d.Dial("ws://"+b.WSAddr().String()+"/mqtt", h)
		if err == nil {
			c.Close()
			return http.StatusSwitchingProtocols
		}
		if resp == nil {
			t.Fatal(err)
		}
		return resp.StatusCode
	}
	demo := start(t, Options{Listen: "127.0.0.1:0", WSListen: "127.0.0.1:0"})
	for origin, want := range map[string]int{
		"":                                 http.StatusSwitchingProtocols, // not a browser
		"http://" + demo.WSAddr().String(): http.StatusSwitchingProtocols, // a page served by the box itself
		"http://evil.example":              http.StatusForbidden,
	} {
		if got := upgrade(demo, origin); got != want {
			t.Errorf("demo, origin %q: status %d, want %d", origin, got, want)
		}
	}
	if demo.Stats().Denials[ReasonOrigin] != 1 {
		t.Errorf("denials %v", demo.Stats().Denials)
	}
	withUsers := start(t, Options{Listen: "127.0.0.1:0", WSListen: "127.0.0.1:0", Users: []User{ignition(t)}})
	if got := upgrade(withUsers, "http://hmi.example"); got != http.StatusSwitchingProtocols {
		t.Errorf("with users, a panel from another origin: status %d", got)
	}
}
