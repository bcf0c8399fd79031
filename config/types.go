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
	// MaxCommandMetrics is the most metrics one NCMD/DCMD may carry; a larger command is
	// refused whole. Default 1000.
	MaxCommandMetrics int `toml:"max_command_metrics"`
}

// Broker is the embedded MQTT broker.
type Broker struct {
	Enabled bool   `toml:"enabled"` // default true
	Listen  string `toml:"listen"`  // plain TCP, default "127.0.0.1:1883"; "" for none
	// TLSListen serves MQTT over TLS with TLSCertFile and TLSKeyFile; with TLSClientCAFile
	// every client must present a certificate signed by that CA.
	TLSListen       string `toml:"tls_listen"`
	TLSCertFile     string `toml:"tls_cert_file"`
	TLSKeyFile      string `toml:"tls_key_file"`
	TLSClientCAFile string `toml:"tls_client_ca_file"`
	WSListen        string `toml:"ws_listen"` // MQTT over WebSocket, for HMI panels
	// AllowAnonymous lets clients connect without a user name. Absent: only when every
	// listener is on loopback and there are no users.
	AllowAnonymous *bool        `toml:"allow_anonymous"`
	Anonymous      BrokerAccess `toml:"anonymous"` // what anonymous clients may read and write
	Users          []BrokerUser `toml:"user"`
	MaxClients     int          `toml:"max_clients"`     // default 100
	MaxPacketSize  Size         `toml:"max_packet_size"` // default 256 KiB
	SessionExpiry  Duration     `toml:"session_expiry"`  // persistent sessions kept; default 168h
	Flat           Flat         `toml:"flat"`
}

// BrokerUser is one user of the embedded broker, with the topic filters it may subscribe to
// (Read) and publish to (Write).
type BrokerUser struct {
	Name         string   `toml:"name"`
	PasswordHash string   `toml:"password_hash"` // bcrypt, as `wellgate passwd` prints it
	Read         []string `toml:"read"`
	Write        []string `toml:"write"`
}

// BrokerAccess is what anonymous clients may do.
type BrokerAccess struct {
	Read  []string `toml:"read"`
	Write []string `toml:"write"`
}

// Flat publishes every tag on a topic of its own with a small JSON payload, for local HMIs
// that do not speak Sparkplug: Template with {device} and {tag} (and {prefix}) replaced.
type Flat struct {
	Enabled  bool   `toml:"enabled"`
	Prefix   string `toml:"prefix"`   // default "wellsite"
	Template string `toml:"template"` // default "{prefix}/{device}/{tag}"
	QoS      int    `toml:"qos"`      // 0 (default), 1 or 2; [[device]] and [[device.tag]] flat_qos override
	Retain   bool   `toml:"retain"`   // [[device]] and [[device.tag]] flat_retain override
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
	MaxBytes     Size     `toml:"max_bytes"`     // default 1 GiB
	MaxAge       Duration `toml:"max_age"`       // default 30 days (720h)
	SyncInterval Duration `toml:"sync_interval"` // group-commit fsync interval, default 200ms
	ReplayRate   int      `toml:"replay_rate"`   // historical samples per second, default 2000
	// DetectionWindow: after it a live value with no proof of delivery counts as delivered.
	// 0 (default): keepalive + ping timeout + 3 × paho's check interval + 2s, the bridge's
	// formula; a smaller value is raised to it.
	DetectionWindow Duration `toml:"detection_window"`
}

// Web is the local status page.
type Web struct {
	Enabled bool   `toml:"enabled"` // default true
	Listen  string `toml:"listen"`  // default "127.0.0.1:8080"
	// Users, when any, must log in (HTTP basic authentication) to see the page and its API.
	Users       []WebUser `toml:"user"`
	TLSCertFile string    `toml:"tls_cert_file"` // with tls_key_file: serve HTTPS
	TLSKeyFile  string    `toml:"tls_key_file"`
	// MaxConnections bounds the connections open at once (default 64).
	MaxConnections int `toml:"max_connections"`
}

