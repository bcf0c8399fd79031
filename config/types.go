// Package config loads and validates the gateway's one TOML file. Loading applies defaults,
// refuses unknown keys and wrong types, and validates without any I/O beyond reading the file;
// every message names the file, the line and, where there is one, the device and the tag.
package config

import (
	"time"
)

// Config is the whole gateway configuration.
type Config struct {
	Gateway   Gateway   `toml:"gateway"`
	Sparkplug Sparkplug `toml:"sparkplug"`
	Broker    Broker    `toml:"broker"`
	Upstream  Upstream  `toml:"upstream"`
	Web       Web       `toml:"web"`
	Devices   []Device  `toml:"device"`

	// File is the path the configuration was loaded from ("" when built in code).
	File string `toml:"-"`
}

// Gateway holds process-wide settings.
type Gateway struct {
	DataDir  string `toml:"data_dir"`  // default "/var/lib/wellgate"
	LogLevel string `toml:"log_level"` // debug, info (default), warn, error
}

// Sparkplug is the edge node's identity and session options.
type Sparkplug struct {
	GroupID       string `toml:"group_id"`        // required
	EdgeNodeID    string `toml:"edge_node_id"`    // required
	PrimaryHostID string `toml:"primary_host_id"` // optional: wait for this host's STATE
	LegacyState   bool   `toml:"legacy_state"`    // also honour the 2.2 STATE/<id> ONLINE/OFFLINE form
	Aliases       bool   `toml:"aliases"`         // default true
	DataQoS       int    `toml:"data_qos"`        // 0 (spec, default) or 1 (documented deviation)
}

// Broker is the embedded MQTT broker.
type Broker struct {
	Enabled bool   `toml:"enabled"` // default true
	Listen  string `toml:"listen"`  // default "127.0.0.1:1883"
}

// Upstream is the optional connection to the upstream (Ignition) broker. It is enabled when
// Servers is not empty.
type Upstream struct {
	Servers        []string `toml:"servers"`   // "tcp://host:1883", "ssl://host:8883"; tried in order
	ClientID       string   `toml:"client_id"` // default "wellgate-<group>-<edge>"
	Username       string   `toml:"username"`
	Password       string   `toml:"password"`
	Keepalive      Duration `toml:"keepalive"`       // default 30s
	ConnectTimeout Duration `toml:"connect_timeout"` // default 10s
	TLS            TLS      `toml:"tls"`
	Queue          Queue    `toml:"queue"`
	// Forward rules carry messages that local MQTT clients publish into the embedded broker
	// upstream (and, with direction "down", upstream messages down to the embedded broker).
	Forward []Forward `toml:"forward"`
}

// Forward is one bridge rule between the embedded broker and the upstream broker.
type Forward struct {
	Direction string `toml:"direction"` // "up" (local → upstream, default) or "down"
	Filter    string `toml:"filter"`    // MQTT topic filter, in the local topic space
	Prefix    string `toml:"prefix"`    // upstream topic = prefix + local topic
	QoS       int    `toml:"qos"`       // 0 or 1
	Retain    bool   `toml:"retain"`
}

// Enabled reports whether an upstream broker is configured.
func (u Upstream) Enabled() bool { return len(u.Servers) > 0 }

// TLS configures the upstream connection's TLS (used with ssl:// and tls:// servers).
type TLS struct {
	CAFile             string `toml:"ca_file"`
	CertFile           string `toml:"cert_file"`
	KeyFile            string `toml:"key_file"`
	ServerName         string `toml:"server_name"`
	InsecureSkipVerify bool   `toml:"insecure_skip_verify"`
}

// Queue configures the store-and-forward disk queue.
type Queue struct {
	MaxBytes        Size     `toml:"max_bytes"`        // default 1 GiB
	MaxAge          Duration `toml:"max_age"`          // default 30 days (720h)
	SyncInterval    Duration `toml:"sync_interval"`    // group-commit fsync interval, default 200ms
	ReplayRate      int      `toml:"replay_rate"`      // historical samples per second, default 2000
	DetectionWindow Duration `toml:"detection_window"` // default 1.5 × keepalive
}

