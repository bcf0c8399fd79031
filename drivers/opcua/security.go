package opcua

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gopcua/opcua/ua"
)

// policyNames maps the names a tag map uses to OPC UA security policy URIs.
var policyNames = []struct{ name, uri string }{
	{"None", ua.SecurityPolicyURINone},
	{"Basic128Rsa15", ua.SecurityPolicyURIBasic128Rsa15},
	{"Basic256", ua.SecurityPolicyURIBasic256},
	{"Basic256Sha256", ua.SecurityPolicyURIBasic256Sha256},
	{"Aes128_Sha256_RsaOaep", ua.SecurityPolicyURIAes128Sha256RsaOaep},
	{"Aes256_Sha256_RsaPss", ua.SecurityPolicyURIAes256Sha256RsaPss},
}

// ParseSecurityPolicy returns the URI of a security policy named as in the tag map (case does
// not matter; "" is None).
func ParseSecurityPolicy(s string) (string, error) {
	if s == "" {
		return ua.SecurityPolicyURINone, nil
	}
	for _, p := range policyNames {
		if strings.EqualFold(s, p.name) || s == p.uri {
			return p.uri, nil
		}
	}
	return "", fmt.Errorf("security_policy %q must be None, Basic128Rsa15, Basic256, Basic256Sha256, Aes128_Sha256_RsaOaep or Aes256_Sha256_RsaPss", s)
}

// policyName is the short name of a policy URI.
func policyName(uri string) string {
	for _, p := range policyNames {
		if p.uri == uri {
			return p.name
		}
	}
	return strings.TrimPrefix(uri, ua.SecurityPolicyURIPrefix)
}

// ParseSecurityMode parses a message security mode: None, Sign or SignAndEncrypt (case does not
// matter). "" gives MessageSecurityModeInvalid, which means "the default for the policy".
func ParseSecurityMode(s string) (ua.MessageSecurityMode, error) {
	switch strings.ToLower(s) {
	case "":
		return ua.MessageSecurityModeInvalid, nil
	case "none":
		return ua.MessageSecurityModeNone, nil
	case "sign":
		return ua.MessageSecurityModeSign, nil
	case "signandencrypt":
		return ua.MessageSecurityModeSignAndEncrypt, nil
	}
	return 0, fmt.Errorf("security_mode %q must be None, Sign or SignAndEncrypt", s)
}

// modeName is the tag map's name of a security mode.
func modeName(m ua.MessageSecurityMode) string {
	switch m {
	case ua.MessageSecurityModeNone:
		return "None"
	case ua.MessageSecurityModeSign:
		return "Sign"
	case ua.MessageSecurityModeSignAndEncrypt:
		return "SignAndEncrypt"
	}
	return m.String()
}

// effectiveMode applies the default mode for a policy.
func effectiveMode(policy string, m ua.MessageSecurityMode) ua.MessageSecurityMode {
	if m != ua.MessageSecurityModeInvalid {
		return m
	}
	if policy == ua.SecurityPolicyURINone {
		return ua.MessageSecurityModeNone
	}
	return ua.MessageSecurityModeSignAndEncrypt
}

// Fingerprint returns the fingerprint of a DER certificate as server_fingerprint takes it:
// "SHA256:" and the SHA-256 of the certificate in 64 lower-case hex digits.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return "SHA256:" + hex.EncodeToString(sum[:])
}

// ParseFingerprint parses "SHA256:<64 hex digits>"; the prefix may be left out, case does not
// matter and the digits may be separated by colons or spaces, as tools print them.
func ParseFingerprint(s string) ([]byte, error) {
	h := strings.TrimSpace(s)
	if len(h) >= 7 && strings.EqualFold(h[:7], "sha256:") {
		h = h[7:]
	}
	h = strings.NewReplacer(":", "", " ", "").Replace(h)
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("server_fingerprint %q must be SHA256: and 64 hex digits (the SHA-256 of the server certificate)", s)
	}
	return b, nil
}

// pins is what a device trusts: fingerprints and whole certificates.
type pins struct {
	sums [][]byte
}

// loadPins reads a device's server_fingerprint and server_certificate.
func loadPins(fingerprint, certFile string) (pins, error) {
	var p pins
	if fingerprint != "" {
		b, err := ParseFingerprint(fingerprint)
		if err != nil {
			return p, err
		}
		p.sums = append(p.sums, b)
	}
	if certFile != "" {
		der, err := readCertificate(certFile)
		if err != nil {
			return p, fmt.Errorf("server_certificate: %w", err)
		}
		sum := sha256.Sum256(der)
		p.sums = append(p.sums, sum[:])
	}
	return p, nil
}