// WebUser is one user of the status page.
type WebUser struct {
	Name         string `toml:"name"`
	PasswordHash string `toml:"password_hash"` // bcrypt, as `wellgate passwd` prints it
}

// Poll schedules (Device.PollSchedule).
const (
	ScheduleClock = "clock"
	ScheduleStart = "start"
)

// Device is one field device and its tags: the keys every device has, whatever its driver.
// The other keys of its [[device]] table belong to the driver that its Driver key names,
// which decodes them into its own settings struct (see DriverSpec).
type Device struct {
	Name         string   `toml:"name"`          // unique; becomes the Sparkplug device id
	Driver       string   `toml:"driver"`        // a registered driver's name
	Disabled     bool     `toml:"disabled"`      // keep in the file (still checked) but do not poll
	PollInterval Duration `toml:"poll_interval"` // default 1s
	// PollSchedule is when polls start: "clock" (default) at whole multiples of PollInterval
	// on the wall clock (a 1 s device at every whole second, a 1 m device at every whole
	// minute), after one poll at start; "start": every PollInterval from the first poll.
	PollSchedule string   `toml:"poll_schedule"`
	Timeout      Duration `toml:"timeout"` // per request, default 1s
	// Flat topics: override [broker.flat] qos and retain for this device's tags.
	FlatQoS    *int  `toml:"flat_qos"`
	FlatRetain *bool `toml:"flat_retain"`

	Tags []Tag `toml:"tag"`

	// Settings is the driver's part of the table: the pointer its DriverSpec.NewDevice returned,
	// with the table's keys decoded over the driver's defaults. It is nil when the driver is not
	// registered, and when a key of the table was unknown or of the wrong type: that problem is
	// reported, and the driver checks nothing that needs the settings.
	Settings any `toml:"-"`

	// Line is the line of the device's [[device]] header in File.
	Line int `toml:"-"`

	file     string    // the file the device was loaded from, for Errorf
	keyNames []string  // the names of the file's keys, which keyLine.name numbers (shared)
	keys     []keyLine // the line of each key written in the device's table, for Errorf
	path     path      // the device's table: device.[i]; only while loading
	dataDir  string    // gateway.data_dir
}

// DataDir is the gateway's data directory (gateway.data_dir), where a driver keeps what it
// must keep across restarts (an OPC UA client certificate, learned types): under a
// directory named after itself.
func (d *Device) DataDir() string { return d.dataDir }

// Tag is one value on a device: the keys every driver's tags have. The other keys of its
// [[device.tag]] table belong to the device's driver (see DriverSpec.NewTag).
//
// min and max are common rather than the driver's: a write range in engineering units means
// the same for every driver, and belongs with the other keys that describe the metric to
// Sparkplug (units, writable, deadbands) rather than with how the driver reaches the value.
type Tag struct {
	Name        string   `toml:"name"` // unique per device; '/' makes folders in Ignition
	Units       string   `toml:"units"`
	Description string   `toml:"description"`
	Writable    bool     `toml:"writable"`
	Min         *float64 `toml:"min"` // write range checks (engineering units)
	Max         *float64 `toml:"max"`

	// Report by exception.
	Deadband        float64  `toml:"deadband"`         // absolute, in engineering units
	DeadbandPercent float64  `toml:"deadband_percent"` // of the last reported value
	MaxInterval     Duration `toml:"max_interval"`     // re-send unchanged values after this long (0: never)

	// Flat topics: override the device's (or [broker.flat]'s) qos and retain for this tag.
	FlatQoS    *int  `toml:"flat_qos"`
	FlatRetain *bool `toml:"flat_retain"`

	// Settings is the driver's part of the table, as for Device.Settings.
	Settings any `toml:"-"`

	// Line is the line of the tag's [[device.tag]] header in File.
	Line int `toml:"-"`

	keys []keyLine // the line of each key written in the tag's table, for TagErrorf
	path path      // the tag's table: device.[i].tag.[j]; only while loading
}

// Duration is a time.Duration written in TOML as a string such as "500ms" or "1m30s".
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Size is a byte count written in TOML as an integer or a string such as "512MiB" or "1GB".
type Size int64
