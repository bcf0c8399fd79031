package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wellgate/wellgate/internal/peers"
	"github.com/wellgate/wellgate/internal/sim"
	"github.com/wellgate/wellgate/internal/sphost"
	"github.com/wellgate/wellgate/sparkplug"
)

var binary string

// TestMain builds the real binary once: the process-level tests (demo, SIGKILL) run it.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wellgate-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "wellgate")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build wellgate: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestCheckExampleConfig(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"check", "-config", "../../config.example.toml"}, &out, &errb); code != 0 {
		t.Fatalf("check config.example.toml: exit %d\n%s", code, errb.String())
	}
	if !strings.Contains(out.String(), "ok") {
		t.Errorf("check output %q", out.String())
	}
}

func TestCheckRefusesBadConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.toml")
	src := "[sparkplug]\ngroup_id = \"G\"\nedge_node_id = \"E\"\n\n[[device]]\nname = \"RTU\"\ndriver = \"modbus-tcp\"\naddress = \"127.0.0.1:502\"\n\n  [[device.tag]]\n  name = \"Level\"\n  address = \"40001\"\n  type = \"float23\"\n"
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run([]string{"check", "-config", path}, &out, &errb)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %q", code, errb.String())
	}
	msg := errb.String()
	for _, want := range []string{path + ":10", `device "RTU"`, `tag "Level"`, "float23"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
}

func TestVersionAndUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "wellgate ") {
		t.Errorf("version: exit %d, %q", code, out.String())
	}
	if code := run([]string{"frobnicate"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Errorf("unknown command: exit %d, %q", code, errb.String())
	}
}

// startProcess runs the wellgate binary and kills it at the end of the test.
func startProcess(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(binary, args...)
	logf, err := os.Create(filepath.Join(t.TempDir(), "wellgate.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("wellgate log:\n%s", b)
		}
	})
	return cmd
}

// TestDemo is `make run`: the demo's tags come up good on the status page's JSON and its
// Sparkplug traffic is on the embedded broker.
func TestDemo(t *testing.T) {
	mqttAddr, webAddr := peers.FreePort(t), peers.FreePort(t)
	startProcess(t, "demo", "-mqtt-listen", mqttAddr, "-web-listen", webAddr, "-data-dir", t.TempDir())

	deadline := time.Now().Add(20 * time.Second)
	var tags []struct {
		Tag     string `json:"tag"`
		Quality string `json:"quality"`
		Value   any    `json:"value"`
	}
	for {
		tags = tags[:0]
		resp, err := http.Get("http://" + webAddr + "/api/tags")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&tags)
			resp.Body.Close()
		}
		good := 0
		for _, tg := range tags {
			if tg.Quality == "good" && tg.Value != nil {
				good++
			}
		}
		if err == nil && len(tags) > 0 && good == len(tags) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo tags not all good after 20s: err %v, tags %+v", err, tags)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(tags) < 10 {
		t.Errorf("demo serves %d tags, want the whole simulated site", len(tags))
	}

	resp, err := http.Get("http://" + webAddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	page := new(bytes.Buffer)
	_, _ = page.ReadFrom(resp.Body)
	resp.Body.Close()
	if !strings.Contains(page.String(), "Wellhead/Tubing Pressure") || !strings.Contains(page.String(), "good") {
		t.Errorf("status page does not list the tags:\n%.2000s", page.String())
	}

	host := sphost.Connect(t, "tcp://"+mqttAddr)
	host.Wait(10*time.Second, "DDATA from the demo", func(m sphost.Message) bool {
		return m.Topic.Type == sparkplug.DDATA && m.Topic.Device == "Wellhead RTU"
	})
}

func bdSeqOf(t *testing.T, p *sparkplug.Payload) uint64 {
	t.Helper()
	for _, m := range p.Metrics {
		if m.Name == "bdSeq" {
			return m.Value.Bits
		}
	}
	t.Fatal("no bdSeq metric")
	return 0
}

// TestUpstreamWillOnKill: with Debian's mosquitto upstream, NBIRTH/DBIRTH/DDATA arrive there;
// SIGKILL makes mosquitto deliver the NDEATH will carrying the NBIRTH's bdSeq.
func TestUpstreamWillOnKill(t *testing.T) {
	mq := peers.StartMosquitto(t)
	host := sphost.Connect(t, mq.URL())
	gw := startProcess(t, "run", "-config", upstreamConfig(t, t.TempDir(), "PAD-09", mq.URL(), demoDevice(t)))

	nbirth := host.Wait(20*time.Second, "NBIRTH upstream", func(m sphost.Message) bool {
		return m.Topic.Type == sparkplug.NBIRTH && m.Topic.EdgeNode == "PAD-09"
	})
	host.Wait(10*time.Second, "DBIRTH upstream", func(m sphost.Message) bool { return m.Topic.Type == sparkplug.DBIRTH })
	host.Wait(10*time.Second, "DDATA upstream", func(m sphost.Message) bool { return m.Topic.Type == sparkplug.DDATA })
	if nbirth.Retain {
		t.Error("NBIRTH retained")
	}

	if err := gw.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	death := host.Wait(20*time.Second, "NDEATH will after SIGKILL", func(m sphost.Message) bool {
		return m.Topic.Type == sparkplug.NDEATH && m.Topic.EdgeNode == "PAD-09"
	})
	if got, want := bdSeqOf(t, death.Payload), bdSeqOf(t, nbirth.Payload); got != want {
		t.Errorf("[payloads-ndeath-bdseq] NDEATH bdSeq %d, NBIRTH bdSeq %d", got, want)
	}
	if death.Retain {
		t.Error("[payloads-ndeath-will-message-retain] NDEATH retained")
	}
	host.Verify(t, "Upstream Test", "PAD-09", sphost.Expect{Aliases: true, FromStart: true, Devices: []string{"Wellhead RTU"}})
}

