package opcua

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/wellgate/wellgate/config"
	"github.com/wellgate/wellgate/drivers"
)

// TestBrowseTable prints the variables below the Objects folder with their node id, browse
// path, data type, access level and value, after the certificate line.
func TestBrowseTable(t *testing.T) {
	ts := shared(t)
	ts.add("browse.level", ua.TypeIDDouble, 12.5, true)
	ts.add("browse.name", ua.TypeIDString, "skid 3", false)
	var out bytes.Buffer
	if err := Browse(context.Background(), BrowseOptions{Endpoint: ts.url, Timeout: 2 * time.Second}, &out); err != nil {
		t.Fatalf("Browse: %v", err)
	}
	text := out.String()
	if !strings.HasPrefix(text, "# server certificate: ") {
		t.Fatalf("no certificate line first:\n%s", text)
	}
	for _, want := range [][]string{
		{"NODE ID", "BROWSE PATH", "DATA TYPE", "ACCESS", "VALUE"},
		{"s=browse.level", "/browse.level", "Double", "RW", "12.5"},
		{"s=browse.name", "/browse.name", "String", "R", "skid 3"},
	} {
		if !hasRow(text, want) {
			t.Errorf("no row with %q in:\n%s", want, text)
		}
	}
	if strings.Contains(text, "ServerStatus") {
		t.Errorf("the Server object is listed:\n%s", text)
	}
}

// hasRow reports whether a line holds every field, in order.
func hasRow(text string, fields []string) bool {
	for _, line := range strings.Split(text, "\n") {
		rest, ok := line, true
		for _, f := range fields {
			i := strings.Index(rest, f)
			if i < 0 {
				ok = false
				break
			}
			rest = rest[i+len(f):]
		}
		if ok {
			return true
		}
	}
	return false
}

// TestBrowseTOMLLoads: the -toml output is a device table that the configuration loads as it
// is, and whose driver reads the browsed values with their types.
func TestBrowseTOMLLoads(t *testing.T) {
	ts := shared(t)
	ts.add("toml.level", ua.TypeIDFloat, float32(3.5), true)
	ts.add("toml.count", ua.TypeIDUint16, uint16(7), false)
	var out bytes.Buffer
	if err := Browse(context.Background(), BrowseOptions{Endpoint: ts.url, TOML: "Skid 3", Timeout: 2 * time.Second}, &out); err != nil {
		t.Fatalf("Browse: %v", err)
	}
	text := out.String()
	for _, want := range []string{"[[device]]\nname = \"Skid 3\"\ndriver = \"opcua\"", `node_id = "nsu=urn:wellgate:test;s=toml.level"`,
		`type = "Float"` + "\n  writable = true", `type = "UInt16"`} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in:\n%s", want, text)
		}
	}
	file := filepath.Join(t.TempDir(), "site.toml")
	if err := os.WriteFile(file, []byte(tomlHead+text), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(file)
	if err != nil {
		t.Fatalf("the browse output does not load:\n%v\n%s", err, text)
	}
	built, err := build(c.Enabled(Name), discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	d := built.(*Driver)
	var level, count string
	for _, tag := range d.Devices()[0].Tags {
		switch {
		case strings.HasSuffix(tag.Name, "toml.level"):
			level = tag.Name
		case strings.HasSuffix(tag.Name, "toml.count"):
			count = tag.Name
		}
	}
	if level == "" || count == "" {
		t.Fatalf("tags missing from %+v", d.Devices()[0].Tags)
	}
	sink := newTestSink()
	go d.Run(context.Background(), sink)
	defer d.Close()
	sink.waitValue(t, 5*time.Second, "Skid 3", level, drivers.Good, drivers.FloatValue(3.5))
	sink.waitValue(t, 5*time.Second, "Skid 3", count, drivers.Good, drivers.UintValue(drivers.UInt16, 7))
}

func TestTagNamesAndTOMLStrings(t *testing.T) {
	used := map[string]bool{}
	for _, c := range []struct {
		path []string
		want string
	}{
		{[]string{"Skid", "Flow/Rate"}, "Skid/Flow_Rate"},
		{[]string{"Skid", "flow_rate"}, "Skid/flow_rate_2"}, // Ignition ignores case
		{[]string{"SKID", "FLOW_RATE"}, "SKID/FLOW_RATE_3"},
		{[]string{"a+b", "#", ""}, "a_b/_/_"},
	} {
		if got := tagName(c.path, used); got != c.want {
			t.Errorf("tagName(%q) = %q, want %q", c.path, got, c.want)
		}
	}
	if got := tomlString("a\"b\\c\nd\x01"); got != `"a\"b\\c\nd\u0001"` {
		t.Errorf("tomlString = %s", got)
	}
}