// Web is the local status page.
type Web struct {
	Enabled bool   `toml:"enabled"` // default true
	Listen  string `toml:"listen"`  // default "127.0.0.1:8080"
}

// Driver names.
const (
	DriverModbusTCP = "modbus-tcp"
	DriverModbusRTU = "modbus-rtu"
	DriverOPCUA     = "opcua"
)

// Device is one field device and its tags. Keys that apply to one driver only are refused for
// the others.
type Device struct {
	Name         string   `toml:"name"`          // unique; becomes the Sparkplug device id
	Driver       string   `toml:"driver"`        // modbus-tcp, modbus-rtu (opcua later)
	Disabled     bool     `toml:"disabled"`      // keep in the file but do not poll
	PollInterval Duration `toml:"poll_interval"` // default 1s
	Timeout      Duration `toml:"timeout"`       // per request, default 1s

	// Modbus TCP.
	Address string `toml:"address"` // host:port (port defaults to 502)
	// Modbus TCP and RTU.
	UnitID       int    `toml:"unit_id"`       // 0..247 (TCP default 1; RTU required 1..247)
	ByteOrder    string `toml:"byte_order"`    // ABCD (default), CDAB, BADC, DCBA
	MaxRegisters int    `toml:"max_registers"` // per read, default 125
	MaxBits      int    `toml:"max_bits"`      // per read, default 2000
	MaxGap       int    `toml:"max_gap"`       // unused registers a merged read may span, default 0

	// Modbus RTU.
	Port     string `toml:"port"`      // serial device, e.g. /dev/ttyUSB0
	Baud     int    `toml:"baud"`      // default 9600
	DataBits int    `toml:"data_bits"` // default 8
	Parity   string `toml:"parity"`    // N, E or O: required for RTU (no silent default)
	StopBits int    `toml:"stop_bits"` // default 1

	Tags []Tag `toml:"tag"`

	// Line is the line of the device's [[device]] header in File.
	Line int `toml:"-"`
}

// Tag is one value on a device.
type Tag struct {
	Name        string   `toml:"name"`       // unique per device; '/' makes folders in Ignition
	Address     Address  `toml:"address"`    // "40001", "400001", "30001", "10001", "00001", "hr:0", "40001.3"; an integer is accepted too
	Type        string   `toml:"type"`       // bool, int16, uint16, int32, uint32, int64, uint64, float32, float64, string
	ByteOrder   string   `toml:"byte_order"` // overrides the device's
	Length      int      `toml:"length"`     // registers, for strings
	Scale       *float64 `toml:"scale"`      // value = raw*scale + offset, published as a float
	Offset      *float64 `toml:"offset"`
	Units       string   `toml:"units"`
	Description string   `toml:"description"`
	Writable    bool     `toml:"writable"`
	Min         *float64 `toml:"min"` // write range checks (engineering units)
	Max         *float64 `toml:"max"`

	// Report by exception.
	Deadband        float64  `toml:"deadband"`         // absolute, in engineering units
	DeadbandPercent float64  `toml:"deadband_percent"` // of the last reported value
	MaxInterval     Duration `toml:"max_interval"`     // re-send unchanged values after this long (0: never)

	// Line is the line of the tag's [[device.tag]] header in File.
	Line int `toml:"-"`
}

// Duration is a time.Duration written in TOML as a string such as "500ms" or "1m30s".
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Size is a byte count written in TOML as an integer or a string such as "512MiB" or "1GB".
type Size int64

// Address is a tag's register address as written in the file. TOML may give it as a string
// ("40001", "hr:0") or an integer (40001); either way it is kept as text, and the driver parses
// it. Convert with string(a).
type Address string