// trusts reports whether the DER certificate is one of the pinned ones.
func (p pins) trusts(der []byte) bool {
	sum := sha256.Sum256(der)
	for _, s := range p.sums {
		if bytes.Equal(s, sum[:]) {
			return true
		}
	}
	return false
}

// UntrustedError is returned when a server presents a certificate that is not pinned. Its
// message carries the fingerprint and the configuration line that would trust it.
type UntrustedError struct {
	Fingerprint string
}

func (e *UntrustedError) Error() string {
	return fmt.Sprintf("server certificate %s is not trusted; to trust it add server_fingerprint = %q to the device",
		e.Fingerprint, e.Fingerprint)
}

// readCertificate reads a certificate file in PEM or DER.
func readCertificate(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if blk, _ := pem.Decode(b); blk != nil {
		b = blk.Bytes
	}
	if _, err := x509.ParseCertificate(b); err != nil {
		return nil, fmt.Errorf("%s: not a certificate: %w", path, err)
	}
	return b, nil
}

// readKey reads an RSA private key in PEM (PKCS #1 or PKCS #8) or DER.
func readKey(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if blk, _ := pem.Decode(b); blk != nil {
		b = blk.Bytes
	}
	if k, err := x509.ParsePKCS1PrivateKey(b); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: not an RSA private key", path)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an RSA private key (OPC UA security policies use RSA)", path)
	}
	return rk, nil
}

// identity is a certificate and its key.
type identity struct {
	cert []byte // DER
	key  *rsa.PrivateKey
}

// identities loads client certificates once per driver, creating the PKI pair on first use.
type identities struct {
	mu    sync.Mutex
	cache map[string]identity
}

// client returns the client certificate and key: the configured files, or the pair in
// pkiDir, created there (0600) when absent. created reports a new pair.
func (ids *identities) client(certFile, keyFile, pkiDir string) (id identity, created bool, err error) {
	ids.mu.Lock()
	defer ids.mu.Unlock()
	if certFile == "" {
		certFile, keyFile = filepath.Join(pkiDir, "client.crt"), filepath.Join(pkiDir, "client.key")
	}
	k := certFile + "\x00" + keyFile
	if id, ok := ids.cache[k]; ok {
		return id, false, nil
	}
	_, cerr := os.Stat(certFile)
	_, kerr := os.Stat(keyFile)
	if pkiDir != "" && errors.Is(cerr, os.ErrNotExist) && errors.Is(kerr, os.ErrNotExist) {
		if err := createClientPair(pkiDir, certFile, keyFile); err != nil {
			return id, false, fmt.Errorf("creating the client certificate in %s: %w", pkiDir, err)
		}
		created = true
	}
	if id.cert, err = readCertificate(certFile); err != nil {
		return id, false, fmt.Errorf("client certificate: %w", err)
	}
	if id.key, err = readKey(keyFile); err != nil {
		return id, false, fmt.Errorf("client key: %w", err)
	}
	if ids.cache == nil {
		ids.cache = map[string]identity{}
	}
	ids.cache[k] = id
	return id, created, nil
}

// createClientPair writes a new self-signed application instance certificate and its key.
func createClientPair(dir, certFile, keyFile string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	cert, key, err := newApplicationCertificate("wellgate", applicationURI())
	if err != nil {
		return err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert})
	if err := writeFileExclusive(keyFile, keyPEM); err != nil {
		return err
	}
	return writeFileExclusive(certFile, certPEM)
}

// writeFileExclusive writes a new file with mode 0600, refusing to replace one.
func writeFileExclusive(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// applicationURI is the client's ApplicationURI, which its certificate must carry.
func applicationURI() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return "urn:" + host + ":wellgate"
}

// newApplicationCertificate makes a self-signed RSA 2048 application instance certificate
// (OPC UA Part 6, 6.2.2) valid for 20 years.
func newApplicationCertificate(name, appURI string) ([]byte, *rsa.PrivateKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, err
	}
	u, err := url.Parse(appURI)
	if err != nil {
		return nil, nil, err
	}
	host, _ := os.Hostname()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name, Organization: []string{"wellgate"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(20, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment |
			x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{u},
	}
	if host != "" {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	return der, key, nil
}
