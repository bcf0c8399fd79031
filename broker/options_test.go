package broker

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestAnonymousDefault(t *testing.T) {
	user := []User{{Name: "ignition", PasswordHash: "$2a$10$x"}}
	for _, c := range []struct {
		name      string
		o         Options
		def, full bool
	}{
		{"loopback, no users: the demo", Options{Listen: "127.0.0.1:1883"}, true, true},
		{"localhost and ::1", Options{Listen: "localhost:1883", WSListen: "[::1]:8083"}, true, true},
		{"every interface", Options{Listen: ":1883"}, false, false},
		{"loopback plain, TLS on the LAN", Options{Listen: "127.0.0.1:1883", TLSListen: "0.0.0.0:8883"}, false, false},
		{"loopback with a user", Options{Listen: "127.0.0.1:1883", Users: user}, false, false},
		{"allowed on the LAN: the lists apply", Options{Listen: ":1883", AllowAnonymous: ptr(true)}, false, false},
		{"refused explicitly on loopback", Options{Listen: "127.0.0.1:1883", AllowAnonymous: ptr(false)}, true, false},
		{"loopback, narrowed by a list", Options{Listen: "127.0.0.1:1883", Anonymous: Access{Read: []string{"#"}}}, true, false},
	} {
		if got := c.o.AnonymousDefault(); got != c.def {
			t.Errorf("%s: AnonymousDefault = %v, want %v", c.name, got, c.def)
		}
		if got := c.o.AnonymousFullAccess(); got != c.full {
			t.Errorf("%s: AnonymousFullAccess = %v, want %v", c.name, got, c.full)
		}
	}
}

func TestWarningsNameAnonymousWritesOffLoopback(t *testing.T) {
	o := Options{Listen: ":1883", AllowAnonymous: ptr(true),
		Anonymous: Access{Read: []string{"#"}, Write: []string{"spBv1.0/+/DCMD/#"}}}
	w := o.Warnings()
	if len(w) != 2 || !strings.Contains(w[0], ":1883") || !strings.Contains(w[1], "DCMD") {
		t.Fatalf("warnings: %q", w)
	}
	for _, quiet := range []Options{
		{Listen: "127.0.0.1:1883", AllowAnonymous: ptr(true), Anonymous: Access{Write: []string{"#"}}},
		{Listen: ":1883", AllowAnonymous: ptr(true), Anonymous: Access{Read: []string{"#"}}},
		{Listen: ":1883", Anonymous: Access{Write: []string{"#"}}}, // not allowed at all
	} {
		if w := quiet.Warnings(); len(w) != 0 {
			t.Errorf("%+v: unexpected warnings %q", quiet, w)
		}
	}
}

func TestValidate(t *testing.T) {
	good, err := HashPassword([]byte("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	ok := Options{Listen: "127.0.0.1:1883", Users: []User{{Name: "ignition", PasswordHash: good,
		Access: Access{Read: []string{"spBv1.0/#"}, Write: []string{"spBv1.0/+/DCMD/#"}}}}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{}, "no listener"},
		{Options{Listen: "1883"}, "not host:port"},
		{Options{Listen: ":1", TLSListen: ":2"}, "tls_cert_file"},
		{Options{Listen: ":1", TLSCertFile: "c.pem"}, "need tls_listen"},
		{Options{Listen: ":1", Users: []User{{Name: "a", PasswordHash: "secret"}}}, "not a bcrypt hash"},
		{Options{Listen: ":1", Users: []User{{Name: "a", PasswordHash: good}, {Name: "a", PasswordHash: good}}}, "defined twice"},
		{Options{Listen: ":1", Users: []User{{Name: "a", PasswordHash: good, Access: Access{Write: []string{"a/#/b"}}}}}, `"a/#/b"`},
		{Options{Listen: ":1", EdgeNode: EdgeNode{Node: "gw"}}, "edge node"},
		{Options{Listen: ":1", MaxQueued: 70_000}, "max_queued"},
		{Options{Listen: ":1", MaxClients: -1}, "max_clients"},
	} {
		err := c.o.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one naming %q", c.o, err, c.want)
		}
	}
}

func TestHashPassword(t *testing.T) {
	h, err := HashPassword([]byte("correct horse"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$2a$") || bcrypt.CompareHashAndPassword([]byte(h), []byte("correct horse")) != nil {
		t.Fatalf("hash %q does not verify", h)
	}
	if _, err := HashPassword(nil); err == nil {
		t.Fatal("an empty password was hashed")
	}
}
