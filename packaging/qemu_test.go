package packaging

import (
	"encoding/binary"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wellgate/wellgate/internal/procfs"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// emulators run each ARM package's binary on this machine (Debian's qemu-user-static).
var emulators = map[string]string{"arm64": "qemu-aarch64-static", "armhf": "qemu-arm-static"}

// TestARMUnderQemu takes the binary and the configuration out of the arm64 and armhf
// packages and runs them under qemu: `version`, `check` of the packaged configuration, and a
// short `demo` whose NBIRTH and DBIRTH are seen on its MQTT port. The demo's resident memory
// (of the qemu process, so emulator included) is logged.
func TestARMUnderQemu(t *testing.T) {
	gate(t)
	t.Parallel() // with the other slow ones: lintian, qemu, the install cycle
	version := baseVersion(t)
	for arch, deb := range debs(t) {
		qemu, ok := emulators[arch]
		if !ok {
			continue
		}
		t.Run(arch, func(t *testing.T) {
			t.Parallel()
			if _, err := exec.LookPath(qemu); err != nil {
				t.Fatalf("%s is not installed (scripts/install-peers.sh installs qemu-user-static)", qemu)
			}
			data := t.TempDir()
			mustRun(t, "dpkg-deb", "--extract", deb, data)
			bin := filepath.Join(data, "usr/bin/wellgate")
			out := mustRun(t, qemu, bin, "version")
			if f := strings.Fields(out); len(f) < 2 || f[1] != version {
				t.Errorf("%s wellgate version: %q, want %s", qemu, out, version)
			}
			out = mustRun(t, qemu, bin, "check", "-config", filepath.Join(data, "etc/wellgate/wellgate.toml"))
			t.Logf("%s wellgate check (packaged config): %s", qemu, strings.TrimSpace(out))
			demoUnderQemu(t, qemu, bin)
		})
	}
}

func demoUnderQemu(t *testing.T, qemu, bin string) {
	mqttAddr, webAddr := freePort(t), freePort(t)
	cmd := exec.Command(qemu, bin, "demo", "-mqtt-listen", mqttAddr, "-web-listen", webAddr, "-data-dir", t.TempDir())
	logPath := filepath.Join(t.TempDir(), "demo.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("demo log:\n%s", b)
		}
	})

	var mu sync.Mutex
	var topics []string
	seen := make(chan string, 1000)
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + mqttAddr).SetClientID("wellgate-package-test").
		SetConnectTimeout(2 * time.Second).SetAutoReconnect(false).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			mu.Lock()
			topics = append(topics, m.Topic())
			mu.Unlock()
			select {
			case seen <- m.Topic():
			default:
			}
		})
	client := mqtt.NewClient(opts)
	start := time.Now()
	deadline := start.Add(60 * time.Second)
	for {
		tok := client.Connect()
		if tok.WaitTimeout(3*time.Second) && tok.Error() == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo's broker at %s did not accept a connection within 60s", mqttAddr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer client.Disconnect(100)
	if tok := client.Subscribe("spBv1.0/#", 0, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	// The births may have gone out before the subscription: then ask for them again with a
	// Sparkplug rebirth request (NCMD Node Control/Rebirth), as a host application does.
	var nbirth, dbirth bool
	rebirthAsked := false
	for !(nbirth && dbirth) {
		select {
		case topic := <-seen:
			parts := strings.Split(topic, "/")
			if len(parts) < 4 {
				continue
			}
			switch parts[2] {
			case "NBIRTH":
				nbirth = true
			case "DBIRTH":
				dbirth = true
			case "NDATA", "DDATA":
				if !nbirth && !rebirthAsked && time.Since(start) > 3*time.Second {
					rebirthAsked = true
					ncmd := strings.Join([]string{"spBv1.0", parts[1], "NCMD", parts[3]}, "/")
					client.Publish(ncmd, 0, false, rebirthPayload()).WaitTimeout(5 * time.Second)
				}
			}
		case <-time.After(time.Until(deadline)):
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("no NBIRTH and DBIRTH within 60s (rebirth asked: %v); topics seen: %v", rebirthAsked, topics)
		}
	}
	births := time.Since(start)
	// Resident memory over the next 5 s of polling and publishing; the most seen.
	rss := 0
	for range 10 {
		time.Sleep(500 * time.Millisecond)
		rss = max(rss, residentKiB(cmd.Process.Pid))
	}
	t.Logf("%s demo: NBIRTH and DBIRTH seen %.1fs after start (rebirth asked: %v); resident memory of the qemu process, emulator included, at most %d KiB (%.1f MiB)",
		qemu, births.Seconds(), rebirthAsked, rss, float64(rss)/1024)
}

// rebirthPayload is a Sparkplug B payload, encoded by hand (an independent encoder), with
// one metric: Node Control/Rebirth = true. Payload: timestamp (1), metrics (2). Metric:
// name (1), datatype (4, Boolean = 11), boolean_value (14).
func rebirthPayload() []byte {
	const name = "Node Control/Rebirth"
	m := []byte{0x0a, byte(len(name))}
	m = append(m, name...)
	m = append(m, 0x20, 11, 0x70, 1)
	p := []byte{0x08}
	p = binary.AppendUvarint(p, uint64(time.Now().UnixMilli()))
	p = append(p, 0x12, byte(len(m)))
	return append(p, m...)
}

func residentKiB(pid int) int {
	if kb, ok := procfs.StatusKB(pid, "VmRSS"); ok {
		return kb
	}
	return -1
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
