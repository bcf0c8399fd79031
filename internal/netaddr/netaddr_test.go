package netaddr

import "testing"

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:1883": true, "[::1]:1883": true, "localhost:8080": true, "LocalHost:1": true,
		"127.0.0.2:1": true, ":1883": false, "0.0.0.0:1883": false, "[::]:1": false,
		"10.0.0.5:502": false, "localhost": false, "": false,
	} {
		if got := Loopback(addr); got != want {
			t.Errorf("Loopback(%q) = %v, want %v", addr, got, want)
		}
	}
}
