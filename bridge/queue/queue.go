// Package queue is the bridge's store-and-forward buffer: an ordered, bounded queue of opaque
// records with a transactional read API. Disk keeps the records in append-only segment files
// with per-record checksums and group commit, so that they survive crashes and power loss;
// Memory keeps them in RAM for tests and small setups. Both obey the same contract, checked by
// one conformance suite (package queuetest):
//
//   - Add appends records at the tail, in order.
//   - Begin(n) hands out the oldest records not yet handed out (at most n) without removing
//     them; several transactions may be outstanding, each following the previous one.
//   - Ack(tx) removes the records of tx and every older record. Nack(tx) rolls back: the next
//     Begin starts again at the oldest record not acked.
//   - Bounds by bytes and by age drop the oldest records, counted in Stats by reason; so does
//     a full disk (Disk frees its oldest segment to make room for the newest records).
//
// The package also holds the compact binary encoding of a drivers.Sample used as a record.
package queue

import (
	"errors"
	"fmt"
	"time"
)

// Errors returned by queue implementations; match with errors.Is.
var (
	ErrClosed   = errors.New("queue: closed")
	ErrTooLarge = errors.New("queue: record larger than the queue's byte limit")
	ErrForeign  = errors.New("queue: transaction belongs to another queue")
)

// Options bounds and tunes a queue. The zero value is an unbounded queue with the defaults.
type Options struct {
	// MaxBytes bounds the bytes of queued records (payload plus per-record header); adding past
	// it drops the oldest records. 0 means no limit.
	MaxBytes int64
	// MaxAge drops records that were added longer ago than this. 0 means no limit.
	MaxAge time.Duration
	// SyncInterval is the group-commit interval of Disk: written records and the ack cursor
	// reach stable storage at most this long after Add or Ack returned. Default 200ms.
	SyncInterval time.Duration
	// SegmentSize is the size at which Disk starts a new segment file. Default 16 MiB, or an
	// eighth of MaxBytes when that is smaller (at least 64 KiB).
	SegmentSize int64
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// checkSizes refuses a batch holding a record that no queue with these options can hold.
func (o Options) checkSizes(records [][]byte) error {
	for _, r := range records {
		if len(r) > MaxRecord || (o.MaxBytes > 0 && int64(len(r)+RecordOverhead) > o.MaxBytes) {
			return fmt.Errorf("%w: %d bytes", ErrTooLarge, len(r))
		}
	}
	return nil
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// Tx is a read transaction: records handed out by Begin and not yet removed. Records are
// owned by the caller.
type Tx struct {
	Records [][]byte // oldest first

	owner any
	start pos // position of the first record
	end   pos // position after the last record
}

// Len returns the number of records in the transaction.
func (tx *Tx) Len() int { return len(tx.Records) }

// pos is a position in a queue: a record sequence number (counted from the queue's opening)
// and, for Disk, the segment, byte offset in it and logical byte offset in the whole stream.
type pos struct {
	seq     uint64
	seg     uint64
	off     int64
	logical int64
}

// DropReason says why records left a queue without being acked.
type DropReason string

// Drop reasons.
const (
	DropBytes   DropReason = "bytes"   // the byte limit was reached
	DropAge     DropReason = "age"     // older than MaxAge
	DropCorrupt DropReason = "corrupt" // failed its checksum (torn write, bit rot)
	// DropDiskFull: the disk was full (ENOSPC, EDQUOT) when records were added; Disk freed its
	// oldest segment to keep the newest records.
	DropDiskFull DropReason = "disk-full"
)

// Stats are a queue's counters for the status page and metrics.
type Stats struct {
	Records      int   // queued records (acked ones excluded)
	Bytes        int64 // bytes of queued records, headers included
	OldestAge    time.Duration
	Dropped      map[DropReason]uint64 // records dropped, by reason
	DroppedBytes uint64                // bytes of the records dropped
	Segments     int                   // Disk: segment files
	Syncs        uint64                // Disk: group commits that reached the disk
	SyncErrors   uint64                // Disk: failed fsyncs and ack-file writes
	WriteErrors  uint64                // Disk: failed Adds (ENOSPC with nothing older left to free)
	LastError    string                // Disk: the last write, sync or read error
}

// ageFloor is the earliest add time taken at face value for the age bound: a box without a
// real-time clock boots in 1970, and records written then must not all look decades old
// once NTP has set the clock.
var ageFloor = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// tooOld reports whether a record added at added is past maxAge at now.
func tooOld(added, now time.Time, maxAge time.Duration) bool {
	return maxAge > 0 && !added.Before(ageFloor) && now.Sub(added) > maxAge
}
