package queue

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// commitLoop runs the group commit every SyncInterval while there is something to commit or
// records to hold to the age bound, until Close. An empty, committed queue (a live bridge's)
// waits for wake instead: an idle gateway must not wake five times a second for nothing.
func (d *Disk) commitLoop() {
	defer close(d.done)
	t := time.NewTimer(d.opts.SyncInterval)
	defer t.Stop()
	for {
		if !d.pending() {
			select {
			case <-d.stop:
				return
			case <-d.kick:
			}
			t.Reset(d.opts.SyncInterval)
		}
		select {
		case <-d.stop:
			return
		case <-t.C:
			t.Reset(d.opts.SyncInterval)
			d.mu.Lock()
			d.enforceBounds()
			d.mu.Unlock()
			if err := d.commit(); err != nil {
				d.mu.Lock()
				repeated := d.lastErr == err.Error()
				d.lastErr = err.Error()
				d.mu.Unlock()
				if !repeated {
					d.log.Error("queue: commit failed; retrying every sync interval", "dir", d.dir, "err", err)
				}
			}
		}
	}
}

// wake tells the commit loop that there is something to commit. Called with mu held.
func (d *Disk) wake() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// pending reports whether the commit loop has work: records or a cursor not yet durable, or
// records that the age bound may have to drop.
func (d *Disk) pending() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dirty || d.dirDirty || d.ackDirty || len(d.unsynced) > 0 || d.opts.MaxAge > 0 && d.head.seq < d.tail.seq
}

// commit makes the written records and the ack cursor durable. The fsyncs run without the
// lock, so that Add does not wait for the disk.
func (d *Disk) commit() error {
	d.mu.Lock()
	files := d.unsynced
	d.unsynced = nil
	active := d.active
	syncActive := d.dirty && active != nil
	d.dirty = false
	dirDirty := d.dirDirty
	d.dirDirty = false
	ackDirty, head := d.ackDirty, d.head
	d.ackDirty = false
	d.mu.Unlock()

	var errs []error
	for _, h := range files {
		errs = append(errs, h.f.Sync(), h.f.Close())
	}
	if syncActive {
		errs = append(errs, active.Sync())
	}
	if dirDirty {
		errs = append(errs, syncDir(d.dir))
	}
	if ackDirty {
		errs = append(errs, writeAck(d.dir, head.seg, head.off))
	}
	err := errors.Join(errs...)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		d.syncErrors++
		d.ackDirty = d.ackDirty || ackDirty
		d.dirty = d.dirty || syncActive
		d.dirDirty = d.dirDirty || dirDirty
		return fmt.Errorf("queue: commit: %w", err)
	}
	if syncActive || len(files) > 0 || ackDirty {
		d.syncs++
	}
	return nil
}

// segIndex returns the index in d.segs of segment id, or -1.
func (d *Disk) segIndex(id uint64) int {
	for i, s := range d.segs {
		if s.id == id {
			return i
		}
	}
	return -1
}

// normalize moves p from the end of a segment to the start of the next one. With isHead it
// also deletes the segments p has passed.
func (d *Disk) normalize(p *pos, isHead bool) {
	for {
		i := d.segIndex(p.seg)
		if i < 0 && !isHead {
			*p = d.head // the segment is gone: p was behind the head
			return
		}
		if i < 0 || i == len(d.segs)-1 || p.off < d.segs[i].size {
			break
		}
		next := d.segs[i+1]
		*p = pos{seq: next.firstSeq, seg: next.id, off: segHeaderLen, logical: next.base}
	}
	if !isHead {
		return
	}
	for len(d.segs) > 1 && d.segs[0].id < p.seg {
		s := d.segs[0]
		if f, ok := d.readers[s.id]; ok {
			f.Close()
			delete(d.readers, s.id)
		}
		if err := os.Remove(s.path); err != nil {
			d.log.Warn("queue: cannot delete consumed segment", "file", s.path, "err", err)
		}
		d.segs = d.segs[1:]
	}
}

// setHead moves the head forward to p and the read cursor with it if it fell behind.
func (d *Disk) setHead(p pos) {
	if p.seq <= d.head.seq && p.logical <= d.head.logical {
		return
	}
	d.head = p
	d.normalize(&d.head, true)
	d.ackDirty = true
	d.wake()
	if d.read.logical <= d.head.logical {
		d.read = d.head
	}
}

