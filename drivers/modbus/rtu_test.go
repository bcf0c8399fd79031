package modbus

import (
	"testing"
	"time"

	"github.com/wellgate/wellgate/drivers"
)

func rtuDevice(name, port string, unit int, tags ...TagOptions) DeviceOptions {
	return DeviceOptions{
		Name: name, Serial: &SerialOptions{Port: port, Baud: 19200, DataBits: 8, Parity: "N", StopBits: 1},
		UnitID: unit, PollInterval: 50 * time.Millisecond, Timeout: 150 * time.Millisecond,
		ByteOrder: "ABCD", MaxRegisters: maxReadRegisters, MaxBits: maxReadBits, Tags: tags,
		WriteSingleRegister: DefaultWriteSingleRegister, WriteCoil: DefaultWriteCoil, MaxBackoff: DefaultMaxBackoff,
	}
}

// TestRTU polls two slaves on one bus over a real pty pair, then makes one silent (timeouts)
// and the other answer with a bad CRC, and checks that each fault costs only its own tags and
// that both come back.
func TestRTU(t *testing.T) {
	a, b := ptyPair(t)
	slave := newRTUSlave(t, b, 1, 2)
	slave.with(1, func(bk *bank, _ *rtuSlave) {
		bk.holding[0], bk.holding[1], bk.input[3], bk.coils[2] = 0x4049, 0x0FDB, 0xFFFE, true
	})
	slave.with(2, func(bk *bank, _ *rtuSlave) { bk.holding[10] = 77; bk.discrete[0] = true })
	tags1 := []TagOptions{{Name: "pi", Address: "40001", Type: "float32"}, {Name: "neg", Address: "30004", Type: "int16"},
		{Name: "coil", Address: "00003"}, {Name: "sp", Address: "hr:20", Type: "uint16", Writable: true}}
	tags2 := []TagOptions{{Name: "v", Address: "40011"}, {Name: "di", Address: "10001"}}
	d, sink := startDriver(t, Options{Devices: []DeviceOptions{
		rtuDevice("s1", a, 1, tags1...), rtuDevice("s2", a, 2, tags2...),
	}})
	eventually(t, 5*time.Second, "both up", func() bool { return sink.lastState("s1") == 1 && sink.lastState("s2") == 1 })
	eventually(t, time.Second, "pi", good(sink, "s1", "pi", drivers.FloatValue(3.1415927)))
	eventually(t, time.Second, "neg", good(sink, "s1", "neg", drivers.IntValue(drivers.Int16, -2)))
	eventually(t, time.Second, "coil", good(sink, "s1", "coil", drivers.BoolValue(true)))
	eventually(t, time.Second, "v", good(sink, "s2", "v", drivers.UintValue(drivers.UInt16, 77)))
	eventually(t, time.Second, "di", good(sink, "s2", "di", drivers.BoolValue(true)))

	got, err := d.Write(t.Context(), "s1", "sp", drivers.UintValue(drivers.UInt16, 1234))
	if err != nil || !got.Equal(drivers.UintValue(drivers.UInt16, 1234)) {
		t.Fatalf("write over RTU: %v, %v", got, err)
	}

	// s2 goes silent: timeouts, down; s1 keeps being polled.
	slave.with(2, func(_ *bank, s *rtuSlave) { s.silent[2] = true })
	eventually(t, 5*time.Second, "s2 down", func() bool { return sink.lastState("s2") == -1 })
	n1 := slave.count(1)
	eventually(t, 5*time.Second, "s1 still polled", func() bool { return slave.count(1) >= n1+10 })
	if k := statusOf(d, "s2").ErrorsByKind["timeout"]; k < 2 {
		t.Errorf("s2 timeouts %d", k)
	}
	slave.with(2, func(bk *bank, s *rtuSlave) { s.silent[2] = false; bk.holding[10] = 78 })
	eventually(t, 10*time.Second, "s2 back", good(sink, "s2", "v", drivers.UintValue(drivers.UInt16, 78)))

	// s1 answers with a bad CRC: CRC errors, bad quality; s2 unaffected.
	slave.with(1, func(_ *bank, s *rtuSlave) { s.badCRC[1] = true })
	eventually(t, 5*time.Second, "s1 down", func() bool { return sink.lastState("s1") == -1 })
	if k := statusOf(d, "s1").ErrorsByKind["crc"]; k < 2 {
		t.Errorf("s1 crc errors %d: %v", k, statusOf(d, "s1").ErrorsByKind)
	}
	eventually(t, time.Second, "s1 bad", isBad(sink, "s1", "pi"))
	slave.with(2, func(bk *bank, _ *rtuSlave) { bk.holding[10] = 79 })
	eventually(t, 5*time.Second, "s2 still good", good(sink, "s2", "v", drivers.UintValue(drivers.UInt16, 79)))
	slave.with(1, func(_ *bank, s *rtuSlave) { s.badCRC[1] = false })
	eventually(t, 10*time.Second, "s1 back", func() bool { return sink.lastState("s1") == 1 })
}
