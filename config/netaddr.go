package config

import (
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// checkPort returns what is wrong with a port number, or "". Port 0 is allowed only when zero is.
func checkPort(port string, zero bool) string {
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 || (n == 0 && !zero) || strings.HasPrefix(port, "+") {
		return "port " + strconv.Quote(port) + " is not a number from 1 to 65535"
	}
	return ""
}

// listen checks a listener address: host:port, where the host may be empty (every interface)
// and port 0 picks a free port.
func (v *validator) listen(p path, addr string) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.top(p, "%q must be host:port, such as \"127.0.0.1:1883\" or \":1883\"", addr)
		return
	}
	if msg := checkPort(port, true); msg != "" {
		v.top(p, "%q: %s", addr, msg)
	}
}

var serverSchemes = []string{"tcp", "ssl", "tls", "mqtt", "mqtts", "ws", "wss"}

// checkServerURL returns what is wrong with an upstream server URL, or "".
func checkServerURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" {
		return "not a URL such as \"tcp://broker.example.com:1883\""
	}
	if !slices.Contains(serverSchemes, u.Scheme) {
		return "scheme must be one of " + strings.Join(serverSchemes, ", ")
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" {
		return "must name host:port, such as \"" + u.Scheme + "://broker.example.com:1883\""
	}
	if msg := checkPort(port, false); msg != "" {
		return msg
	}
	if u.Path != "" && u.Path != "/" && u.Scheme != "ws" && u.Scheme != "wss" {
		return "a path is allowed only with ws:// and wss://"
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "must not have a query or fragment"
	}
	return ""
}
