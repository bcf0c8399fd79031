package modbus

import (
	"testing"
	"time"
)

// Node Control/Scan Rate: SetScanRate overrides every device's poll interval while running,
// and 0 restores the configured one.
func TestSetScanRate(t *testing.T) {
	srv := newTestServer(t, 1)
	dev := tcpDevice("plc", srv, 1, TagOptions{Name: "a", Address: "40001"})
	dev.PollInterval = time.Hour
	d, _ := startDriver(t, Options{Devices: []DeviceOptions{dev}})
	eventually(t, 5*time.Second, "first poll", func() bool { return statusOf(d, "plc").Requests >= 1 })
	before := statusOf(d, "plc").Requests
	d.SetScanRate(20 * time.Millisecond)
	// An hourly device that polls five more times has taken the new rate at once.
	eventually(t, 5*time.Second, "polls at the new rate", func() bool { return statusOf(d, "plc").Requests >= before+5 })
	d.SetScanRate(0)
	if got := d.devices[0].pollInterval(); got != time.Hour {
		t.Fatalf("poll interval after SetScanRate(0) = %v, want the configured 1h", got)
	}
}

func TestScaleRawDecimal(t *testing.T) {
	cases := []struct {
		raw, scale, offset, want float64
	}{
		{1128, 0.1, 0, 112.8},
		{1311, 0.01, 0, 13.11},
		{-5, 0.1, 0, -0.5},
		{7, 0.001, 1, 1.007},
		{3, 2.5, -1, 6.5},
		{3, 1.0 / 3, 0, 1},
		{10, 0.3, 0, 10 * 0.3},
	}
	for _, c := range cases {
		if got := scaleRaw(c.raw, c.scale, c.offset); got != c.want {
			t.Errorf("scaleRaw(%v, %v, %v) = %v, want %v", c.raw, c.scale, c.offset, got, c.want)
		}
	}
}
