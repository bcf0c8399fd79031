package drivers

import (
	"testing"
	"time"
	"unsafe"
)

func TestBatchReuse(t *testing.T) {
	b := NewBatch(200)
	if len(b) != 200 || cap(b) != 256 {
		t.Fatalf("NewBatch(200): len %d cap %d, want 200 and 256", len(b), cap(b))
	}
	b[0] = Sample{Device: "PLC001", Tag: "T0000", Value: StringValue("x"), Quality: Good, Time: time.Now()}
	b[199] = b[0]
	Release(b)
	c := NewBatch(150) // same class: the one just released, cleared
	if &c[0] != &b[0] {
		t.Fatal("NewBatch did not reuse the released batch of its class")
	}
	for i, s := range c[:cap(c)] {
		if s != (Sample{}) {
			t.Fatalf("reused batch: sample %d is %+v, want zero", i, s)
		}
	}
	if n := testing.AllocsPerRun(100, func() { Release(NewBatch(200)) }); n != 0 {
		t.Errorf("NewBatch+Release: %v allocations, want 0", n)
	}
}

func TestReleaseKeepsOnlyItsOwn(t *testing.T) {
	odd := make([]Sample, 3) // not a class capacity: left to the collector
	Release(odd)
	if b := NewBatch(3); cap(b) != 4 {
		t.Errorf("NewBatch(3) after releasing a 3-capacity slice: cap %d, want 4", cap(b))
	}
	l := &batchClasses[3]
	held := func() int { l.mu.Lock(); defer l.mu.Unlock(); return len(l.free) }
	bound := l.base
	for range 2 * bound { // a full free list drops the rest
		Release(make([]Sample, 8))
	}
	if n := held(); n != bound || n*8*int(unsafe.Sizeof(Sample{})) > batchBytesPerClass {
		t.Errorf("free list of 8-sample batches holds %d, want its bound %d, within %d bytes", n, bound, batchBytesPerClass)
	}
	// 300 devices of 8 tags reserved: 300 more batches kept, until they are unreserved.
	for range 300 {
		ReserveBatches(7)
	}
	for range 400 {
		Release(make([]Sample, 8))
	}
	if n := held(); n != bound+300 {
		t.Errorf("with 300 batches reserved the free list holds %d, want %d", n, bound+300)
	}
	for range 300 {
		UnreserveBatches(5)
	}
	if n := held(); n != bound {
		t.Errorf("after unreserving, the free list holds %d, want its bound %d", n, bound)
	}
	total := 0
	for c := range batchClasses {
		total += batchClasses[c].base
	}
	if total > 8192 {
		t.Errorf("the free lists' base bounds add up to %d batches; want them bounded in count, not only in bytes", total)
	}
	if b := NewBatch(1 << 20); len(b) != 1<<20 {
		t.Errorf("NewBatch(1<<20): len %d", len(b))
	}
}
