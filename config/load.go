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

// parse loads a configuration from text with the registered drivers; file is used in
// messages and stored in Config.File.
func parse(file, text string) (*Config, error) { return parseWith(&registered, file, text) }

// parseWith loads a configuration with the drivers of reg. A parse error ends it; after that,
// every problem is collected: keys and types first (the schema checker), then the values of
// every table that had none, including each driver's part.
func parseWith(reg *registry, file, text string) (*Config, error) {
	var top map[string]toml.Primitive
	md, err := toml.Decode(text, &top)
	if err != nil {
		return nil, Errors{decodeError(file, err)}
	}
	// The file as the parser read it, for the schema checker: decoding a primitive into an
	// interface hands over the parsed value itself, so the file is parsed only once.
	raw := make(map[string]any, len(top))
	for k, prim := range top {
		var v any
		if err := md.PrimitiveDecode(prim, &v); err != nil {
			return nil, Errors{decodeError(file, err)}
		}
		raw[k] = v
	}
	ck := newChecker(file, reg)
	ck.table(raw, reflect.TypeFor[Config](), nil, owner{})

	c := defaultConfig()
	c.File = file
	// The parse tree goes as the configuration grows, and before the lines are found
	// (tableKeys): a device's tables are let go once it is decoded (the tree's array of device
	// tables is the one raw holds), the rest after decoding. The peak of a large file's load
	// is about the tree, or the configuration and the lines, not all three.
	rawDevs, _ := raw["device"].([]map[string]any)
	var keys tableKeys
	done := func(i int, dev *Device) {
		var table map[string]any
		if i < len(rawDevs) {
			table, rawDevs[i] = rawDevs[i], nil
		}
		keys.collect(dev, table)
	}
	(&decoder{md: &md, ck: ck, reg: reg, done: done}).config(top, c)
	c.applyDefaults(&md)
	for i := range c.Devices {
		c.Devices[i].dataDir = c.Gateway.DataDir
	}
	top, raw, rawDevs, md = nil, nil, nil, toml.MetaData{}
	lines := keyLines(text)
	ck.place(lines)
	keys.keepLines(c, lines)

	v := &validator{c: c, lines: lines, ck: ck, reg: reg, errs: ck.errs}
	v.validate()
	if len(v.errs) > 0 {
		v.errs.sort()
		return nil, v.errs
	}
	for i := range c.Devices { // only the lines kept above stay for Errorf
		d := &c.Devices[i]
		d.path = nil
		for j := range d.Tags {
			d.Tags[j].path = nil
		}
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
		Sparkplug: Sparkplug{Aliases: true, MaxCommandMetrics: 1000},
		Broker: Broker{Enabled: true, Listen: "127.0.0.1:1883", MaxClients: 100,
			MaxPacketSize: 256 << 10, SessionExpiry: Duration(168 * time.Hour),
			Flat: Flat{Prefix: "wellsite", Template: "{prefix}/{device}/{tag}"}},
		Web: Web{Enabled: true, Listen: "127.0.0.1:8080", MaxConnections: 64},
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

// applyDefaults fills in the defaults that depend on other keys, which cannot be set before
// decoding. A key written in the file is never replaced, even when its value is zero:
// validation judges it.
func (c *Config) applyDefaults(md *toml.MetaData) {
	if !md.IsDefined("upstream", "client_id") {
		c.Upstream.ClientID = "wellgate-" + c.Sparkplug.GroupID + "-" + c.Sparkplug.EdgeNodeID
	}
}
