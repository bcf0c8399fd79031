package bridge

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/wellgate/wellgate/drivers"
)

// TestPackedRecordsAreTheQueueRecords: the ring keeps a batch packed (one buffer); what it
// gives back to the queue on a lost connection is exactly the records the queue would have
// been given, node metrics left out, large records included.
func TestPackedRecordsAreTheQueueRecords(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	batch := []drivers.Sample{
		{Device: "well1", Tag: "counter", Value: drivers.IntValue(drivers.Int64, -5), Quality: drivers.Good, Time: at},
		{Device: "", Tag: "Node Control/Scan Rate", Value: drivers.IntValue(drivers.Int64, 1000), Quality: drivers.Good, Time: at},
		{Device: "well1", Tag: "note", Value: drivers.StringValue(strings.Repeat("long text ", 40)), Quality: drivers.Good, Time: at},
		{Device: "well2", Tag: "setpoint", Value: drivers.Null(drivers.Double), Quality: drivers.Bad},
	}
	var scratch []byte
	for range 2 { // the second time with the first's scratch
		var p packedRecords
		var n int
		p, n, scratch = packSamples(batch, scratch)
		want := encodeSamples(deviceSamples(batch))
		if n != len(want) {
			t.Fatalf("%d records packed, want %d", n, len(want))
		}
		got := p.split(n)
		if len(got) != len(want) {
			t.Fatalf("split gave %d records, want %d", len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Errorf("record %d: %q, want %q", i, got[i], want[i])
			}
		}
		if cap(p) > len(p)+len(p)/8+16 { // the allocator's size classes, no more
			t.Errorf("packed batch has %d bytes of capacity for %d", cap(p), len(p))
		}
	}
	if p, n, _ := packSamples(batch[1:2], nil); p != nil || n != 0 {
		t.Errorf("node metrics alone: %d records, %d bytes; want none", n, len(p))
	}
	one := encodeMessage(nil, message{topic: "a/b", payload: []byte("x"), qos: 1})
	if got := packRecord(one).split(1); len(got) != 1 || !bytes.Equal(got[0], one) {
		t.Errorf("packRecord: %q, want [%q]", got, one)
	}
}
