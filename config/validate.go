package config

import (
	"github.com/wellgate/wellgate/broker"

	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// validator checks a decoded configuration. It never touches the network or the file system.
type validator struct {
	c     *Config
	lines lineMap
	ck    *checker  // what the schema checker found: tables with problems are not judged further
	reg   *registry // the drivers
	errs  Errors
}

// add reports a problem at the line of p (or its closest ancestor in the file).
func (v *validator) add(p path, d *Device, t *Tag, format string, args ...any) {
	e := &Error{File: v.c.File, Line: v.lines.line(p), Msg: fmt.Sprintf(format, args...)}
	if d != nil {
		e.Device = d.Name
	}
	if t != nil {
		e.Tag = t.Name
	}
	v.errs = append(v.errs, e)
}

// top reports a problem with a key of a top-level table, named by its dotted path.
func (v *validator) top(p path, format string, args ...any) {
	v.add(p, nil, nil, "%s "+format, append([]any{p.dotted()}, args...)...)
}

// validate checks every section that had no problem of key or type, then the devices.
func (v *validator) validate() {
	checks := []struct {
		section string
		check   func()
	}{
		{"gateway", v.gateway},
		{"sparkplug", v.sparkplug},
		{"broker", v.broker},
		{"web", v.web},
		{"upstream", v.upstream},
	}
	for _, c := range checks {
		if !v.ck.bad(path{c.section}) {
			c.check()
		}
	}
	if !v.ck.bad(path{"device"}) {
		v.allDevices()
		v.drivers()
	}
}

var logLevels = []string{"debug", "info", "warn", "error"}

func (v *validator) gateway() {
	g := v.c.Gateway
	if g.DataDir == "" {
		v.top(path{"gateway", "data_dir"}, "must not be empty")
	}
	if !slices.Contains(logLevels, g.LogLevel) {
		v.top(path{"gateway", "log_level"}, "%q is not one of %s", g.LogLevel, strings.Join(logLevels, ", "))
	}
}

func (v *validator) sparkplug() {
	s := v.c.Sparkplug
	for _, id := range []struct {
		key, val string
		required bool
	}{
		{"group_id", s.GroupID, true},
		{"edge_node_id", s.EdgeNodeID, true},
		{"primary_host_id", s.PrimaryHostID, false},
	} {
		p := path{"sparkplug", id.key}
		if id.val == "" && !id.required {
			continue
		}
		if msg := checkID(id.val); msg != "" && id.val != "" {
			v.top(p, "%q %s", id.val, msg)
		} else if msg != "" {
			v.top(p, "%s", msg)
		}
	}
	if s.LegacyState && s.PrimaryHostID == "" {
		v.top(path{"sparkplug", "legacy_state"}, "needs sparkplug.primary_host_id")
	}
	if s.MaxCommandMetrics < 1 || s.MaxCommandMetrics > 100_000 {
		v.top(path{"sparkplug", "max_command_metrics"}, "must be from 1 to 100000, not %d", s.MaxCommandMetrics)
	}
	if s.DataQoS != 0 && s.DataQoS != 1 {
		v.top(path{"sparkplug", "data_qos"}, "must be 0 or 1, not %d", s.DataQoS)
	}
}

// checkID checks a Sparkplug identifier (group, edge node, device, primary host); it returns
// what is wrong, or "".
func checkID(id string) string {
	switch {
	case id == "":
		return "is required"
	case !utf8.ValidString(id):
		return "is not valid UTF-8"
	case strings.ContainsAny(id, "+/#"):
		return "must not contain '+', '/' or '#' (Sparkplug topic ids)"
	}
	return ""
}

func (v *validator) upstream() {
	u := v.c.Upstream
	if !u.Enabled() {
		return
	}
	for i, s := range u.Servers {
		if msg := checkServerURL(s); msg != "" {
			v.add(path{"upstream", "servers"}, nil, nil, "upstream.servers[%d] %q: %s", i, s, msg)
		}
	}
	if u.ClientID == "" {
		v.top(path{"upstream", "client_id"}, "must not be empty")
	}
	positive := []struct {
		key path
		d   Duration
	}{
		{path{"upstream", "keepalive"}, u.Keepalive},
		{path{"upstream", "connect_timeout"}, u.ConnectTimeout},
		{path{"upstream", "queue", "max_age"}, u.Queue.MaxAge},
		{path{"upstream", "queue", "sync_interval"}, u.Queue.SyncInterval},
	}
	for _, p := range positive {
		if p.d <= 0 {
			v.top(p.key, "must be greater than 0")
		}
	}
	if u.Queue.DetectionWindow < 0 {
		v.top(path{"upstream", "queue", "detection_window"}, "must not be negative")
	}
	if u.Keepalive > 0 && u.Keepalive.D().Seconds() < 1 {
		v.top(path{"upstream", "keepalive"}, "must be at least 1s (MQTT counts it in seconds)")
	}
	v.forwards(u.Forward)
	if u.Queue.MaxBytes <= 0 {
		v.top(path{"upstream", "queue", "max_bytes"}, "must be greater than 0")
	}
	if u.Queue.ReplayRate <= 0 {
		v.top(path{"upstream", "queue", "replay_rate"}, "must be greater than 0")
	}
	if (u.TLS.CertFile == "") != (u.TLS.KeyFile == "") {
		p := path{"upstream", "tls", "cert_file"}
		if u.TLS.CertFile == "" {
			p = path{"upstream", "tls", "key_file"}
		}
		v.add(p, nil, nil, "upstream.tls.cert_file and upstream.tls.key_file go together: set both or neither")
	}
}

// forwards checks the bridge rules between the embedded and the upstream broker.
func (v *validator) forwards(rules []Forward) {
	if len(rules) > 0 && !v.c.Broker.Enabled {
		v.add(path{"upstream", "forward", index(0)}, nil, nil, "upstream.forward rules need the embedded broker ([broker] enabled = true)")
	}
	for i := range rules {
		r := &rules[i]
		p := path{"upstream", "forward", index(i)}
		if r.Direction == "" {
			r.Direction = "up"
		}
		if r.Direction != "up" && r.Direction != "down" {
			v.add(p.with("direction"), nil, nil, "upstream.forward direction %q: want \"up\" or \"down\"", r.Direction)
		}
		if msg := checkFilter(r.Filter); msg != "" {
			v.add(p.with("filter"), nil, nil, "upstream.forward filter %q: %s", r.Filter, msg)
		}
		if strings.ContainsAny(r.Prefix, "+#") || !utf8.ValidString(r.Prefix) {
			v.add(p.with("prefix"), nil, nil, "upstream.forward prefix %q: must be UTF-8 without '+' or '#'", r.Prefix)
		}
		if r.QoS != 0 && r.QoS != 1 {
			v.add(p.with("qos"), nil, nil, "upstream.forward qos %d: want 0 or 1", r.QoS)
		}
		if checkFilter(r.Filter) == "" && broker.FiltersOverlap(r.Filter, "spBv1.0/#") {
			v.add(p.with("filter"), nil, nil, "upstream.forward filter %q would forward the gateway's own Sparkplug traffic", r.Filter)
		}
	}
}

// checkFilter says what is wrong with an MQTT topic filter, or "" (the broker's rule).
func checkFilter(f string) string {
	if err := broker.CheckFilter(f); err != nil {
		return err.Error()
	}
	return ""
}
