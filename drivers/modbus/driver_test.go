package modbus

import (
	"testing"
	"time"

	"github.com/wellgate/wellgate/drivers"
)

func TestPollTCPBasic(t *testing.T) {
	srv := newTestServer(t, 1)
	srv.with(1, func(b *bank) {
		b.holding[0] = 1234
		b.holding[1], b.holding[2] = 0x4049, 0x0FDB // float32 pi
		b.coils[4] = true
		b.input[9] = 0xFFFF
		b.discrete[0] = true
	})
	cfg := Options{Devices: []DeviceOptions{tcpDevice("plc", srv, 1,
		TagOptions{Name: "a", Address: "40001"},
		TagOptions{Name: "pi", Address: "40002", Type: "float32"},
		TagOptions{Name: "c", Address: "00005"},
		TagOptions{Name: "i", Address: "ir:9", Type: "int16"},
		TagOptions{Name: "d", Address: "10001"},
	)}}
	_, sink := startDriver(t, cfg)
	eventually(t, 5*time.Second, "device up", func() bool { return sink.lastState("plc") == 1 })
	want := map[string]drivers.Value{
		"a": drivers.UintValue(drivers.UInt16, 1234), "pi": drivers.FloatValue(3.1415927),
		"c": drivers.BoolValue(true), "i": drivers.IntValue(drivers.Int16, -1), "d": drivers.BoolValue(true),
	}
	for name, v := range want {
		s, _ := sink.sample("plc", name)
		if s.Quality != drivers.Good || !s.Value.Equal(v) {
			t.Errorf("%s = %v (%v), want %v", name, s.Value, s.Quality, v)
		}
	}
}
