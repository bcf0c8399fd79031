package queue

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// logBuffer collects log output for assertions.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *logBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func newLog() (*slog.Logger, *logBuffer) {
	lb := &logBuffer{}
	return slog.New(slog.NewTextHandler(lb, nil)), lb
}

func rec(i int) []byte { return fmt.Appendf(nil, "record-%08d", i) }

func mustOpen(t *testing.T, dir string, o Options, log *slog.Logger) *Disk {
	t.Helper()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d, err := OpenDisk(dir, o, log)
	if err != nil {
		t.Fatalf("OpenDisk: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func addRange(t *testing.T, q *Disk, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := q.Add(rec(i)); err != nil {
			t.Fatalf("Add(%d): %v", i, err)
		}
	}
}

// drain reads every record, acking as it goes, and returns their numbers.
func drain(t *testing.T, q *Disk) []int {
	t.Helper()
	var got []int
	for {
		tx, err := q.Begin(100)
		if err != nil {
			t.Fatal(err)
		}
		if tx.Len() == 0 {
			return got
		}
		for _, r := range tx.Records {
			var i int
			if _, err := fmt.Sscanf(string(r), "record-%d", &i); err != nil {
				t.Fatalf("unexpected record %q", r)
			}
			got = append(got, i)
		}
		if err := q.Ack(tx); err != nil {
			t.Fatal(err)
		}
	}
}

// checkRun checks that got is from, from+1, ..., to-1.
func checkRun(t *testing.T, got []int, from, to int) {
	t.Helper()
	if len(got) != to-from {
		t.Fatalf("got %d records (%v…), want %d..%d", len(got), head(got), from, to-1)
	}
	for k, i := range got {
		if i != from+k {
			t.Fatalf("record %d is %d, want %d", k, i, from+k)
		}
	}
}

func head(s []int) []int { return s[:min(len(s), 5)] }

// abandon drops d as a crash would: no final commit, handles closed without fsync.
func (d *Disk) abandon() {
	close(d.stop)
	<-d.done
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if d.active != nil {
		d.active.Close()
	}
	for _, h := range d.unsynced {
		h.f.Close()
	}
	d.closeReaders()
}

func TestDiskReopen(t *testing.T) {
	dir := t.TempDir()
	q := mustOpen(t, dir, Options{SegmentSize: 512}, nil)
	addRange(t, q, 0, 100)
	tx, _ := q.Begin(30)
	if err := q.Ack(tx); err != nil {
		t.Fatal(err)
	}
	q.Begin(10) // outstanding at close: must come back
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q = mustOpen(t, dir, Options{SegmentSize: 512}, nil)
	if q.Len() != 70 {
		t.Fatalf("Len after reopen = %d, want 70", q.Len())
	}
	addRange(t, q, 100, 120)
	checkRun(t, drain(t, q), 30, 120)
	q.Close()
	segs, _ := listSegments(dir)
	if len(segs) > 1 {
		t.Errorf("%d segment files left after draining, want at most 1", len(segs))
	}
}

func TestDiskCrashWithoutClose(t *testing.T) {
	dir := t.TempDir()
	q := mustOpen(t, dir, Options{SegmentSize: 300}, nil)
	addRange(t, q, 0, 200)
	tx, _ := q.Begin(50)
	q.Ack(tx)
	q.abandon()

	q = mustOpen(t, dir, Options{SegmentSize: 300}, nil)
	got := drain(t, q)
	// An ack not yet committed may be lost (its records come back as duplicates) except
	// where a whole segment was consumed and deleted.
	if len(got) == 0 || got[0] > 50 {
		t.Fatalf("after a crash the queue starts at %v, want at most 50", head(got))
	}
	checkRun(t, got, got[0], 200)
}

func onlySegment(t *testing.T, dir string) string {
	t.Helper()
	segs, err := listSegments(dir)
	if err != nil || len(segs) != 1 {
		t.Fatalf("want one segment, got %v, %v", segs, err)
	}
	return filepath.Join(dir, segName(segs[0]))
}

