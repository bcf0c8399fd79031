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
	done chan struct{} // closed when cmd has exited
	log  *os.File
}

// RequireMosquitto returns the path of Debian's mosquitto, or fails or skips t (see Missing).
func RequireMosquitto(t testing.TB) string {
	t.Helper()
	if bin, err := exec.LookPath("mosquitto"); err == nil {
		return bin
	}
	if _, err := os.Stat("/usr/sbin/mosquitto"); err != nil {
		Missing(t, "mosquitto")
	}
	return "/usr/sbin/mosquitto"
}

// StartMosquitto starts mosquitto on a free loopback port, without persistence and with
// anonymous clients allowed unless extra (more mosquitto.conf lines, after the listener: TLS
// files, "allow_anonymous false", limits) says otherwise. It is killed when the test ends.
func StartMosquitto(t testing.TB, extra ...string) *Mosquitto {
	t.Helper()
	return startMosquitto(t, FreePort(t), extra)
}

// StartMosquittoAt is StartMosquitto on addr (a loopback host:port from FreePort).
func StartMosquittoAt(t testing.TB, addr string, extra ...string) *Mosquitto {
	t.Helper()
	return startMosquitto(t, addr, extra)
}

// StartPersistentMosquitto starts mosquitto with persistence on disk and QoS 0 messages queued
// for disconnected persistent sessions, so that a subscriber with clean session = false sees
// everything published while it reconnects after a restart. Stop it with Terminate so that it
// writes its database.
func StartPersistentMosquitto(t testing.TB) *Mosquitto {
	t.Helper()
	// As root, mosquitto drops to the user "mosquitto", who cannot write to a test's
	// temporary folder: "user root" keeps it root (the line is ignored for other users).
	return startMosquitto(t, FreePort(t), []string{"persistence true",
		"persistence_location " + t.TempDir() + "/", "queue_qos0_messages true",
		"max_queued_messages 0", "user root"})
}

func startMosquitto(t testing.TB, addr string, extra []string) *Mosquitto {
	t.Helper()
	bin := RequireMosquitto(t)
	dir := t.TempDir()
	m := &Mosquitto{t: t, bin: bin, Addr: addr, conf: filepath.Join(dir, "mosquitto.conf")}
	_, port, _ := net.SplitHostPort(addr)
	lines := append([]string{"listener " + port + " 127.0.0.1"}, extra...)
	all := strings.Join(extra, "\n")
	if !strings.Contains(all, "persistence ") {
		lines = append(lines, "persistence false")
	}
	if !strings.Contains(all, "allow_anonymous") {
		lines = append(lines, "allow_anonymous true")
	}
	// Without it mosquitto's small writes to a subscriber can wait ~40 ms for a delayed ACK
	// (Nagle), which latency measurements would charge to the gateway.
	lines = append(lines, "set_tcp_nodelay true")
	if err := os.WriteFile(m.conf, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
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
	m.cmd, m.done = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(m.done)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", m.Addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-m.done:
			b, _ := os.ReadFile(m.log.Name())
			m.t.Fatalf("mosquitto exited at start:\n%s", b)
		default:
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
	<-m.done
	m.cmd = nil
}

// Terminate stops mosquitto with SIGTERM, which makes it save its database, and waits.
func (m *Mosquitto) Terminate() {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	<-m.done
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
