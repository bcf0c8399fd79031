package sim

import (
	"math"
	"testing"
	"time"

	"github.com/goburrow/modbus"
)

func TestSiteServesMovingValues(t *testing.T) {
	s, err := Start("127.0.0.1:0", 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h := modbus.NewTCPClientHandler(s.Addr())
	h.Timeout = 2 * time.Second
	if err := h.Connect(); err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	c := modbus.NewClient(h)

	b, err := c.ReadInputRegisters(irTubingPressure, 2)
	if err != nil {
		t.Fatal(err)
	}
	p := math.Float32frombits(uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]))
	if p < 700 || p > 1000 {
		t.Errorf("tubing pressure %v psi: not a flowing well's", p)
	}

	first, err := c.ReadHoldingRegisters(hrSepLevel, 1)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		now, err := c.ReadHoldingRegisters(hrSepLevel, 1)
		if err != nil {
			t.Fatal(err)
		}
		if now[0] != first[0] || now[1] != first[1] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("separator level did not move")
		}
		time.Sleep(10 * time.Millisecond)
	}

	if _, err := c.WriteSingleRegister(hrChokeSetpoint, 101); err == nil {
		t.Error("choke setpoint 101 % accepted")
	}
	if _, err := c.WriteSingleRegister(hrChokeSetpoint, 55); err != nil {
		t.Fatal(err)
	}
	got, _ := c.ReadHoldingRegisters(hrChokeSetpoint, 1)
	if got[1] != 55 {
		t.Errorf("choke setpoint read back %d", got[1])
	}
	if _, err := c.ReadHoldingRegisters(numRegisters-1, 2); err == nil {
		t.Error("read past the register map answered")
	}
}

func TestWriteDemoConfigQuotes(t *testing.T) {
	dir := t.TempDir() + `/a "quoted" dir`
	path, err := WriteDemoConfig(DemoConfig{DataDir: dir, MQTTListen: "127.0.0.1:1", WebListen: "127.0.0.1:2", ModbusAddr: "127.0.0.1:3"})
	if err != nil {
		t.Fatal(err)
	}
	if path != dir+"/demo.toml" {
		t.Errorf("path %q", path)
	}
}

func TestStartHook(t *testing.T) {
	var got []*Site
	restore := SetStartHook(func(s *Site) { got = append(got, s) })
	s, err := Start("127.0.0.1:0", time.Second)
	if err != nil {
		restore()
		t.Fatal(err)
	}
	defer s.Close()
	restore()
	if len(got) != 1 || got[0] != s {
		t.Fatalf("hook saw %v, want the started site %p", got, s)
	}
	s2, err := Start("127.0.0.1:0", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if len(got) != 1 {
		t.Error("hook still called after restore")
	}
}
