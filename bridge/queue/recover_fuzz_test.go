package queue

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// referenceParse is an independent, plain reading of a segment: the records from the start
// while each header and checksum is right.
func referenceParse(b []byte) [][]byte {
	if !bytes.HasPrefix(b, []byte(segMagic)) {
		return nil
	}
	b = b[len(segMagic):]
	var out [][]byte
	for len(b) >= RecordOverhead {
		n := binary.LittleEndian.Uint32(b)
		if n > MaxRecord || uint64(len(b)-RecordOverhead) < uint64(n) {
			break
		}
		h := parseHeader(b)
		if !h.valid(b[:RecordOverhead], b[RecordOverhead:RecordOverhead+int(n)]) {
			break
		}
		out = append(out, b[RecordOverhead:RecordOverhead+int(n)])
		b = b[RecordOverhead+int(n):]
	}
	return out
}

func validSegment(n int) []byte {
	b := []byte(segMagic)
	for i := 0; i < n; i++ {
		b = appendRecord(b, rec(i), time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC))
	}
	return b
}

// FuzzRecover feeds random bytes as a segment file to OpenDisk: it must not panic and must
// hand out exactly the records with valid checksums before the first bad one.
func FuzzRecover(f *testing.F) {
	f.Add(validSegment(3))
	f.Add(validSegment(3)[:40])
	f.Add([]byte(segMagic))
	f.Add([]byte{})
	big := validSegment(1)
	binary.LittleEndian.PutUint32(big[segHeaderLen:], 1<<31)
	f.Add(big)
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segName(1)), b, 0o640); err != nil {
			t.Fatal(err)
		}
		q, err := OpenDisk(dir, Options{}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("OpenDisk: %v", err)
		}
		defer q.Close()
		want := referenceParse(b)
		if q.Len() != len(want) {
			t.Fatalf("Len = %d, want %d", q.Len(), len(want))
		}
		tx, err := q.Begin(len(want) + 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(tx.Records) != len(want) {
			t.Fatalf("got %d records, want %d", len(tx.Records), len(want))
		}
		for i := range want {
			if !bytes.Equal(tx.Records[i], want[i]) {
				t.Fatalf("record %d: got %q, want %q", i, tx.Records[i], want[i])
			}
		}
		if err := q.Add([]byte("after")); err != nil { // the queue goes on
			t.Fatal(err)
		}
	})
}
