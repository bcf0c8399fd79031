package config

import (
	"errors"
	"os"
	"reflect"
	"time"

	"github.com/BurntSushi/toml"
)

// Load reads, decodes and validates the configuration file at path. A file that cannot be
// read gives the error from os.ReadFile; every problem in the file itself is reported at once,
// as Errors sorted by line. Load does no I/O beyond reading the file: it never dials, resolves
// or opens anything the file names.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parse(path, string(data))
}

// parse loads a configuration from text; file is used in messages and stored in Config.File.
func parse(file, text string) (*Config, error) {
	var raw map[string]any
	if _, err := toml.Decode(text, &raw); err != nil {
		return nil, Errors{decodeError(file, err)}
	}
	ck := &checker{file: file, lines: keyLines(text)}
	ck.table(raw, reflect.TypeFor[Config](), nil, owner{})
	if len(ck.errs) > 0 {
		ck.errs.sort()
		return nil, ck.errs
	}

	c := defaultConfig()
	md, err := toml.Decode(text, c)
	if err != nil {
		return nil, Errors{decodeError(file, err)}
	}
	c.File = file
	for _, k := range md.Undecoded() {
		// The schema checker refuses unknown keys first; this only guards against the two
		// disagreeing.
		ck.add(path(k), owner{}, "unknown key %q", k.String())
	}
	devices := tablesAt(raw, "device")
	c.applyDefaults(&md, devices, ck.lines)

	v := &validator{c: c, lines: ck.lines, devices: devices, errs: ck.errs}
	v.validate()
	if len(v.errs) > 0 {
		v.errs.sort()
		return nil, v.errs
	}
	return c, nil
}

// decodeError turns an error from the TOML decoder into an Error, with its line when it has one.
func decodeError(file string, err error) *Error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return &Error{File: file, Line: pe.Position.Line, Msg: pe.Message}
	}
	return &Error{File: file, Msg: err.Error()}
}

// defaultConfig returns the configuration an empty file gives, before the file is decoded over it.
func defaultConfig() *Config {
	return &Config{
		Gateway:   Gateway{DataDir: "/var/lib/wellgate", LogLevel: "info"},
		Sparkplug: Sparkplug{Aliases: true},
		Broker:    Broker{Enabled: true, Listen: "127.0.0.1:1883"},
		Web:       Web{Enabled: true, Listen: "127.0.0.1:8080"},
		Upstream: Upstream{
			Keepalive:      Duration(30 * time.Second),
			ConnectTimeout: Duration(10 * time.Second),
			Queue: Queue{
				MaxBytes:     1 << 30,
				MaxAge:       Duration(720 * time.Hour),
				SyncInterval: Duration(200 * time.Millisecond),
				ReplayRate:   2000,
			},
		},
	}
}

// tablesAt returns the tables of the array of tables raw[key] (from [[key]] headers or an
// inline array of tables).
func tablesAt(raw map[string]any, key string) []map[string]any {
	switch v := raw[key].(type) {
	case []map[string]any:
		return v
	case []any:
		ts := make([]map[string]any, 0, len(v))
		for _, e := range v {
			m, _ := e.(map[string]any)
			ts = append(ts, m)
		}
		return ts
	}
	return nil
}

// applyDefaults fills in the defaults that depend on other keys or live in arrays of tables,
// which cannot be set before decoding, and records the line of every device and tag. A key
// written in the file is never replaced, even when its value is zero: validation judges it.
// (MetaData.IsDefined does not look inside arrays of tables, so device keys are looked up in
// the device's own table.)
func (c *Config) applyDefaults(md *toml.MetaData, devices []map[string]any, lines lineMap) {
	if !md.IsDefined("upstream", "client_id") {
		c.Upstream.ClientID = "wellgate-" + c.Sparkplug.GroupID + "-" + c.Sparkplug.EdgeNodeID
	}
	if !md.IsDefined("upstream", "queue", "detection_window") {
		c.Upstream.Queue.DetectionWindow = c.Upstream.Keepalive * 3 / 2
	}
	for i := range c.Devices {
		d := &c.Devices[i]
		p := path{"device", index(i)}
		d.Line = lines.line(p)
		if i < len(devices) {
			d.applyDefaults(devices[i])
		}
		for j := range d.Tags {
			d.Tags[j].Line = lines.line(p.with("tag", index(j)))
		}
	}
}

// applyDefaults sets the device's keys that are missing from its table m.
func (d *Device) applyDefaults(m map[string]any) {
	set := func(key string, field *int, v int) {
		if _, ok := m[key]; !ok {
			*field = v
		}
	}
	setDuration := func(key string, field *Duration, v time.Duration) {
		if _, ok := m[key]; !ok {
			*field = Duration(v)
		}
	}
	setDuration("poll_interval", &d.PollInterval, time.Second)
	setDuration("timeout", &d.Timeout, time.Second)
	if d.Driver != DriverModbusTCP && d.Driver != DriverModbusRTU {
		return
	}
	if _, ok := m["byte_order"]; !ok {
		d.ByteOrder = "ABCD"
	}
	set("max_registers", &d.MaxRegisters, 125)
	set("max_bits", &d.MaxBits, 2000)
	if d.Driver == DriverModbusTCP {
		set("unit_id", &d.UnitID, 1)
		return
	}
	set("baud", &d.Baud, 9600)
	set("data_bits", &d.DataBits, 8)
	set("stop_bits", &d.StopBits, 1)
}
