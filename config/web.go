package config

import (
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// web checks the status page's keys.
func (v *validator) web() {
	w := v.c.Web
	if !w.Enabled {
		return
	}
	v.listen(path{"web", "listen"}, w.Listen)
	if w.MaxConnections < 1 {
		v.top(path{"web", "max_connections"}, "must be at least 1, not %d", w.MaxConnections)
	}
	if (w.TLSCertFile == "") != (w.TLSKeyFile == "") {
		p := path{"web", "tls_cert_file"}
		if w.TLSCertFile == "" {
			p = path{"web", "tls_key_file"}
		}
		v.add(p, nil, nil, "web.tls_cert_file and web.tls_key_file go together: set both or neither")
	}
	seen := map[string]int{}
	for i, u := range w.Users {
		p := path{"web", "user", index(i)}
		v.passwordUser(p, "web.user", u.Name, u.PasswordHash, seen, i)
	}
}

// passwordUser checks one user of the page or the broker: a name, used once, and a bcrypt
// hash. seen maps names already seen to their index.
func (v *validator) passwordUser(p path, what, name, hash string, seen map[string]int, i int) {
	switch {
	case name == "":
		v.add(p.with("name"), nil, nil, "%s name is required", what)
	case strings.ContainsAny(name, ":") || strings.TrimSpace(name) != name:
		v.add(p.with("name"), nil, nil, "%s name %q must not contain ':' or start or end with spaces", what, name)
	default:
		if first, dup := seen[name]; dup {
			v.add(p.with("name"), nil, nil, "%s %q is defined twice (first as number %d)", what, name, first+1)
		}
		seen[name] = i
	}
	if msg := checkBcrypt(hash); msg != "" {
		v.add(p.with("password_hash"), nil, nil, "%s %q password_hash %s", what, name, msg)
	}
}

// checkBcrypt says what is wrong with a bcrypt hash, or "".
func checkBcrypt(h string) string {
	if h == "" {
		return "is required: put the hash `wellgate passwd` prints (never the password itself)"
	}
	if _, err := bcrypt.Cost([]byte(h)); err != nil {
		return "is not a bcrypt hash such as \"$2a$10$…\" (`wellgate passwd` prints one)"
	}
	return ""
}
