package opcua

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gopcua/opcua/ua"
)

// writeTOML prints a [[device]] table named o.TOML with a [[device.tag]] entry per variable
// that has a Sparkplug type; the others are listed as comments, with the reason.
func writeTOML(w io.Writer, o BrowseOptions, dev *device, fingerprint string, vars []*browsed, namespaces []string) {
	fmt.Fprintf(w, "# %d variables below %s on %s\n", len(vars), o.Root, o.Endpoint)
	fmt.Fprintln(w, "[[device]]")
	kv(w, "", "name", o.TOML)
	kv(w, "", "driver", Name)
	kv(w, "", "endpoint", o.Endpoint)
	if dev.policy != ua.SecurityPolicyURINone {
		kv(w, "", "security_policy", policyName(dev.policy))
		kv(w, "", "security_mode", modeName(dev.mode))
		kv(w, "", "server_fingerprint", fingerprint)
	}
	switch {
	case o.Username != "":
		kv(w, "", "username", o.Username)
		fmt.Fprintln(w, `password = ""  # fill in`)
	case o.UserCertificate != "":
		kv(w, "", "user_certificate", o.UserCertificate)
		kv(w, "", "user_key", o.UserKey)
	}
	used := map[string]bool{}
	for _, v := range vars {
		node := tomlNodeID(v.id, namespaces)
		st, ok := sparkplugType(v.builtin)
		switch {
		case v.array:
			fmt.Fprintf(w, "\n  # skipped %s (%s): an array of %s\n", node, strings.Join(v.path, "/"), v.dataType)
			continue
		case !ok:
			fmt.Fprintf(w, "\n  # skipped %s (%s): %s has no Sparkplug type\n", node, strings.Join(v.path, "/"), v.dataType)
			continue
		}
		fmt.Fprintln(w, "\n  [[device.tag]]")
		kv(w, "  ", "name", tagName(v.path, used))
		kv(w, "  ", "node_id", node)
		kv(w, "  ", "type", st.String())
		if v.access&byte(ua.AccessLevelTypeCurrentWrite) != 0 {
			fmt.Fprintln(w, "  writable = true")
		}
	}
}

// kv prints key = "value".
func kv(w io.Writer, indent, key, value string) {
	fmt.Fprintf(w, "%s%s = %s\n", indent, key, tomlString(value))
}

// tomlNodeID formats a node id for a tag map: with its namespace URI (stable when a server
// renumbers its namespaces) when the server says it, else with the index.
func tomlNodeID(id *ua.NodeID, namespaces []string) string {
	s := formatNodeID(id)
	ns := int(id.Namespace())
	if ns == 0 || ns >= len(namespaces) || namespaces[ns] == "" || strings.Contains(namespaces[ns], ";") {
		return s
	}
	_, ident, _ := strings.Cut(s, ";")
	return "nsu=" + namespaces[ns] + ";" + ident
}

// tagName makes a metric name from a browse path: its names joined with '/', each without the
// characters Sparkplug names may not hold; a name already used gets a number.
func tagName(path []string, used map[string]bool) string {
	parts := make([]string, len(path))
	for i, p := range path {
		p = strings.Map(func(r rune) rune {
			if r == '/' || r == '+' || r == '#' || r < ' ' {
				return '_'
			}
			return r
		}, strings.TrimSpace(p))
		if p == "" {
			p = "_"
		}
		parts[i] = p
	}
	name := strings.Join(parts, "/")
	candidate := name
	for n := 2; used[strings.ToLower(candidate)]; n++ {
		candidate = name + "_" + strconv.Itoa(n)
	}
	used[strings.ToLower(candidate)] = true
	return candidate
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == utf8.RuneError || r < ' ' || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
