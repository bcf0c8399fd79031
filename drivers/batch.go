package drivers

import (
	"math/bits"
	"unsafe"
)

// Batches for Sink.Samples. A busy gateway allocates a batch per poll (200 tags: 19 KB) and
// at 400,000 values a second that was half of everything it allocated, and so of its garbage
// collection. NewBatch takes a batch that its last holder gave back with Release, when there
// is one; the free lists are bounded, so that a burst's batches do not stay held for good.

// batchClasses are the free lists, one per power-of-two capacity up to 1<<15 samples.
var batchClasses [16]chan []Sample

// batchBytesPerClass bounds each free list, in bytes: 4 MiB is 170 batches of 256 samples
// (a 200-tag device), enough for most of a 200-device fleet's poll at once; a list holds at
// least minBatchesPerClass batches and at most maxBatchesPerClass: the lists' channel buffers
// are allocated at start, and a byte bound alone made that of the 1-sample class 47,000
// slots (1.1 MB, 2.3 MB for all classes) in every gateway, idle or not.
const (
	batchBytesPerClass = 4 << 20
	minBatchesPerClass = 4
	maxBatchesPerClass = 1024
)

func init() {
	size := int(unsafe.Sizeof(Sample{}))
	for c := range batchClasses {
		batchClasses[c] = make(chan []Sample, min(max(minBatchesPerClass, batchBytesPerClass/(size<<c)), maxBatchesPerClass))
	}
}

// batchClass is the free list of batches of capacity 1<<c that holds n samples; ok is false
// for batches too large to keep.
func batchClass(n int) (c int, ok bool) {
	c = bits.Len(uint(max(n, 1) - 1))
	return c, c < len(batchClasses)
}

// NewBatch returns a batch of n zero samples, for a driver to fill and hand to Sink.Samples.
func NewBatch(n int) []Sample {
	c, ok := batchClass(n)
	if !ok {
		return make([]Sample, n)
	}
	select {
	case b := <-batchClasses[c]:
		return b[:n]
	default:
		return make([]Sample, n, 1<<c)
	}
}

// Release gives a batch back to NewBatch. Only the batch's last holder may call it, once it
// and everyone it handed the batch to are done with it: the next NewBatch overwrites it. A
// batch NewBatch did not make (its capacity is not one of its classes) is left to the
// garbage collector.
func Release(batch []Sample) {
	c, ok := batchClass(cap(batch))
	if !ok || cap(batch) != 1<<c {
		return
	}
	batch = batch[:cap(batch)]
	clear(batch) // no strings kept alive, and NewBatch's samples start zero
	select {
	case batchClasses[c] <- batch:
	default:
	}
}
