package gateway

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/sparkplug"
)

// Pending writes are bounded in bytes across devices; past the bound a write is refused and
// counted, and what is queued is still carried out in order.
func TestWriteQueuesBoundedInBytes(t *testing.T) {
	q := newWriteQueues([]string{"A", "B"})
	big := strings.Repeat("x", 64<<10)
	accepted := 0
	for range 100 {
		if err := q.put(writeReq{w: sparkplug.Write{Device: "A", Tag: "Text", Value: drivers.StringValue(big)}}); err == nil {
			accepted++
		}
	}
	writes, bytes, refused := q.pending()
	if bytes > maxPendingWriteBytes || writes != accepted || refused != uint64(100-accepted) || accepted == 0 || refused == 0 {
		t.Fatalf("after 100 puts of 64 KiB: %d accepted, %d pending, %d bytes, %d refused (bound %d)",
			accepted, writes, bytes, refused, maxPendingWriteBytes)
	}
	if err := q.put(writeReq{w: sparkplug.Write{Device: "C", Tag: "T"}}); err == nil {
		t.Fatal("a write for a device that accepts none was queued")
	}

	// Once served, A's backlog is carried out in order, B's writes are accepted again and
	// served in order too.
	var mu sync.Mutex
	var gotA int
	var gotB []int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		q.serve(ctx, func(r writeReq) {
			mu.Lock()
			defer mu.Unlock()
			if r.w.Device == "A" {
				gotA++
			} else {
				gotB = append(gotB, r.w.Value.Int())
			}
		})
	}()
	waitFor(t, "A's backlog served", func() bool { _, bytes, _ := q.pending(); return bytes == 0 })
	for i := range 3 {
		if err := q.put(writeReq{w: sparkplug.Write{Device: "B", Tag: "N", Value: drivers.IntValue(drivers.Int64, int64(i))}}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "B's writes", func() bool { mu.Lock(); defer mu.Unlock(); return len(gotB) == 3 })
	cancel()
	<-done
	if gotA != accepted || gotB[0] != 0 || gotB[1] != 1 || gotB[2] != 2 {
		t.Fatalf("A: %d of %d writes done; B's done as %v, want [0 1 2]", gotA, accepted, gotB)
	}
}

// A device's writer goroutine exists only while it has writes: 500 writable devices never
// written to cost none, and one that was written to has none once its queue is empty. A
// device whose write hangs delays only its own later writes.
func TestWriteGoroutinesOnDemand(t *testing.T) {
	devices := make([]string, 500)
	for i := range devices {
		devices[i] = fmt.Sprintf("D%03d", i)
	}
	q := newWriteQueues(devices)
	ctx, cancel := context.WithCancel(context.Background())
	hang := make(chan struct{})
	var mu sync.Mutex
	done := map[string]int{}
	before := runtime.NumGoroutine()
	served := make(chan struct{})
	go func() {
		defer close(served)
		q.serve(ctx, func(r writeReq) {
			if r.w.Device == "D000" {
				<-hang
			}
			mu.Lock()
			done[r.w.Device]++
			mu.Unlock()
		})
	}()
	time.Sleep(50 * time.Millisecond)
	if n := runtime.NumGoroutine() - before; n > 5 {
		t.Errorf("serving 500 writable devices without writes: %d more goroutines, want 1", n)
	}
	for _, d := range []string{"D000", "D000", "D001", "D002"} {
		if err := q.put(writeReq{w: sparkplug.Write{Device: d, Tag: "T"}}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "D001's and D002's writes while D000 hangs", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return done["D001"] == 1 && done["D002"] == 1
	})
	close(hang)
	waitFor(t, "D000's two writes", func() bool { mu.Lock(); defer mu.Unlock(); return done["D000"] == 2 })
	waitFor(t, "the writer goroutines to end", func() bool { return runtime.NumGoroutine()-before <= 2 })
	cancel()
	<-served
}

// waitUntil polls cond for up to 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
