package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// load writes text to a file in a temporary directory and loads it.
func load(t *testing.T, text string) (*Config, error) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "wellgate.toml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(file)
}

const minimal = `
[sparkplug]
group_id = "Wellsite"
edge_node_id = "PAD-07"
`

// wantDefaults is what minimal loads to, without File.
func wantDefaults() Config {
	c := *defaultConfig()
	c.Sparkplug.GroupID, c.Sparkplug.EdgeNodeID = "Wellsite", "PAD-07"
	c.Upstream.ClientID = "wellgate-Wellsite-PAD-07"
	return c // detection_window stays 0: the bridge applies its formula
}

func TestLoadGood(t *testing.T) {
	tests := []struct {
		name string
		text string
		want func(c *Config) // changes wantDefaults() into the expected Config
	}{
		{"defaults", minimal, func(c *Config) {
			if c.Gateway.DataDir != "/var/lib/wellgate" || c.Upstream.Queue.MaxBytes != 1<<30 ||
				c.Upstream.Queue.MaxAge.D() != 720*time.Hour || !c.Broker.Enabled || !c.Web.Enabled {
				t.Errorf("defaultConfig is not what types.go documents: %+v", c)
			}
		}},
		{"explicit top level", `
[gateway]
data_dir = "/data"
log_level = "debug"
[sparkplug]
group_id = "G"
edge_node_id = "E"
primary_host_id = "Ignition"
legacy_state = true
aliases = false
data_qos = 1
[broker]
enabled = false
[web]
listen = ":0"
[upstream]
servers = ["ssl://scada:8883", "wss://scada:443/mqtt"]
client_id = "pad7"
keepalive = "1m"
connect_timeout = "3s"
tls = { cert_file = "c.pem", key_file = "c.key" }
[upstream.queue]
max_bytes = "512MiB"
max_age = "24h"
sync_interval = "1s"
replay_rate = 100
`, func(c *Config) {
			c.Gateway = Gateway{DataDir: "/data", LogLevel: "debug"}
			c.Sparkplug = Sparkplug{GroupID: "G", EdgeNodeID: "E", PrimaryHostID: "Ignition", LegacyState: true, DataQoS: 1,
				MaxCommandMetrics: 1000}
			c.Broker.Enabled = false
			c.Web.Listen = ":0"
			c.Upstream = Upstream{
				Servers: []string{"ssl://scada:8883", "wss://scada:443/mqtt"}, ClientID: "pad7",
				Keepalive: Duration(time.Minute), ConnectTimeout: Duration(3 * time.Second),
				TLS: TLS{CertFile: "c.pem", KeyFile: "c.key"},
				Queue: Queue{MaxBytes: 512 << 20, MaxAge: Duration(24 * time.Hour), SyncInterval: Duration(time.Second),
					ReplayRate: 100},
			}
		}},
		{"explicit detection window", minimal + "[upstream.queue]\ndetection_window = \"5s\"\n", func(c *Config) {
			c.Upstream.Queue.DetectionWindow = Duration(5 * time.Second)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := load(t, tt.text)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got.File == "" {
				t.Error("File not set")
			}
			got.File = ""
			want := wantDefaults()
			tt.want(&want)
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("got  %+v\nwant %+v", *got, want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "absent.toml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(absent) = %v, want fs.ErrNotExist", err)
	}
}

func TestErrorFormat(t *testing.T) {
	c := &Config{File: "w.toml"}
	d := &Device{Name: "PLC", Line: 7}
	tag := &Tag{Name: "T/1", Line: 9}
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{File: "w.toml", Line: 3, Device: "D", Tag: "T", Msg: "bad"}, `w.toml:3: device "D": tag "T": bad`},
		{&Error{File: "w.toml", Msg: "bad"}, `w.toml: bad`},
		{&Error{Line: 3, Msg: "bad"}, `line 3: bad`},
		{&Error{Msg: "bad"}, `bad`},
		{c.DeviceError(d, "unit %d", 5), `w.toml:7: device "PLC": unit 5`},
		{c.TagError(d, tag, "address %q", "x"), `w.toml:9: device "PLC": tag "T/1": address "x"`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
	if got := (Errors{tests[1].err, tests[3].err}).Error(); got != "w.toml: bad\nbad" {
		t.Errorf("Errors.Error() = %q", got)
	}
}
