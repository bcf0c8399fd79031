package opcua

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCheckDevice(t *testing.T) {
	good := func() DeviceOptions {
		return DeviceOptions{Name: "Skid", Endpoint: "opc.tcp://10.0.0.30:4840", Tags: []TagOptions{
			{Name: "Level", NodeID: "ns=2;s=Separator.Level", Deadband: 0.5}}}
	}
	for _, c := range []struct {
		name   string
		edit   func(*DeviceOptions)
		key    string // "" for no problem
		tag    int
		substr string
	}{
		{"good", func(*DeviceOptions) {}, "", 0, ""},
		{"secured", func(o *DeviceOptions) {
			o.SecurityPolicy, o.SecurityMode, o.Username, o.Password = "basic256sha256", "signandencrypt", "field", "wellsite"
			o.ServerFingerprint, o.PKIDir = "SHA256:"+strings.Repeat("3f", 32), "/var/lib/wellgate/pki"
		}, "", 0, ""},
		{"no endpoint", func(o *DeviceOptions) { o.Endpoint = "" }, "endpoint", -1, "opc.tcp://host:4840"},
		{"http endpoint", func(o *DeviceOptions) { o.Endpoint = "http://x:80" }, "endpoint", -1, "opc.tcp://"},
		{"bad port", func(o *DeviceOptions) { o.Endpoint = "opc.tcp://x:70000" }, "endpoint", -1, "port"},
		{"user in URL", func(o *DeviceOptions) { o.Endpoint = "opc.tcp://u:p@x:4840" }, "endpoint", -1, "username"},
		{"policy", func(o *DeviceOptions) { o.SecurityPolicy = "Basic512" }, "security_policy", -1, "Basic256Sha256"},
		{"mode", func(o *DeviceOptions) { o.SecurityMode = "Encrypt" }, "security_mode", -1, "SignAndEncrypt"},
		{"sign without policy", func(o *DeviceOptions) { o.SecurityMode = "Sign" }, "security_mode", -1, "security_policy other than None"},
		{"policy with mode none", func(o *DeviceOptions) {
			o.SecurityPolicy, o.SecurityMode, o.PKIDir = "Basic256Sha256", "None", "/x"
		}, "security_mode", -1, "Sign or SignAndEncrypt"},
		{"password alone", func(o *DeviceOptions) { o.Password = "x" }, "password", -1, "go together"},
		{"username alone", func(o *DeviceOptions) { o.Username = "x" }, "username", -1, "go together"},
		{"user key alone", func(o *DeviceOptions) { o.UserKey = "k.pem" }, "user_key", -1, "go together"},
		{"two user auths", func(o *DeviceOptions) {
			o.Username, o.Password, o.UserCertificate, o.UserKey = "u", "p", "c", "k"
		}, "user_certificate", -1, "choose one"},
		{"client key alone", func(o *DeviceOptions) { o.ClientKey = "k.pem" }, "client_key", -1, "go together"},
		{"fingerprint", func(o *DeviceOptions) {
			o.SecurityPolicy, o.PKIDir, o.ServerFingerprint = "Basic256Sha256", "/x", "SHA256:12"
		}, "server_fingerprint", -1, "64 hex digits"},
		{"fingerprint without security", func(o *DeviceOptions) { o.ServerFingerprint = "SHA256:" + strings.Repeat("ab", 32) }, "server_fingerprint", -1, "no server certificate is checked"},
		{"secured without certificate", func(o *DeviceOptions) { o.SecurityPolicy = "Basic256Sha256" }, "client_certificate", -1, "data directory"},
		{"mode", func(o *DeviceOptions) { o.Mode = "push" }, "mode", -1, "subscribe or poll"},
		{"timeout", func(o *DeviceOptions) { o.Timeout = time.Microsecond }, "timeout", -1, "at least 1ms"},
		{"node id", func(o *DeviceOptions) { o.Tags[0].NodeID = "ns=2;Level" }, "node_id", 0, "i=, s=, g= or b="},
		{"no node id", func(o *DeviceOptions) { o.Tags[0].NodeID = "" }, "node_id", 0, "needs node_id"},
		{"type", func(o *DeviceOptions) { o.Tags[0].Type = "Decimal" }, "type", 0, "not one of"},
		{"deadband on a string", func(o *DeviceOptions) { o.Tags[0].Type = "String" }, "deadband", 0, "numbers"},
		{"negative deadband", func(o *DeviceOptions) { o.Tags[0].Deadband = -1 }, "deadband", 0, "0 or more"},
		{"min above max", func(o *DeviceOptions) { lo, hi := 2.0, 1.0; o.Tags[0].Min, o.Tags[0].Max = &lo, &hi }, "min", 0, "greater than"},
		{"duplicate tag", func(o *DeviceOptions) { o.Tags = append(o.Tags, o.Tags[0]) }, "name", 1, "used twice"},
		{"no tag name", func(o *DeviceOptions) { o.Tags[0].Name = "" }, "name", 0, "no name"},
	} {
		o := good()
		c.edit(&o)
		ps := o.Check()
		if c.key == "" {
			if len(ps) > 0 {
				t.Errorf("%s: unexpected problems %v", c.name, ps)
			}
			continue
		}
		found := false
		for _, p := range ps {
			if p.Key == c.key && p.Tag == c.tag && strings.Contains(p.Msg, c.substr) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: problems %+v; want key %q tag %d with %q", c.name, ps, c.key, c.tag, c.substr)
		}
	}
}

func TestNewReportsEveryProblem(t *testing.T) {
	_, err := New(Options{Devices: []DeviceOptions{
		{Name: "A", Endpoint: "x", Tags: []TagOptions{{Name: "t", NodeID: "bad"}}},
		{Name: "A", Endpoint: "opc.tcp://h:1", Mode: "x"},
	}}, nil)
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 4 {
		t.Fatalf("New = %v; want 4 problems (endpoint, node id, duplicate device, mode)", err)
	}
	if msg := err.Error(); !strings.Contains(msg, `device "A": tag "t": node id "bad"`) {
		t.Fatalf("message: %s", msg)
	}
}

func TestParseType(t *testing.T) {
	for in, want := range map[string]string{"": "Type(0)", "double": "Double", "SByte": "Int8", "Byte": "UInt8",
		"ByteString": "Bytes", "bool": "Boolean", "DATETIME": "DateTime", "Float": "Float"} {
		got, err := ParseType(in)
		if err != nil || got.String() != want {
			t.Errorf("ParseType(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	if _, err := ParseType("Guid"); err == nil {
		t.Error("Guid accepted")
	}
}
