// Package peers starts the independent test peers (Debian's mosquitto) and finds the npm
// ones, for tests. A missing peer fails the test when CI or WELLGATE_REQUIRE_PEERS is set (so
// that CI never counts a skipped interop test as passed), and skips it otherwise.
package peers

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Required reports whether missing peers are failures rather than skips.
func Required() bool { return os.Getenv("CI") != "" || os.Getenv("WELLGATE_REQUIRE_PEERS") != "" }

// Missing fails or skips t because a peer is not installed.
func Missing(t testing.TB, what string) {
	t.Helper()
	msg := fmt.Sprintf("%s is not installed: run `make test` (scripts/install-peers.sh installs it)", what)
	if Required() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// FreePort returns a loopback host:port that was free a moment ago.
func FreePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Mosquitto is a mosquitto broker run as a child process on a loopback port.
type Mosquitto struct {
	t    testing.TB
	bin  string
	conf string
	Addr string // host:port
	cmd  *exec.Cmd
	log  *os.File
}

// StartMosquitto starts mosquitto on a free loopback port, without persistence.
func StartMosquitto(t testing.TB) *Mosquitto { return startMosquitto(t, "", false) }

// StartMosquittoAt starts mosquitto on addr (a loopback host:port from FreePort).
func StartMosquittoAt(t testing.TB, addr string) *Mosquitto { return startMosquitto(t, addr, false) }

// StartPersistentMosquitto starts mosquitto with persistence on disk and QoS 0 messages queued
// for disconnected persistent sessions, so that a subscriber with clean session = false sees
// everything published while it reconnects after a restart. Stop it with Terminate so that it
// writes its database.
func StartPersistentMosquitto(t testing.TB) *Mosquitto { return startMosquitto(t, "", true) }

func startMosquitto(t testing.TB, addr string, persist bool) *Mosquitto {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/mosquitto"); serr != nil {
			Missing(t, "mosquitto")
		}
		bin = "/usr/sbin/mosquitto"
	}
	dir := t.TempDir()
	if addr == "" {
		addr = FreePort(t)
	}
	m := &Mosquitto{t: t, bin: bin, Addr: addr, conf: filepath.Join(dir, "mosquitto.conf")}
	_, port, _ := net.SplitHostPort(m.Addr)
	conf := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n", port)
	if persist {
		// As root, mosquitto drops to the user "mosquitto", who cannot write to a test's
		// temporary folder: "user root" keeps it root (the line is ignored for other users).
		conf = fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\npersistence true\n"+
			"persistence_location %s/\nqueue_qos0_messages true\nmax_queued_messages 0\nuser root\n", port, dir)
	}
	if err := os.WriteFile(m.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	lf, err := os.Create(filepath.Join(dir, "mosquitto.log"))
	if err != nil {
		t.Fatal(err)
	}
	m.log = lf
	m.Start()
	t.Cleanup(m.Stop)
	return m
}

// URL is the broker's tcp:// URL.
func (m *Mosquitto) URL() string { return "tcp://" + m.Addr }

// Start starts (or restarts) mosquitto on its port and waits until it accepts connections.
func (m *Mosquitto) Start() {
	m.t.Helper()
	cmd := exec.Command(m.bin, "-c", m.conf)
	cmd.Stdout, cmd.Stderr = m.log, m.log
	if err := cmd.Start(); err != nil {
		m.t.Fatalf("start mosquitto: %v", err)
	}
	m.cmd = cmd
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", m.Addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(m.log.Name())
			m.t.Fatalf("mosquitto did not listen on %s: %v\n%s", m.Addr, err, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills mosquitto (an outage, as far as its clients can tell) and waits for it to exit.
func (m *Mosquitto) Stop() {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGKILL)
	_ = m.cmd.Wait()
	m.cmd = nil
}

// Terminate stops mosquitto with SIGTERM, which makes it save its database, and waits.
func (m *Mosquitto) Terminate() {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	_ = m.cmd.Wait()
	m.cmd = nil
}

// NodeModules is the folder holding the npm peers (sparkplug-payload, mqtt): $WELLGATE_PEERS
// /node_modules, or .peers/node_modules at the module root found from the working directory.
// It fails or skips t when they are not installed or node is missing.
func NodeModules(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		Missing(t, "node")
	}
	root := os.Getenv("WELLGATE_PEERS")
	if root == "" {
		dir, _ := os.Getwd()
		for dir != "/" && dir != "." {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				root = filepath.Join(dir, ".peers")
				break
			}
			dir = filepath.Dir(dir)
		}
	}
	nm := filepath.Join(root, "node_modules")
	if _, err := os.Stat(filepath.Join(nm, "sparkplug-payload", "package.json")); err != nil {
		Missing(t, "npm package sparkplug-payload (in "+strings.TrimSuffix(nm, "/node_modules")+")")
	}
	return nm
}
