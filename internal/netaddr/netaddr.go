// Package netaddr answers questions about listen addresses that the broker, the status page
// and the configuration all ask, so that they answer them alike.
package netaddr

import (
	"net"
	"strings"
)

// Loopback reports whether the listen address addr (host:port) is on loopback only:
// "127.0.0.1:1883", "[::1]:1883", "localhost:1883". ":1883" and "0.0.0.0:1883" listen on every
// interface; an address that is not host:port is not loopback.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
