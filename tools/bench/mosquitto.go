package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// mosquitto is Debian's broker as the upstream (Ignition's place), on a loopback port, run
// as scripts/install-peers.sh installs it and internal/peers starts it for tests.
type mosquitto struct {
	bin, dir, conf, addr string
	p                    *proc
}

func newMosquitto(dir string) (*mosquitto, error) {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/mosquitto"); serr != nil {
			return nil, fmt.Errorf("mosquitto is not installed (run scripts/install-peers.sh): %w", err)
		}
		bin = "/usr/sbin/mosquitto"
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	m := &mosquitto{bin: bin, dir: dir, conf: filepath.Join(dir, "mosquitto.conf"), addr: addr}
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	// Unlimited queues, so that a slow reader shows as latency, never as values mosquitto
	// dropped without saying so.
	conf := "listener " + port + " 127.0.0.1\nallow_anonymous true\npersistence false\n" +
		"max_queued_messages 0\nmax_inflight_messages 0\n"
	return m, os.WriteFile(m.conf, []byte(conf), 0o644)
}

func (m *mosquitto) url() string { return "tcp://" + m.addr }

// start starts (or starts again) mosquitto on its port and waits until it listens.
func (m *mosquitto) start() error {
	p, err := startProc(m.dir, "mosquitto", nil, m.bin, "-c", m.conf)
	if err != nil {
		return err
	}
	m.p = p
	return waitDial(m.addr, p, 10*time.Second)
}

func (m *mosquitto) stop() { m.p.kill() }