// upstreamConfig writes a gateway config with mosquitto upstream and the device section
// devices into dir.
func upstreamConfig(t *testing.T, dir, edge, url, devices string) string {
	t.Helper()
	cfg := fmt.Sprintf(`
[gateway]
data_dir = %q
[sparkplug]
group_id = "Upstream Test"
edge_node_id = %q
[broker]
enabled = false
[web]
enabled = false
[upstream]
servers = [%q]
keepalive = "2s"
`, filepath.Join(dir, "data"), edge, url)
	path := filepath.Join(dir, "wellgate.toml")
	if err := os.WriteFile(path, []byte(cfg+devices), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// SIGTERM: NDEATH (same bdSeq) before the disconnect, exit 0; the next start's bdSeq is +1.
func TestSigtermDeathAndRestart(t *testing.T) {
	mq := peers.StartMosquitto(t)
	host := sphost.Connect(t, mq.URL())
	dir := t.TempDir()
	path := upstreamConfig(t, dir, "PAD-10", mq.URL(), demoDevice(t))
	isNode := func(typ sparkplug.MessageType) func(m sphost.Message) bool {
		return func(m sphost.Message) bool { return m.Topic.Type == typ && m.Topic.EdgeNode == "PAD-10" }
	}

	gw := startProcess(t, "run", "-config", path)
	nb1, i := host.WaitFrom(0, 20*time.Second, "first NBIRTH", isNode(sparkplug.NBIRTH))
	host.WaitFrom(i, 10*time.Second, "DDATA", isNode(sparkplug.DDATA))
	if err := gw.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	death, j := host.WaitFrom(i, 20*time.Second, "NDEATH on SIGTERM", isNode(sparkplug.NDEATH))
	if got, want := bdSeqOf(t, death.Payload), bdSeqOf(t, nb1.Payload); got != want {
		t.Errorf("NDEATH bdSeq %d, NBIRTH bdSeq %d", got, want)
	}
	waitExit(t, gw, 0)

	startProcess(t, "run", "-config", path)
	nb2, _ := host.WaitFrom(j, 20*time.Second, "NBIRTH after restart", isNode(sparkplug.NBIRTH))
	if got, want := bdSeqOf(t, nb2.Payload), (bdSeqOf(t, nb1.Payload)+1)%256; got != want {
		t.Errorf("bdSeq after restart %d, want %d", got, want)
	}
	host.Verify(t, "Upstream Test", "PAD-10", sphost.Expect{Aliases: true, FromStart: true})
}

// waitExit waits for the process to exit with code.
func waitExit(t *testing.T, cmd *exec.Cmd, code int) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		got := 0
		if ee, ok := err.(*exec.ExitError); ok {
			got = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("wait: %v", err)
		}
		if got != code {
			t.Fatalf("exit code %d, want %d", got, code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("gateway did not exit within 20s of SIGTERM")
	}
}

// demoDevice starts the simulated wellsite in the test process and returns a device section
// that polls it fast.
func demoDevice(t *testing.T) string {
	t.Helper()
	site, err := sim.Start("127.0.0.1:0", 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = site.Close() })
	return fmt.Sprintf(`
[[device]]
name = "Wellhead RTU"
driver = "modbus-tcp"
address = %q
poll_interval = "100ms"
  [[device.tag]]
  name = "Wellhead/Tubing Pressure"
  address = "30001"
  type = "float32"
  [[device.tag]]
  name = "Separator/Level"
  address = "40001"
  type = "uint16"
`, site.Addr())
}

// Power loss during a WAN outage: the gateway is SIGKILLed while it queues, restarted on the
// same data dir, and the link restored: every value it polled before the kill (older than one
// group commit) reaches the host as historical DDATA, in order.
func TestKillDuringOutageLosesNothing(t *testing.T) {
	p := &peers.PLC{}
	plcAddr := peers.StartPLC(t, p)
	upAddr := peers.FreePort(t) // nothing listens there yet: the outage
	path := upstreamConfig(t, t.TempDir(), "PAD-11", "tcp://"+upAddr, fmt.Sprintf(`
[[device]]
name = "PLC1"
driver = "modbus-tcp"
address = %q
poll_interval = "50ms"
  [[device.tag]]
  name = "Counter"
  address = "40001"
  type = "uint16"
`, plcAddr))
	gw := startProcess(t, "run", "-config", path)
	const n = 12
	for v := uint16(1); v <= n; v++ {
		p.Set(func(p *peers.PLC) { p.Holding[0] = v })
		time.Sleep(200 * time.Millisecond) // several polls see each value
	}
	time.Sleep(600 * time.Millisecond) // past the 200 ms group commit
	if err := gw.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = gw.Wait()

	mq := peers.StartMosquittoAt(t, upAddr)
	host := sphost.Connect(t, mq.URL())
	startProcess(t, "run", "-config", path)
	var hist []uint64
	host.Wait(30*time.Second, "every value polled before the kill, historical", func(sphost.Message) bool {
		hist = hist[:0]
		for _, m := range host.Messages() {
			if m.Topic.Type != sparkplug.DDATA || m.Topic.EdgeNode != "PAD-11" {
				continue
			}
			for _, mm := range m.Payload.Metrics {
				if mm.IsHistorical {
					hist = append(hist, mm.Value.Bits)
				}
			}
		}
		want := 0
		for _, h := range hist {
			if want < n && h == uint64(want+1) {
				want++
			}
		}
		return want == n
	})
	host.Verify(t, "Upstream Test", "PAD-11", sphost.Expect{Aliases: true, FromStart: true})
}
