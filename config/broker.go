package config

import (
	"strings"
	"unicode/utf8"

	"github.com/wellgate/wellgate/broker"
)

// broker checks the embedded broker's keys: listeners, TLS files going together, users and
// their topic filters, limits, and flat topics.
func (v *validator) broker() {
	b := v.c.Broker
	if !b.Enabled {
		return
	}
	listeners := 0
	for _, l := range []struct{ key, addr string }{{"listen", b.Listen}, {"tls_listen", b.TLSListen}, {"ws_listen", b.WSListen}} {
		if l.addr != "" {
			listeners++
			v.listen(path{"broker", l.key}, l.addr)
		}
	}
	if listeners == 0 {
		v.top(path{"broker", "listen"}, "is empty and so are tls_listen and ws_listen: set one, or enabled = false")
	}
	if b.TLSListen != "" && (b.TLSCertFile == "" || b.TLSKeyFile == "") {
		v.add(path{"broker", "tls_listen"}, nil, nil, "broker.tls_listen needs broker.tls_cert_file and broker.tls_key_file")
	}
	if b.TLSListen == "" && (b.TLSCertFile != "" || b.TLSKeyFile != "" || b.TLSClientCAFile != "") {
		v.add(path{"broker", "tls_cert_file"}, nil, nil, "broker.tls_cert_file, tls_key_file and tls_client_ca_file apply only with broker.tls_listen")
	}
	if b.MaxClients < 1 {
		v.top(path{"broker", "max_clients"}, "must be at least 1, not %d", b.MaxClients)
	}
	if b.MaxPacketSize < 1<<10 || b.MaxPacketSize > 256<<20 {
		v.top(path{"broker", "max_packet_size"}, "must be from 1KiB to 256MiB, not %d bytes", int64(b.MaxPacketSize))
	}
	if b.SessionExpiry <= 0 {
		v.top(path{"broker", "session_expiry"}, "must be greater than 0")
	}
	v.filters(path{"broker", "anonymous", "read"}, "broker.anonymous.read", b.Anonymous.Read)
	v.filters(path{"broker", "anonymous", "write"}, "broker.anonymous.write", b.Anonymous.Write)
	seen := map[string]int{}
	for i, u := range b.Users {
		p := path{"broker", "user", index(i)}
		v.passwordUser(p, "broker.user", u.Name, u.PasswordHash, seen, i)
		v.filters(p.with("read"), "broker.user "+quote(u.Name)+" read", u.Read)
		v.filters(p.with("write"), "broker.user "+quote(u.Name)+" write", u.Write)
	}
	v.flat()
}

func quote(s string) string { return `"` + s + `"` }

// filters checks a list of MQTT topic filters.
func (v *validator) filters(p path, what string, fs []string) {
	for _, f := range fs {
		if !broker.ValidFilter(f) {
			v.add(p, nil, nil, "%s: %q is not a topic filter ('+' and '#' only as whole levels, '#' last)", what, f)
		}
	}
}

// flat checks [broker.flat] and the flat_qos keys of devices and tags.
func (v *validator) flat() {
	f := v.c.Broker.Flat
	if f.QoS < 0 || f.QoS > 2 {
		v.top(path{"broker", "flat", "qos"}, "must be 0, 1 or 2, not %d", f.QoS)
	}
	if strings.ContainsAny(f.Prefix, "+#") || !utf8.ValidString(f.Prefix) {
		v.top(path{"broker", "flat", "prefix"}, "%q must be UTF-8 without '+' or '#'", f.Prefix)
	}
	if !strings.Contains(f.Template, "{tag}") || strings.ContainsAny(f.Template, "+#") {
		v.top(path{"broker", "flat", "template"}, "%q must contain {tag} and no '+' or '#'", f.Template)
	}
	if f.Enabled && strings.HasPrefix(strings.ReplaceAll(f.Template, "{prefix}", f.Prefix), "spBv1.0") {
		v.top(path{"broker", "flat", "template"}, "must not publish under spBv1.0/ (the Sparkplug namespace)")
	}
	for i := range v.c.Devices {
		d := &v.c.Devices[i]
		if d.FlatQoS != nil && (*d.FlatQoS < 0 || *d.FlatQoS > 2) {
			v.add(d.path.with("flat_qos"), d, nil, "flat_qos must be 0, 1 or 2, not %d", *d.FlatQoS)
		}
		for j := range d.Tags {
			t := &d.Tags[j]
			if t.FlatQoS != nil && (*t.FlatQoS < 0 || *t.FlatQoS > 2) {
				v.add(t.path.with("flat_qos"), d, t, "flat_qos must be 0, 1 or 2, not %d", *t.FlatQoS)
			}
		}
	}
}
