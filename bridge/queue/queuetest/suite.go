// Package queuetest is the conformance suite every store-and-forward queue implementation
// passes (the contract is described in package queue). Run it from the implementation's
// tests:
//
//	queuetest.Run(t, func(t *testing.T, o queue.Options) queuetest.Queue { return queue.NewMemory(o) })
package queuetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wellgate/wellgate/bridge/queue"
)

// Queue is the contract under test.
type Queue interface {
	Add(records ...[]byte) error
	Begin(n int) (*queue.Tx, error)
	Ack(tx *queue.Tx) error
	Nack(tx *queue.Tx)
	Len() int
	Bytes() int64
	OldestAge() time.Duration
	Stats() queue.Stats
	Close() error
}

// Factory opens a new, empty queue with opts. The suite closes it.
type Factory func(t *testing.T, opts queue.Options) Queue

// Clock is a settable clock for Options.Now.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock set to a fixed time after 2020 (earlier add times are not aged).
func NewClock() *Clock { return &Clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// Run runs every conformance test against the implementation open returns.
func Run(t *testing.T, open Factory) {
	tests := []struct {
		name string
		fn   func(*testing.T, Factory)
	}{
		{"Empty", testEmpty},
		{"Order", testOrder},
		{"Outstanding", testOutstanding},
		{"Nack", testNack},
		{"StaleAck", testStaleAck},
		{"CopiesInput", testCopiesInput},
		{"Bytes", testBytes},
		{"ByteLimit", testByteLimit},
		{"AgeLimit", testAgeLimit},
		{"DropOutstanding", testDropOutstanding},
		{"TooLarge", testTooLarge},
		{"Close", testClose},
		{"Foreign", testForeign},
		{"Concurrent", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

func openQ(t *testing.T, open Factory, opts queue.Options) Queue {
	t.Helper()
	q := open(t, opts)
	t.Cleanup(func() {
		if err := q.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return q
}

// Rec returns the test record number i.
func Rec(i int) []byte { return fmt.Appendf(nil, "record-%08d", i) }

// Add adds records from..to-1 one Add call per batch records.
func Add(t *testing.T, q Queue, from, to, batch int) {
	t.Helper()
	for i := from; i < to; i += batch {
		var rs [][]byte
		for j := i; j < min(i+batch, to); j++ {
			rs = append(rs, Rec(j))
		}
		if err := q.Add(rs...); err != nil {
			t.Fatalf("Add(%d..): %v", i, err)
		}
	}
}

// Expect begins a transaction of n records and checks they are records from, from+1, ...
func Expect(t *testing.T, q Queue, n, from int) *queue.Tx {
	t.Helper()
	tx, err := q.Begin(n)
	if err != nil {
		t.Fatalf("Begin(%d): %v", n, err)
	}
	for i, r := range tx.Records {
		if want := Rec(from + i); !bytes.Equal(r, want) {
			t.Fatalf("record %d of tx: got %q, want %q", i, r, want)
		}
	}
	return tx
}

func checkLen(t *testing.T, q Queue, want int) {
	t.Helper()
	if got := q.Len(); got != want {
		t.Fatalf("Len = %d, want %d", got, want)
	}
}

func testEmpty(t *testing.T, open Factory) {
	q := openQ(t, open, queue.Options{})
	checkLen(t, q, 0)
	if q.Bytes() != 0 || q.OldestAge() != 0 {
		t.Fatalf("empty queue: Bytes %d OldestAge %v", q.Bytes(), q.OldestAge())
	}
	tx, err := q.Begin(10)
	if err != nil || tx.Len() != 0 {
		t.Fatalf("Begin on empty: %v, %d records", err, tx.Len())
	}
	if err := q.Ack(tx); err != nil {
		t.Fatalf("Ack of empty tx: %v", err)
	}
	if err := q.Add(); err != nil {
		t.Fatalf("Add(): %v", err)
	}
	if err := q.Add([]byte{}); err != nil {
		t.Fatalf("Add(empty record): %v", err)
	}
	if tx, err := q.Begin(5); err != nil || tx.Len() != 1 || len(tx.Records[0]) != 0 {
		t.Fatalf("empty record came back as %q", tx.Records)
	}
}

func testOrder(t *testing.T, open Factory) {
	q := openQ(t, open, queue.Options{})
	Add(t, q, 0, 1000, 7)
	checkLen(t, q, 1000)
	for next := 0; next < 1000; {
		tx := Expect(t, q, 64, next)
		if tx.Len() == 0 {
			t.Fatalf("Begin returned nothing at %d", next)
		}
		next += tx.Len()
		if err := q.Ack(tx); err != nil {
			t.Fatal(err)
		}
		checkLen(t, q, 1000-next)
	}
	if q.Bytes() != 0 {
		t.Fatalf("Bytes after draining = %d", q.Bytes())
	}
}

func testOutstanding(t *testing.T, open Factory) {
	q := openQ(t, open, queue.Options{})
	Add(t, q, 0, 30, 30)
	a := Expect(t, q, 10, 0)
	b := Expect(t, q, 10, 10)
	checkLen(t, q, 30)
	if err := q.Ack(b); err != nil { // acks a with it
		t.Fatal(err)
	}
	checkLen(t, q, 10)
	if err := q.Ack(a); err != nil {
		t.Fatal(err)
	}
	checkLen(t, q, 10)
	Expect(t, q, 100, 20)
}

func testNack(t *testing.T, open Factory) {
	q := openQ(t, open, queue.Options{})
	Add(t, q, 0, 30, 1)
	a := Expect(t, q, 10, 0)
	b := Expect(t, q, 10, 10)
	if err := q.Ack(a); err != nil {
		t.Fatal(err)
	}
	q.Nack(b)
	checkLen(t, q, 20)
	c := Expect(t, q, 100, 10)
	if c.Len() != 20 {
		t.Fatalf("after Nack got %d records, want 20", c.Len())
	}
	q.Nack(c)
	Add(t, q, 30, 35, 5)
	if tx := Expect(t, q, 100, 10); tx.Len() != 25 {
		t.Fatalf("got %d records, want 25", tx.Len())
	}
}

func testStaleAck(t *testing.T, open Factory) {
	q := openQ(t, open, queue.Options{})
	Add(t, q, 0, 10, 10)
	a := Expect(t, q, 5, 0)
	if err := q.Ack(a); err != nil {
		t.Fatal(err)
	}
	if err := q.Ack(a); err != nil {
		t.Fatalf("second Ack: %v", err)
	}
	q.Nack(a) // a stale Nack only rewinds to the oldest record not acked
	checkLen(t, q, 5)
	Expect(t, q, 5, 5)
}

func testCopiesInput(t *testing.T, open Factory) {
	q := openQ(t, open, queue.Options{})
	buf := Rec(0)
	if err := q.Add(buf); err != nil {
		t.Fatal(err)
	}
	copy(buf, "XXXXXXXX")
	tx := Expect(t, q, 1, 0)
	copy(tx.Records[0], "YYYYYYYY")
	q.Nack(tx)
	Expect(t, q, 1, 0)
}

func testBytes(t *testing.T, open Factory) {
	q := openQ(t, open, queue.Options{})
	Add(t, q, 0, 10, 3)
	want := int64(10 * (len(Rec(0)) + queue.RecordOverhead))
	if got := q.Bytes(); got != want {
		t.Fatalf("Bytes = %d, want %d", got, want)
	}
	if err := q.Ack(Expect(t, q, 4, 0)); err != nil {
		t.Fatal(err)
	}
	if got, want := q.Bytes(), want*6/10; got != want {
		t.Fatalf("Bytes after acking 4 = %d, want %d", got, want)
	}
}

func testByteLimit(t *testing.T, open Factory) {
	per := int64(len(Rec(0)) + queue.RecordOverhead)
	q := openQ(t, open, queue.Options{MaxBytes: 10 * per})
	Add(t, q, 0, 25, 3)
	checkLen(t, q, 10)
	if q.Bytes() > 10*per {
		t.Fatalf("Bytes %d past the limit %d", q.Bytes(), 10*per)
	}
	st := q.Stats()
	if st.Dropped[queue.DropBytes] != 15 || st.DroppedBytes != uint64(15*per) {
		t.Fatalf("dropped %v (%d bytes), want 15 for bytes", st.Dropped, st.DroppedBytes)
	}
	Expect(t, q, 100, 15)
	Add(t, q, 25, 26, 1) // keeps running at the limit
	checkLen(t, q, 10)
}

func testAgeLimit(t *testing.T, open Factory) {
	clk := NewClock()
	q := openQ(t, open, queue.Options{MaxAge: 30 * time.Minute, Now: clk.Now})
	Add(t, q, 0, 5, 5)
	clk.Advance(20 * time.Minute)
	Add(t, q, 5, 10, 5)
	if age := q.OldestAge(); age != 20*time.Minute {
		t.Fatalf("OldestAge = %v, want 20m", age)
	}
	clk.Advance(15 * time.Minute)
	checkLen(t, q, 5)
	if d := q.Stats().Dropped[queue.DropAge]; d != 5 {
		t.Fatalf("dropped for age = %d, want 5", d)
	}
	Expect(t, q, 100, 5)
	clk.Advance(time.Hour)
	checkLen(t, q, 0)
	if q.OldestAge() != 0 {
		t.Fatalf("OldestAge of an empty queue = %v", q.OldestAge())
	}
}

func testDropOutstanding(t *testing.T, open Factory) {
	per := int64(len(Rec(0)) + queue.RecordOverhead)
	q := openQ(t, open, queue.Options{MaxBytes: 10 * per})
	Add(t, q, 0, 10, 10)
	tx := Expect(t, q, 5, 0)
	Add(t, q, 10, 18, 1) // drops 0..7, including all of tx
	if err := q.Ack(tx); err != nil {
		t.Fatalf("Ack of a dropped tx: %v", err)
	}
	checkLen(t, q, 10)
	Expect(t, q, 100, 8)
}

func testTooLarge(t *testing.T, open Factory) {
	q := openQ(t, open, queue.Options{MaxBytes: 100})
	err := q.Add(Rec(0), make([]byte, 100))
	if !errors.Is(err, queue.ErrTooLarge) {
		t.Fatalf("Add of a record past MaxBytes: %v, want ErrTooLarge", err)
	}
	checkLen(t, q, 0)
}

func testClose(t *testing.T, open Factory) {
	q := open(t, queue.Options{})
	Add(t, q, 0, 3, 3)
	tx := Expect(t, q, 1, 0)
	for i := 0; i < 2; i++ {
		if err := q.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	if err := q.Add(Rec(9)); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("Add after Close: %v", err)
	}
	if _, err := q.Begin(1); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("Begin after Close: %v", err)
	}
	if err := q.Ack(tx); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("Ack after Close: %v", err)
	}
	q.Nack(tx)
}

func testForeign(t *testing.T, open Factory) {
	a := openQ(t, open, queue.Options{})
	b := openQ(t, open, queue.Options{})
	Add(t, a, 0, 1, 1)
	tx := Expect(t, a, 1, 0)
	if err := b.Ack(tx); !errors.Is(err, queue.ErrForeign) {
		t.Fatalf("Ack on another queue: %v", err)
	}
	b.Nack(tx)
}

func testConcurrent(t *testing.T, open Factory) {
	q := openQ(t, open, queue.Options{})
	const producers, each = 4, 500
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := q.Add(fmt.Appendf(nil, "%d/%06d", p, i)); err != nil {
					t.Errorf("Add: %v", err)
					return
				}
			}
		}()
	}
	next := make([]int, producers)
	got := 0
	deadline := time.Now().Add(30 * time.Second)
	for got < producers*each && time.Now().Before(deadline) {
		tx, err := q.Begin(50)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range tx.Records {
			var p, i int
			if _, err := fmt.Sscanf(string(r), "%d/%d", &p, &i); err != nil || p < 0 || p >= producers || i != next[p] {
				t.Fatalf("record %q out of order (want %d next)", r, next[p%producers])
			}
			next[p]++
			got++
		}
		if err := q.Ack(tx); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if got != producers*each {
		t.Fatalf("got %d records, want %d", got, producers*each)
	}
}
