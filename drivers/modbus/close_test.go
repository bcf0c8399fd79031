package modbus

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wellgate/wellgate/drivers"
)

// TestCloseStopsRun: Close ends a running Run, closes the connections, is idempotent, and
// leaves Write refusing.
func TestCloseStopsRun(t *testing.T) {
	srv := newTestServer(t, 1)
	d, err := New(Options{Devices: []DeviceOptions{tcpDevice("plc", srv, 1, TagOptions{Name: "a", Address: "40001", Writable: true})}}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	sink := newTestSink()
	done := make(chan error, 1)
	go func() { done <- d.Run(context.Background(), sink) }()
	eventually(t, 5*time.Second, "device up", func() bool { return sink.lastState("plc") == 1 })
	start := time.Now()
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run still running after Close returned")
	}
	if took := time.Since(start); took > d.closeWait {
		t.Errorf("Close took %v, more than its bound %v", took, d.closeWait)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := d.Write(context.Background(), "plc", "a", drivers.UintValue(drivers.UInt16, 1)); !errors.Is(err, errNotRunning) {
		t.Errorf("Write after Close: %v, want %v", err, errNotRunning)
	}
}

// TestCloseBeforeRun: a driver closed before it runs returns from Run at once.
func TestCloseBeforeRun(t *testing.T) {
	srv := newTestServer(t, 1)
	d, err := New(Options{Devices: []DeviceOptions{tcpDevice("plc", srv, 1, TagOptions{Name: "a", Address: "40001"})}}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(context.Background(), newTestSink()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run after Close did not return")
	}
}