func TestDiskTornTail(t *testing.T) {
	dir := t.TempDir()
	q := mustOpen(t, dir, Options{}, nil)
	addRange(t, q, 0, 100)
	q.Close()
	path := onlySegment(t, dir)
	fi, _ := os.Stat(path)
	if err := os.Truncate(path, fi.Size()-5); err != nil { // a torn last record
		t.Fatal(err)
	}
	log, lb := newLog()
	q = mustOpen(t, dir, Options{}, log)
	checkRun(t, drain(t, q), 0, 99)
	if !strings.Contains(lb.String(), "torn or corrupt") || !strings.Contains(lb.String(), filepath.Base(path)) {
		t.Fatalf("no log line naming the file: %s", lb.String())
	}
	if q.Stats().Dropped[DropCorrupt] == 0 {
		t.Fatal("the torn tail was not counted")
	}
	addRange(t, q, 100, 110) // goes on in a new segment
	q.Close()
	q = mustOpen(t, dir, Options{}, nil)
	checkRun(t, drain(t, q), 100, 110)
}

func TestDiskBitFlip(t *testing.T) {
	dir := t.TempDir()
	q := mustOpen(t, dir, Options{}, nil)
	addRange(t, q, 0, 100)
	q.Close()
	path := onlySegment(t, dir)
	b, _ := os.ReadFile(path)
	per := RecordOverhead + len(rec(0))
	b[int(segHeaderLen)+50*per+RecordOverhead+3] ^= 0x10 // inside record 50's payload
	os.WriteFile(path, b, 0o640)
	log, lb := newLog()
	q = mustOpen(t, dir, Options{}, log)
	checkRun(t, drain(t, q), 0, 50)
	want := fmt.Sprintf("offset=%d", int(segHeaderLen)+50*per)
	if !strings.Contains(lb.String(), want) {
		t.Fatalf("log line does not give %s: %s", want, lb.String())
	}
}

func TestDiskCorruptionFoundWhileReading(t *testing.T) {
	dir := t.TempDir()
	log, lb := newLog()
	q := mustOpen(t, dir, Options{SegmentSize: 400}, log)
	addRange(t, q, 0, 60) // several segments
	segs, _ := listSegments(dir)
	if len(segs) < 3 {
		t.Fatalf("want several segments, got %d", len(segs))
	}
	path := filepath.Join(dir, segName(segs[0]))
	b, _ := os.ReadFile(path)
	b[len(b)-3] ^= 0xff // the first segment's last record goes bad after it was written
	os.WriteFile(path, b, 0o640)
	got := drain(t, q)
	if len(got) != 59 || got[0] != 0 || got[len(got)-1] != 59 {
		t.Fatalf("got %d records %v…, want all but one", len(got), head(got))
	}
	if q.Stats().Dropped[DropCorrupt] != 1 || !strings.Contains(lb.String(), "unreadable") {
		t.Fatalf("dropped %v; log %s", q.Stats().Dropped, lb.String())
	}
	if q.Len() != 0 {
		t.Fatalf("Len = %d after draining", q.Len())
	}
}

func TestDiskBadAckFile(t *testing.T) {
	dir := t.TempDir()
	q := mustOpen(t, dir, Options{}, nil)
	addRange(t, q, 0, 10)
	tx, _ := q.Begin(5)
	q.Ack(tx)
	q.Close()
	os.WriteFile(filepath.Join(dir, ackName), []byte("garbage"), 0o640)
	log, lb := newLog()
	q = mustOpen(t, dir, Options{}, log)
	checkRun(t, drain(t, q), 0, 10) // duplicates, never a loss
	if !strings.Contains(lb.String(), "ack cursor unreadable") {
		t.Fatalf("no log line: %s", lb.String())
	}
}

