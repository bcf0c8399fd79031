package opcua

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFingerprint(t *testing.T) {
	sum := Fingerprint([]byte("cert"))
	if !strings.HasPrefix(sum, "SHA256:") || len(sum) != 7+64 {
		t.Fatalf("Fingerprint = %q", sum)
	}
	for _, s := range []string{sum, strings.TrimPrefix(sum, "SHA256:"), strings.ToUpper(sum),
		"sha256:" + colons(strings.TrimPrefix(sum, "SHA256:"))} {
		b, err := ParseFingerprint(s)
		if err != nil {
			t.Fatalf("ParseFingerprint(%q): %v", s, err)
		}
		if !(pins{sums: [][]byte{b}}).trusts([]byte("cert")) {
			t.Fatalf("%q does not pin the certificate", s)
		}
	}
	for _, s := range []string{"", "SHA256:", "SHA1:" + strings.Repeat("a", 40), "SHA256:" + strings.Repeat("g", 64)} {
		if _, err := ParseFingerprint(s); err == nil {
			t.Errorf("ParseFingerprint(%q) accepted", s)
		}
	}
}

func colons(h string) string {
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

// TestClientCertificateCreated: the first use creates the PKI pair, private (0600), with the
// application URI the session announces; the next use loads the same pair.
func TestClientCertificateCreated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	var ids identities
	id, created, err := ids.client("", "", dir)
	if err != nil || !created {
		t.Fatalf("client = %v, %v", created, err)
	}
	for _, f := range []string{"client.crt", "client.key"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, mode %v", f, err, st.Mode())
		}
	}
	cert, err := x509.ParseCertificate(id.cert)
	if err != nil || len(cert.URIs) != 1 || cert.URIs[0].String() != applicationURI() {
		t.Fatalf("certificate URIs %v, %v", cert.URIs, err)
	}
	var again identities
	id2, created, err := again.client("", "", dir)
	if err != nil || created || string(id2.cert) != string(id.cert) {
		t.Fatalf("second use: created %v, %v, same %v", created, err, string(id2.cert) == string(id.cert))
	}
	if _, _, err := again.client(filepath.Join(dir, "none.crt"), filepath.Join(dir, "none.key"), ""); err == nil {
		t.Fatal("missing configured files accepted")
	}
}
