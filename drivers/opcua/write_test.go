package opcua

import (
	"errors"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/wellgate/wellgate/drivers"
)

// TestWrites: a write is converted to the node's own type (the test server refuses any other
// type), its status code logged, and the value read back returned; tags that are not writable,
// values that do not fit and values outside min/max are refused with nothing written; a write
// the server refuses returns its status.
func TestWrites(t *testing.T) {
	ts := shared(t)
	lo, hi := 0.0, 100.0
	r := startDriver(t, Options{Devices: []DeviceOptions{ts.device("W", ModeSubscribe,
		TagOptions{Name: "Setpoint", NodeID: ts.add("w.sp", ua.TypeIDInt16, int16(1), true), Type: "Double", Writable: true, Min: &lo, Max: &hi},
		TagOptions{Name: "Run", NodeID: ts.add("w.run", ua.TypeIDBoolean, false, true), Writable: true, Type: "Boolean"},
		TagOptions{Name: "Label", NodeID: ts.add("w.label", ua.TypeIDString, "a", true), Writable: true, Type: "String"},
		TagOptions{Name: "When", NodeID: ts.add("w.when", ua.TypeIDDateTime, source, true), Writable: true, Type: "DateTime"},
		TagOptions{Name: "ReadOnly", NodeID: ts.add("w.ro", ua.TypeIDDouble, 1.0, true), Type: "Double"},
		TagOptions{Name: "Locked", NodeID: ts.add("w.locked", ua.TypeIDDouble, 1.0, false), Type: "Double", Writable: true},
	)}})
	r.sink.waitFor(t, 5*time.Second, "up", func() bool { return r.sink.state("W") == 1 })
	ctx := t.Context()

	got, err := r.d.Write(ctx, "W", "Setpoint", drivers.DoubleValue(42))
	if err != nil || !got.Equal(drivers.DoubleValue(42)) {
		t.Fatalf("Write Setpoint = %v, %v", got, err)
	}
	if v := ts.current("w.sp"); v != int16(42) {
		t.Fatalf("server holds %#v, want int16(42)", v)
	}
	if !r.log.contains("status=\"Good") && !r.log.contains("status=OK") && !r.log.contains("status=\"OK") {
		t.Errorf("the write's status code is not in the log:\n%s", r.log)
	}
	if got, err := r.d.Write(ctx, "W", "Run", drivers.BoolValue(true)); err != nil || !got.Bool() {
		t.Fatalf("Write Run = %v, %v", got, err)
	}
	if got, err := r.d.Write(ctx, "W", "Label", drivers.StringValue("pump 2")); err != nil || got.Str() != "pump 2" {
		t.Fatalf("Write Label = %v, %v", got, err)
	}
	when := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	if got, err := r.d.Write(ctx, "W", "When", drivers.DateTimeValue(when)); err != nil || !got.Equal(drivers.DateTimeValue(when)) {
		t.Fatalf("Write When = %v, %v", got, err)
	}
	r.sink.waitValue(t, 5*time.Second, "W", "Setpoint", drivers.Good, drivers.DoubleValue(42))

	ts.mu.Lock()
	writes := len(ts.writes)
	ts.mu.Unlock()
	for _, c := range []struct {
		tag  string
		v    drivers.Value
		want error
	}{
		{"ReadOnly", drivers.DoubleValue(2), drivers.ErrNotWritable},
		{"Setpoint", drivers.DoubleValue(101), drivers.ErrOutOfRange}, // max
		{"Setpoint", drivers.DoubleValue(1.5), drivers.ErrOutOfRange}, // an Int16 node
		{"Setpoint", drivers.DoubleValue(-1), drivers.ErrOutOfRange},  // min
		{"Run", drivers.DoubleValue(2), drivers.ErrOutOfRange},        // a Boolean node
		{"Label", drivers.DoubleValue(2), drivers.ErrOutOfRange},      // a String node
		{"Nope", drivers.DoubleValue(2), drivers.ErrUnknownTag},
	} {
		if _, err := r.d.Write(ctx, "W", c.tag, c.v); !errors.Is(err, c.want) {
			t.Errorf("Write %s %v: %v, want %v", c.tag, c.v, err, c.want)
		}
	}
	ts.mu.Lock()
	if len(ts.writes) != writes {
		t.Errorf("refused writes reached the server")
	}
	ts.mu.Unlock()
	if _, err := r.d.Write(ctx, "W", "Locked", drivers.DoubleValue(2)); !errors.Is(err, ua.StatusBadNotWritable) {
		t.Errorf("write the server refuses: %v, want BadNotWritable", err)
	}
	if !r.log.contains("BadNotWritable") {
		t.Errorf("the refused write's status is not in the log")
	}
}

// TestWriteWithoutSession: a write while the device has no session fails, writing nothing.
func TestWriteWithoutSession(t *testing.T) {
	p := newProxy(t, "127.0.0.1:1", false)
	r := startDriver(t, Options{Devices: []DeviceOptions{{Name: "Off", Endpoint: p.url(), Timeout: 200 * time.Millisecond,
		Tags: []TagOptions{{Name: "a", NodeID: "ns=1;s=a", Type: "Double", Writable: true}}}}})
	r.sink.waitFor(t, 5*time.Second, "down", func() bool { return r.sink.state("Off") == -1 })
	if _, err := r.d.Write(t.Context(), "Off", "a", drivers.DoubleValue(1)); !errors.Is(err, errNotConnected) {
		t.Fatalf("Write without a session: %v", err)
	}
}
