package queue

import (
	"errors"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/wellgate/wellgate/internal/logx"
)

// fullLogEvery is how often a disk that stays full may log a dropped segment.
const fullLogEvery = 10 * time.Second

// diskFull reports whether err says the file system (or the user's quota) has no room left.
func diskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// freeOldest makes room after a write failed with cause (a full disk): it drops the oldest
// segment, counting its records not yet acked as DropDiskFull, deletes its file and closes
// every handle on it (an open handle would keep the space allocated). Records of the segment
// handed out by Begin and not acked are gone too: their Ack does nothing, a Nack starts at
// the new head. It reports false when there is nothing left to free, only an empty segment.
// Called with mu held.
func (d *Disk) freeOldest(cause error) bool {
	if len(d.segs) == 0 || (len(d.segs) == 1 && d.segs[0].size <= segHeaderLen) {
		return false
	}
	s := d.segs[0]
	lost, bytes := uint64(0), int64(0)
	if d.head.seg == s.id {
		lost = s.firstSeq + uint64(s.count) - d.head.seq
		bytes = s.size - d.head.off
	}
	d.dropped[DropDiskFull] += lost
	d.droppedBytes += uint64(max(bytes, 0))
	d.lastErr = cause.Error()
	d.releaseHandles(s.id)
	if len(d.segs) > 1 {
		next := d.segs[1]
		d.head = pos{seq: next.firstSeq, seg: next.id, off: segHeaderLen, logical: next.base}
		d.normalize(&d.head, true) // deletes s
		if d.read.seg == s.id || d.read.logical < d.head.logical {
			d.read = d.head
		}
		d.ackDirty = true
	} else {
		if err := os.Remove(s.path); err != nil {
			d.log.Warn("queue: cannot delete the oldest segment on a full disk", "file", s.path, "err", err)
		}
		d.segs = d.segs[:0]
		d.head, d.read, d.ackDirty = d.tail, d.tail, true
	}
	d.wake()
	d.fullLog.Log(d.log, slog.LevelWarn, "disk full",
		"queue: disk full: dropped the oldest records to keep the newest",
		"file", s.path, "records", lost, "bytes", bytes, "err", logx.Err(cause))
	return true
}

// releaseHandles closes the append, commit and read handles of segment id, which is about to
// be deleted. Called with mu held.
func (d *Disk) releaseHandles(id uint64) {
	if d.active != nil && d.segs[len(d.segs)-1].id == id {
		d.active.Close()
		d.active, d.dirty = nil, false
	}
	kept := d.unsynced[:0]
	for _, h := range d.unsynced {
		if h.id == id {
			h.f.Close()
			continue
		}
		kept = append(kept, h)
	}
	clear(d.unsynced[len(kept):])
	d.unsynced = kept
	if f, ok := d.readers[id]; ok {
		f.Close()
		delete(d.readers, id)
	}
}
