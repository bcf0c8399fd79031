package main

import (
	"bytes"
	"context"
	be "encoding/binary"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goburrow/modbus"

	"github.com/wellgate/wellgate/config"
)

// waitLine waits for the first line a process writes to out.
func waitLine(t *testing.T, out *syncBuffer, errb *syncBuffer) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if line, _, ok := strings.Cut(out.String(), "\n"); ok {
			return line
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ready line in 30s; stdout %q, stderr %q", out.String(), errb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSimulate runs `wellgate simulate` as the benchmarks do, a process of its own: its
// ready line, then the config it wrote passes check and names devices that answer, and
// SIGTERM stops it with status 0.
func TestSimulate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sim.toml")
	cmd := exec.Command(binary, "simulate", "-devices", "3", "-opcua", "1", "-tags", "20", "-change", "50",
		"-config", path, "-data", filepath.Join(dir, "data"), "-interval", "250ms", "-schedule", "start",
		"-broker", "off", "-upstream", "tcp://127.0.0.1:1883")
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	want := "ready 3 modbus devices, 1 opcua servers, 20 tags each; config " + path
	if line := waitLine(t, &out, &errb); line != want {
		t.Fatalf("first line %q, want %q", line, want)
	}

	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Broker.Enabled || !cfg.Web.Enabled || cfg.Web.Listen != "127.0.0.1:8080" || len(cfg.Upstream.Servers) != 1 {
		t.Errorf("broker %+v, web %+v, upstream %v", cfg.Broker.Enabled, cfg.Web, cfg.Upstream.Servers)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"check", "-config", path}, &stdout, &stderr); code != 0 {
		t.Fatalf("check: exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "ok (4 devices, 80 tags)") {
		t.Errorf("check says %q", stdout.String())
	}
	_, g, err := checkConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range g.Devices() {
		names = append(names, d.Name+" "+d.Driver)
		if d.Driver == "opcua" && !strings.HasPrefix(d.Endpoint, "opc.tcp://127.0.0.1:") {
			t.Errorf("%s endpoint %q", d.Name, d.Endpoint)
		}
	}
	if got := strings.Join(names, ", "); got != "PLC001 modbus-tcp, PLC002 modbus-tcp, PLC003 modbus-tcp, OPCUA01 opcua" {
		t.Errorf("devices %s", got)
	}
	for _, d := range cfg.Devices {
		if d.PollInterval.D() != 250*time.Millisecond || d.PollSchedule != config.ScheduleStart {
			t.Errorf("%s: poll_interval %v, poll_schedule %q", d.Name, d.PollInterval.D(), d.PollSchedule)
		}
	}

	// The Modbus address the config gives PLC002 serves its 20 registers.
	addr, _, _ := strings.Cut(g.Devices()[1].Endpoint, " ")
	if _, _, err := net.SplitHostPort(addr); err != nil {
		t.Fatalf("PLC002 endpoint %q: %v", g.Devices()[1].Endpoint, err)
	}
	h := modbus.NewTCPClientHandler(addr)
	h.Timeout = 5 * time.Second
	defer h.Close()
	b, err := modbus.NewClient(h).ReadHoldingRegisters(0, 20)
	if err != nil {
		t.Fatalf("read PLC002 at %s: %v", addr, err)
	}
	for j := range 20 {
		// Each register starts at j and has gone up by at most a few since.
		if v := be.BigEndian.Uint16(b[2*j:]); v < uint16(j) || v > uint16(j)+100 {
			t.Errorf("PLC002 register %d = %d", j, v)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExit(t, cmd, 0)
}

// TestSimulateUsageErrors: a bad flag value exits 2, naming the flag, before serving anything.
func TestSimulateUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-tags", "0"}, "-tags 0"},
		{[]string{"-tags", "10001"}, "-tags 10001"},
		{[]string{"-change", "101"}, "-change 101"},
		{[]string{"-change", "-0.5"}, "-change -0.5"},
		{[]string{"-devices", "-1"}, "-devices -1"},
		{[]string{"-schedule", "hourly"}, "-schedule"},
		{[]string{"-interval", "0s"}, "-interval"},
		{[]string{"-frobnicate"}, "-frobnicate"},
		{[]string{"extra"}, `"extra"`},
	} {
		var out, errb bytes.Buffer
		code := runContext(context.Background(), append([]string{"simulate", "-config", filepath.Join(t.TempDir(), "s.toml")}, c.args...), &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), c.want) || out.Len() != 0 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 and a message naming %s", c.args, code, out.String(), errb.String(), c.want)
		}
	}
}

// TestSimulatePortInUse: a port taken is a runtime error (exit 1) naming the port.
func TestSimulatePortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	var out, errb bytes.Buffer
	code := runContext(context.Background(), []string{"simulate", "-devices", "1", "-tags", "1",
		"-port", fmt.Sprint(port), "-config", filepath.Join(t.TempDir(), "s.toml")}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), ln.Addr().String()) || out.Len() != 0 {
		t.Errorf("exit %d, stdout %q, stderr %q; want 1 and a message naming %s", code, out.String(), errb.String(), ln.Addr())
	}
}
