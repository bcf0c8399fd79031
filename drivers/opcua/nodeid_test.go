package opcua

import (
	"strings"
	"testing"

	"github.com/gopcua/opcua/ua"
)

func TestParseNodeID(t *testing.T) {
	for _, c := range []struct {
		in, want string // want: the canonical form, or "error: <part of the message>"
	}{
		{"i=85", "i=85"},
		{"ns=0;i=85", "i=85"},
		{"ns=2;s=Separator.Level", "ns=2;s=Separator.Level"},
		{"ns=2;s=a;b=c", "ns=2;s=a;b=c"},
		{"s=Level", "s=Level"},
		{"ns=65535;i=4294967295", "ns=65535;i=4294967295"},
		{"ns=3;g=09087E75-8E5E-499B-954F-F2A9603DB28A", "ns=3;g=09087e75-8e5e-499b-954f-f2a9603db28a"},
		{"ns=1;b=M/RbKBsRVkePCePcx24oRA==", "ns=1;b=M/RbKBsRVkePCePcx24oRA=="},
		{"nsu=http://example.com/UA/;s=Level", "nsu=http://example.com/UA/;s=Level"},
		{"nsu=urn:a;b;i=5", "nsu=urn:a;b;i=5"},
		{"", "error: empty"},
		{"ns=2;Level", "error: must start with i=, s=, g= or b="},
		{"Level", "error: must start with"},
		{"ns=65536;i=1", "error: 0…65535"},
		{"ns=-1;i=1", "error: 0…65535"},
		{"ns=01;i=1", "error: 0…65535"},
		{"ns=2", "error: must be followed by"},
		{"i=4294967296", "error: 0…4294967295"},
		{"i=+5", "error: 0…4294967295"},
		{"i=", "error: 0…4294967295"},
		{"ns=2;s=", "error: string identifier is empty"},
		{"g=1234", "error: 8-4-4-4-12"},
		{"g=09087e75x8e5e-499b-954f-f2a9603db28a", "error: 8-4-4-4-12"},
		{"b=not base64!", "error: base64"},
		{"b=", "error: base64"},
		{"nsu=;s=x", "error: URI is empty"},
		{"nsu=urn:x", "error: nsu=URI must be followed"},
		{"x=5", "error: must start with"},
		{"ns=1;s=\xff", "error: UTF-8"},
		{strings.Repeat("s", maxNodeIDLen+1), "error: bytes long"},
	} {
		id, err := ParseNodeID(c.in)
		if want, isErr := strings.CutPrefix(c.want, "error: "); isErr {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("ParseNodeID(%q) = %v, %v; want an error with %q", c.in, id, err, want)
			}
			continue
		}
		if err != nil || id.String() != c.want {
			t.Errorf("ParseNodeID(%q) = %q, %v; want %q", c.in, id.String(), err, c.want)
		}
	}
}

func TestNodeIDResolve(t *testing.T) {
	ns := []string{"http://opcfoundation.org/UA/", "urn:a", "urn:b"}
	id, _ := ParseNodeID("nsu=urn:b;i=7")
	got, err := id.resolve(ns)
	if err != nil || got.String() != "ns=2;i=7" {
		t.Fatalf("resolve = %v, %v", got, err)
	}
	id, _ = ParseNodeID("nsu=urn:c;i=7")
	if _, err := id.resolve(ns); err == nil {
		t.Fatal("an unknown namespace URI resolved")
	}
	for _, s := range []string{"i=85", "ns=2;s=x.y", "ns=3;g=09087e75-8e5e-499b-954f-f2a9603db28a", "ns=1;b=AAE="} {
		id, _ := ParseNodeID(s)
		n, err := id.resolve(nil)
		if err != nil || formatNodeID(n) != s {
			t.Errorf("%s: resolved %v (%q), %v", s, n, formatNodeID(n), err)
		}
	}
}

// FuzzParseNodeID: the parser never panics; what it accepts formats back to itself and means
// the same node as gopcua's own parser makes of the canonical form.
func FuzzParseNodeID(f *testing.F) {
	for _, s := range []string{"i=85", "ns=2;s=Separator.Level", "ns=3;g=09087e75-8e5e-499b-954f-f2a9603db28a",
		"ns=1;b=M/RbKBsRVkePCePcx24oRA==", "nsu=urn:a;b;i=5", "ns=65535;i=4294967295", "ns=2;Level", "g=", "b=AA=="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseNodeID(s)
		if err != nil {
			return
		}
		canon := id.String()
		again, err := ParseNodeID(canon)
		if err != nil || again != id {
			t.Fatalf("%q → %q → %+v, %v", s, canon, again, err)
		}
		if id.NamespaceURI != "" {
			return
		}
		wire, err := id.resolve(nil)
		if err != nil {
			t.Fatalf("%q: resolve: %v", s, err)
		}
		theirs, err := ua.ParseNodeID(canon)
		if err != nil {
			if id.Kind == 's' && strings.Contains(id.Text, ";") && id.Namespace == 0 {
				return // gopcua reads "s=a;b" as a namespace part
			}
			t.Fatalf("gopcua refuses %q: %v", canon, err)
		}
		if theirs.Namespace() != wire.Namespace() || formatNodeID(theirs) != formatNodeID(wire) {
			t.Fatalf("%q: ours %s, gopcua's %s", s, formatNodeID(wire), formatNodeID(theirs))
		}
	})
}
