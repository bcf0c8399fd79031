package queue

import (
	"errors"
	"time"
)

// Begin hands out the oldest records not yet handed out, at most n of them, without removing
// them. The transaction is empty when there is nothing to hand out.
func (d *Disk) Begin(n int) (*Tx, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, ErrClosed
	}
	d.enforceBounds()
	tx := &Tx{owner: d, start: d.read}
	var data []byte
	var offs []int
	for len(offs) < n && d.read.seq < d.tail.seq {
		d.normalize(&d.read, false)
		if d.read.seq >= d.tail.seq {
			break
		}
		before := d.read
		data, offs = d.readChunk(data, offs, n, 0)
		if d.read == before {
			break // defensive: no progress (readChunk cuts what it cannot read)
		}
	}
	tx.Records = make([][]byte, len(offs))
	for i, o := range offs {
		next := len(data)
		if i+1 < len(offs) {
			next = offs[i+1]
		}
		tx.Records[i] = data[o:next:next]
	}
	tx.end = d.read
	return tx, nil
}

// maxChunk is the most readChunk reads at once (unless one record is larger).
const maxChunk = 1 << 20

// chunkFor is about what n records of s take on disk, so that a small transaction (the
// bridge's replay takes 100 records per tick at its default rate) reads about its own records
// rather than a whole chunk: the size of n average records of s plus a quarter, at least 4 KiB.
// A chunk that falls short is followed by another (Begin loops).
func chunkFor(s *segment, n int) int64 {
	avg := int64(RecordOverhead + 64)
	if s.count > 0 && s.size > segHeaderLen {
		avg = max((s.size-segHeaderLen)/int64(s.count), RecordOverhead)
	}
	return max(int64(n)*avg*5/4, 4<<10)
}

// readChunk reads records of the read cursor's segment into data (payloads back to back,
// offs[i] the start of record i) until n records or about chunkFor(n), at most maxChunk (at
// least least bytes: a record larger than that), and advances the cursor.
func (d *Disk) readChunk(data []byte, offs []int, n int, least int64) ([]byte, []int) {
	i := d.segIndex(d.read.seg)
	if i < 0 {
		return data, offs
	}
	s := d.segs[i]
	f, err := d.readerFor(s.id)
	if err != nil {
		d.cutSegment(d.read, err)
		return data, offs
	}
	want := min(s.size-d.read.off, max(min(chunkFor(s, n-len(offs)), maxChunk), least))
	if int64(cap(d.rbuf)) < want {
		d.rbuf = make([]byte, want)
	}
	buf := d.rbuf[:want]
	if _, err := f.ReadAt(buf, d.read.off); err != nil {
		d.cutSegment(d.read, err)
		return data, offs
	}
	for len(offs) < n && len(buf) >= RecordOverhead {
		h := parseHeader(buf)
		size := RecordOverhead + int(h.length)
		if h.length > MaxRecord || d.read.off+int64(size) > s.size {
			d.cutSegment(d.read, errors.New("bad record length"))
			return data, offs
		}
		if size > len(buf) {
			if len(offs) > 0 {
				break // the rest comes with the next chunk
			}
			return d.readChunk(data, offs, n, int64(size)) // one record larger than the chunk
		}
		if !h.valid(buf[:RecordOverhead], buf[RecordOverhead:size]) {
			d.cutSegment(d.read, errors.New("checksum mismatch"))
			return data, offs
		}
		offs = append(offs, len(data))
		data = append(data, buf[RecordOverhead:size]...)
		d.read = pos{seq: d.read.seq + 1, seg: s.id, off: d.read.off + int64(size), logical: d.read.logical + int64(size)}
		buf = buf[size:]
	}
	return data, offs
}

// Ack removes the records of tx and every older record. Acking a transaction whose records
// are already gone (dropped, or acked with a later one) does nothing.
func (d *Disk) Ack(tx *Tx) error {
	if tx == nil {
		return nil
	}
	if tx.owner != d {
		return ErrForeign
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	d.setHead(tx.end)
	return nil
}

// Nack rolls back: the next Begin hands out again every record not acked, tx's included.
func (d *Disk) Nack(tx *Tx) {
	if tx == nil || tx.owner != d {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.read = d.head
}

// Len returns the number of queued records (handed out but not acked included).
func (d *Disk) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.enforceBounds()
	return int(d.tail.seq - d.head.seq)
}

// Bytes returns the bytes of the queued records, headers included.
func (d *Disk) Bytes() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.enforceBounds()
	return d.tail.logical - d.head.logical
}

// OldestAge returns how long ago the oldest queued record was added (0 when empty).
func (d *Disk) OldestAge() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.enforceBounds()
	return d.oldestAge()
}

func (d *Disk) oldestAge() time.Duration {
	t, ok := d.oldest()
	if !ok || t.Before(ageFloor) {
		return 0
	}
	return max(d.opts.now().Sub(t), 0)
}

// Stats returns the queue's counters.
func (d *Disk) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.enforceBounds()
	st := Stats{
		Records: int(d.tail.seq - d.head.seq), Bytes: d.tail.logical - d.head.logical,
		OldestAge: d.oldestAge(), Dropped: map[DropReason]uint64{}, DroppedBytes: d.droppedBytes,
		Segments: len(d.segs), Syncs: d.syncs, SyncErrors: d.syncErrors,
		WriteErrors: d.writeErrors, LastError: d.lastErr,
	}
	for k, v := range d.dropped {
		st.Dropped[k] = v
	}
	return st
}
