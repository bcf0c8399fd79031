package drivers

import (
	"math/bits"
	"sync"
	"unsafe"
)

// Batches for Sink.Samples. A busy gateway allocates a batch per poll (200 tags: 19 KB) and
// at 400,000 values a second that was half of everything it allocated, and so of its garbage
// collection. NewBatch takes a batch that its last holder gave back with Release, when there
// is one; the free lists are bounded, so that a burst's batches do not stay held for good.

// batchClasses are the free lists, one per power-of-two capacity up to 1<<15 samples.
var batchClasses [16]freeList

// freeList is one class's batches given back. It holds at most its base bound (a few MiB,
// at least minBatchesPerClass batches) plus one batch per batch reserved (ReserveBatches):
// a fleet whose devices all poll on the same whole second has one batch per device in flight
// at once, and a fixed bound below that made the overflow an allocation at every poll (at
// 800 devices every 100 ms, most of the gateway's garbage).
type freeList struct {
	mu       sync.Mutex
	base     int // bound before reservations
	reserved int
	free     [][]Sample
}

// batchBytesPerClass is each free list's base bound, in bytes: 4 MiB is 170 batches of 256
// samples (a 200-tag device); at least minBatchesPerClass batches, at most maxBatchesPerClass.
const (
	batchBytesPerClass = 4 << 20
	minBatchesPerClass = 4
	maxBatchesPerClass = 1024
)

func init() {
	size := int(unsafe.Sizeof(Sample{}))
	for c := range batchClasses {
		batchClasses[c].base = min(max(minBatchesPerClass, batchBytesPerClass/(size<<c)), maxBatchesPerClass)
	}
}

// batchClass is the free list of batches of capacity 1<<c that holds n samples; ok is false
// for batches too large to keep.
func batchClass(n int) (c int, ok bool) {
	c = bits.Len(uint(max(n, 1) - 1))
	return c, c < len(batchClasses)
}

// ReserveBatches makes room in the free lists for one more batch of n samples in flight at
// once: a driver calls it for each device it polls when it starts, and UnreserveBatches with
// the same n when it stops.
func ReserveBatches(n int) { reserve(n, 1) }

// UnreserveBatches undoes a ReserveBatches(n). The batches kept beyond the new bound are left
// to the garbage collector.
func UnreserveBatches(n int) { reserve(n, -1) }

func reserve(n, delta int) {
	c, ok := batchClass(n)
	if !ok {
		return
	}
	l := &batchClasses[c]
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reserved = max(l.reserved+delta, 0)
	if bound := l.base + l.reserved; len(l.free) > bound {
		clear(l.free[bound:])
		l.free = l.free[:bound]
	}
}

// NewBatch returns a batch of n zero samples, for a driver to fill and hand to Sink.Samples.
func NewBatch(n int) []Sample {
	c, ok := batchClass(n)
	if !ok {
		return make([]Sample, n)
	}
	l := &batchClasses[c]
	l.mu.Lock()
	if k := len(l.free); k > 0 {
		b := l.free[k-1]
		l.free[k-1] = nil
		l.free = l.free[:k-1]
		l.mu.Unlock()
		return b[:n]
	}
	l.mu.Unlock()
	return make([]Sample, n, 1<<c)
}

// Release gives a batch back to NewBatch. Only the batch's last holder may call it, once it
// and everyone it handed the batch to are done with it: the next NewBatch overwrites it. A
// batch NewBatch did not make (its capacity is not one of its classes) is left to the
// garbage collector, and so is one that finds its free list full.
func Release(batch []Sample) {
	c, ok := batchClass(cap(batch))
	if !ok || cap(batch) != 1<<c {
		return
	}
	batch = batch[:cap(batch)]
	clear(batch) // no strings kept alive, and NewBatch's samples start zero
	l := &batchClasses[c]
	l.mu.Lock()
	if len(l.free) < l.base+l.reserved {
		l.free = append(l.free, batch)
	}
	l.mu.Unlock()
}