func TestDiskByteLimitAcrossSegments(t *testing.T) {
	dir := t.TempDir()
	per := int64(RecordOverhead + len(rec(0)))
	q := mustOpen(t, dir, Options{MaxBytes: 100 * per, SegmentSize: 10 * per}, nil)
	addRange(t, q, 0, 1000)
	if q.Len() != 100 || q.Stats().Dropped[DropBytes] != 900 {
		t.Fatalf("Len %d, dropped %v", q.Len(), q.Stats().Dropped)
	}
	segs, _ := listSegments(dir)
	if len(segs) > 12 {
		t.Fatalf("%d segments on disk for a 10-segment limit", len(segs))
	}
	q.Close()
	q = mustOpen(t, dir, Options{MaxBytes: 100 * per, SegmentSize: 10 * per}, nil)
	checkRun(t, drain(t, q), 900, 1000)
}

// TestDiskBeginSmallReadsMixedSizes: Begin reads about what n records take (chunkFor), so that
// records larger than that chunk (a forwarded message among samples), chunks that end inside a
// record and transactions of any size all come out whole and in order.
func TestDiskBeginSmallReadsMixedSizes(t *testing.T) {
	q := mustOpen(t, t.TempDir(), Options{}, nil)
	var want [][]byte
	for i := range 3000 {
		r := rec(i)
		switch i % 700 {
		case 350:
			r = append(r, bytes.Repeat([]byte{'x'}, 300<<10)...) // larger than any small chunk
		case 500:
			r = append(r, bytes.Repeat([]byte{'y'}, maxChunk+10)...) // larger than the largest chunk
		}
		if err := q.Add(r); err != nil {
			t.Fatal(err)
		}
		want = append(want, r)
	}
	got := 0
	for n := 1; got < len(want); n = n%250 + 1 {
		tx, err := q.Begin(n)
		if err != nil {
			t.Fatal(err)
		}
		if tx.Len() == 0 || tx.Len() > n {
			t.Fatalf("Begin(%d) after %d records: %d records", n, got, tx.Len())
		}
		for _, r := range tx.Records {
			if !bytes.Equal(r, want[got]) {
				t.Fatalf("record %d: got %d bytes %.20q, want %d bytes %.20q", got, len(r), r, len(want[got]), want[got])
			}
			got++
		}
		if err := q.Ack(tx); err != nil {
			t.Fatal(err)
		}
	}
	if q.Len() != 0 {
		t.Fatalf("%d records left", q.Len())
	}
}

// An empty queue with everything committed does not run its commit loop: an idle gateway must
// not wake every SyncInterval for nothing. Records added later are committed as before, and
// a queue holding records keeps enforcing the age bound on the loop.
func TestDiskIdleCommitLoopWaits(t *testing.T) {
	var calls atomic.Int64
	now := func() time.Time { calls.Add(1); return time.Now() }
	d := mustOpen(t, t.TempDir(), Options{SyncInterval: time.Millisecond, MaxAge: time.Hour, Now: now}, nil)
	defer d.Close()
	rounds := func(over time.Duration) int64 {
		before := calls.Load()
		time.Sleep(over)
		return calls.Load() - before
	}
	if n := rounds(100 * time.Millisecond); n > 5 {
		t.Errorf("empty queue: the commit loop ran %d times in 100ms at a 1ms SyncInterval; want it waiting", n)
	}
	if err := d.Add([]byte("a")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for d.Stats().Syncs == 0 {
		if time.Now().After(deadline) {
			t.Fatal("a record added to an idle queue was never committed")
		}
		time.Sleep(time.Millisecond)
	}
	if n := rounds(100 * time.Millisecond); n < 10 {
		t.Errorf("a queue holding a record: the commit loop ran %d times in 100ms; want it enforcing the age bound every SyncInterval", n)
	}
	tx, err := d.Begin(10)
	if err != nil || tx.Len() != 1 {
		t.Fatalf("Begin: %v records, %v", tx.Len(), err)
	}
	if err := d.Ack(tx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // the ack cursor's commit
	if n := rounds(100 * time.Millisecond); n > 5 {
		t.Errorf("emptied queue: the commit loop ran %d times in 100ms; want it waiting again", n)
	}
}
