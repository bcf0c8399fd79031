package gateway

import (
	"context"
	"strings"
	"testing"

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

	// Once A's backlog is served, B's writes are accepted again and served in order.
	for {
		if _, ok := q.next("A"); !ok {
			break
		}
	}
	if _, bytes, _ := q.pending(); bytes != 0 {
		t.Fatalf("%d bytes pending after A's queue was served", bytes)
	}
	var got []int64
	for i := range 3 {
		if err := q.put(writeReq{w: sparkplug.Write{Device: "B", Tag: "N", Value: drivers.IntValue(drivers.Int64, int64(i))}}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- q.run(ctx, "B", func(r writeReq) {
			got = append(got, r.w.Value.Int())
			if len(got) == 3 {
				cancel()
			}
		})
	}()
	<-done
	if len(got) != 3 || got[0] != 0 || got[1] != 1 || got[2] != 2 {
		t.Fatalf("B's writes done as %v, want [0 1 2]", got)
	}
}