// enforceBounds drops the oldest records past the byte and age limits.
func (d *Disk) enforceBounds() {
	for d.opts.MaxBytes > 0 && d.tail.logical-d.head.logical > d.opts.MaxBytes && d.dropHead(DropBytes) {
	}
	if d.opts.MaxAge <= 0 {
		return
	}
	now := d.opts.now()
	for d.head.seq < d.tail.seq {
		t, ok := d.oldest()
		if !ok || !tooOld(t, now, d.opts.MaxAge) || !d.dropHead(DropAge) {
			return
		}
	}
}

// oldest returns when the head record was added.
func (d *Disk) oldest() (time.Time, bool) {
	if d.head.seq >= d.tail.seq {
		return time.Time{}, false
	}
	if d.headTime.ok && d.headTime.seq == d.head.seq {
		return d.headTime.t, true
	}
	h, _, ok := d.headerAt(d.head)
	if !ok {
		return time.Time{}, false
	}
	d.headTime.seq, d.headTime.t, d.headTime.ok = d.head.seq, h.addedTime(), true
	return d.headTime.t, true
}

// headerAt reads the header of the record at p. When the record is unreadable it cuts the
// segment there (counting the loss) and reports false; the caller retries from the new p.
func (d *Disk) headerAt(p pos) (recHeader, []byte, bool) {
	var hdr [RecordOverhead]byte
	f, err := d.readerFor(p.seg)
	if err == nil {
		_, err = f.ReadAt(hdr[:], p.off)
	}
	if err != nil {
		d.cutSegment(p, fmt.Errorf("read header: %w", err))
		return recHeader{}, nil, false
	}
	h := parseHeader(hdr[:])
	if i := d.segIndex(p.seg); h.length > MaxRecord || (i >= 0 && p.off+RecordOverhead+int64(h.length) > d.segs[i].size) {
		d.cutSegment(p, errors.New("bad record length"))
		return recHeader{}, nil, false
	}
	return h, hdr[:], true
}

// dropHead drops the record at the head, counting it under reason.
func (d *Disk) dropHead(reason DropReason) bool {
	d.normalize(&d.head, true)
	if d.head.seq >= d.tail.seq {
		return false
	}
	h, _, ok := d.headerAt(d.head)
	if !ok {
		return d.head.seq < d.tail.seq // cut: the loss is counted; go on with what is left
	}
	n := RecordOverhead + int64(h.length)
	d.dropped[reason]++
	d.droppedBytes += uint64(n)
	d.setHead(pos{seq: d.head.seq + 1, seg: d.head.seg, off: d.head.off + n, logical: d.head.logical + n})
	return true
}

// cutSegment marks the records of p's segment from p on as lost (a read found them corrupt)
// and moves the cursors past them.
func (d *Disk) cutSegment(p pos, cause error) {
	i := d.segIndex(p.seg)
	if i < 0 {
		return
	}
	s := d.segs[i]
	lost := s.firstSeq + uint64(s.count) - p.seq
	d.log.Warn("queue: dropping unreadable records", "file", s.path, "offset", p.off,
		"records", lost, "err", cause)
	d.dropped[DropCorrupt] += lost
	d.droppedBytes += uint64(s.size - p.off)
	d.lastErr = cause.Error()
	s.count -= int(lost)
	s.size = p.off
	if i == len(d.segs)-1 {
		if d.active != nil {
			d.unsynced = append(d.unsynced, heldFile{s.id, d.active})
			d.active = nil
			d.wake()
		}
		d.tail = p
	}
	d.normalize(&d.head, true)
	if d.read.seg == s.id && d.read.off > p.off {
		d.read = p
	}
	d.normalize(&d.read, false)
}

func (d *Disk) readerFor(id uint64) (*os.File, error) {
	if f, ok := d.readers[id]; ok {
		return f, nil
	}
	i := d.segIndex(id)
	if i < 0 {
		return nil, fmt.Errorf("segment %016x is gone", id)
	}
	f, err := os.Open(d.segs[i].path)
	if err != nil {
		return nil, err
	}
	d.readers[id] = f
	return f, nil
}
