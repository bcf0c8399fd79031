package bridge

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wellgate/wellgate/internal/peers"
)

// writeCerts writes a CA and a server certificate for localhost/127.0.0.1 into dir.
func writeCerts(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "wellgate test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER), write("server.key", "EC PRIVATE KEY", keyDER)
}

func TestTLS(t *testing.T) {
	peers.RequireMosquitto(t)
	ca, cert, key := writeCerts(t, t.TempDir())
	// As root mosquitto drops to its own user, which cannot read the test's temporary files.
	m := peers.StartMosquitto(t, "certfile "+cert, "keyfile "+key, "user root")
	url := "ssl://" + m.Addr
	t.Run("unknown authority retries", func(t *testing.T) {
		h := newHarness(t, "", testOptions(url), nil).start()
		h.waitFor(10*time.Second, "three attempts", func() bool { return h.log.count("certificate signed by unknown authority") >= 3 })
		if h.b.Status().State == StateOnline {
			t.Fatal("online with an untrusted certificate")
		}
	})
	t.Run("wrong server name retries", func(t *testing.T) {
		up := testOptions(url)
		up.TLS = TLS{CAFile: ca, ServerName: "scada.example"}
		h := newHarness(t, "", up, nil).start()
		h.waitFor(10*time.Second, "two attempts", func() bool { return h.log.count("scada.example") >= 2 })
	})
	t.Run("trusted CA", func(t *testing.T) {
		up := testOptions(url)
		up.TLS = TLS{CAFile: ca, ServerName: "localhost"}
		h := newHarness(t, "", up, nil).start()
		h.waitState(StateOnline, 10*time.Second)
	})
	t.Run("insecure", func(t *testing.T) {
		up := testOptions(url)
		up.TLS = TLS{InsecureSkipVerify: true}
		h := newHarness(t, "", up, nil).start()
		h.waitState(StateOnline, 10*time.Second)
	})
}
