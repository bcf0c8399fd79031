package bridge

import (
	"syscall"
	"testing"
	"time"

	"github.com/wellgate/wellgate/bridge/queue"
	"github.com/wellgate/wellgate/internal/peers"
)

// arrivedFrom reports whether every counter value from..n-1 arrived.
func arrivedFrom(msgs []received, from int64, n int) bool {
	_, values := analyze(msgs)
	seen := map[int64]bool{}
	for _, cv := range values {
		seen[cv.v] = true
	}
	for v := from; v < int64(n); v++ {
		if !seen[v] {
			return false
		}
	}
	return true
}

// A queue on a small tmpfs filled during an outage keeps the newest samples: after the link
// returns the host gets an unbroken run up to the last value, and the dropped oldest are
// counted. It needs root (mount); it is skipped otherwise (the queue's own tests simulate a
// full disk).
func TestFullDiskKeepsNewest(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=256k"); err != nil {
		t.Skipf("cannot mount a tmpfs (%v); bridge/queue TestDiskFullDropsOldest covers a full disk", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	addr := peers.FreePort(t) // the upstream is down for the whole outage
	h := newHarnessQueue(t, dir, queue.Options{SegmentSize: 16 << 10, SyncInterval: 20 * time.Millisecond},
		testOptions("tcp://"+addr), nil).start()
	const n = 20000 // about 800 KB of records on a 256 KiB disk
	for i := 0; i < n; i += 100 {
		h.produce(100)
		h.waitFor(10*time.Second, "samples queued", func() bool { return h.b.Status().Queued == uint64(i+100) })
	}
	st := h.b.Status()
	dropped := st.Queue.Dropped[queue.DropDiskFull]
	if dropped == 0 || st.QueueErrors != 0 || uint64(st.Queue.Records)+dropped != n {
		t.Fatalf("status %+v: want the oldest dropped for a full disk, none refused", st)
	}
	m := peers.StartMosquittoAt(t, addr)
	col := newCollector(t, m.Addr)
	h.waitState(StateOnline, 10*time.Second)
	h.waitSkipping(20*time.Second, "the backlog replayed", func() bool { return h.b.Status().Queue.Records == 0 })
	h.waitFor(10*time.Second, "the newest values", func() bool { return arrivedFrom(col.all(), int64(dropped), n) })
	_, values := analyze(col.all())
	seen := map[int64]bool{}
	for _, cv := range values {
		seen[cv.v] = true
	}
	first := int64(dropped)
	for v := first; v < n; v++ {
		if !seen[v] {
			t.Fatalf("value %d of the newest %d never arrived", v, n-first)
		}
	}
	for v := int64(0); v < first; v++ {
		if seen[v] {
			t.Fatalf("value %d arrived, but the queue counted the %d oldest as dropped", v, first)
		}
	}
	t.Logf("%d samples during the outage on a 256 KiB tmpfs: the newest %d delivered, the oldest %d dropped and counted", n, n-first, first)
}
