package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

const (
	segSuffix = ".seg"
	ackName   = "ack"
	ackLen    = 20 // segment id, offset, CRC-32C
)

func segName(id uint64) string { return fmt.Sprintf("%016x%s", id, segSuffix) }

// listSegments returns the ids of the segment files in dir, oldest first.
func listSegments(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("queue: list %s: %w", dir, err)
	}
	var ids []uint64
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasSuffix(name, segSuffix) {
			continue
		}
		id, err := strconv.ParseUint(strings.TrimSuffix(name, segSuffix), 16, 64)
		if err != nil || segName(id) != name {
			continue // not ours
		}
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, nil
}

// readAck returns the durable ack cursor: the segment and offset of the oldest record not
// acked. ok is false when there is no usable ack file.
func readAck(dir string, log *slog.Logger) (seg uint64, off int64, ok bool) {
	path := filepath.Join(dir, ackName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, false
	}
	if err != nil || len(b) != ackLen || crc32.Checksum(b[:16], castagnoli) != binary.LittleEndian.Uint32(b[16:]) {
		log.Warn("queue: ack cursor unreadable, replaying from the oldest segment (duplicates possible)",
			"file", path, "err", err)
		return 0, 0, false
	}
	return binary.LittleEndian.Uint64(b[0:8]), int64(binary.LittleEndian.Uint64(b[8:16])), true
}

// writeAck replaces the ack file atomically and durably.
func writeAck(dir string, seg uint64, off int64) error {
	var b [ackLen]byte
	binary.LittleEndian.PutUint64(b[0:8], seg)
	binary.LittleEndian.PutUint64(b[8:16], uint64(off))
	binary.LittleEndian.PutUint32(b[16:], crc32.Checksum(b[:16], castagnoli))
	tmp := filepath.Join(dir, ackName+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("queue: write ack cursor: %w", err)
	}
	_, err = f.Write(b[:])
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, ackName))
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("queue: write ack cursor: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// recover rebuilds the in-memory index from the files in d.dir: it deletes fully acked
// segments, scans the others from the ack cursor on, and drops (with a log line) every torn
// or corrupt tail. New records always go to a fresh segment, so nothing is ever appended
// after a damaged tail.
func (d *Disk) recover() error {
	ids, err := listSegments(d.dir)
	if err != nil {
		return err
	}
	ackSeg, ackOff, haveAck := readAck(d.dir, d.log)
	var seq uint64
	var logical int64
	for _, id := range ids {
		path := filepath.Join(d.dir, segName(id))
		if haveAck && id < ackSeg {
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("queue: remove acked segment: %w", err)
			}
			continue
		}
		from := segHeaderLen
		if haveAck && id == ackSeg {
			from = max(ackOff, segHeaderLen)
		}
		s, err := d.scanForRecovery(id, path, from)
		if err != nil {
			return err
		}
		s.firstSeq, s.base = seq, logical-(from-segHeaderLen)
		seq += uint64(s.count)
		logical = s.base + s.size - segHeaderLen
		d.segs = append(d.segs, s)
		if len(d.segs) == 1 {
			d.head = pos{seq: 0, seg: id, off: min(from, s.size), logical: 0}
		}
	}
	if len(d.segs) == 0 {
		d.nextID = ackSeg + 1
		return nil
	}
	last := d.segs[len(d.segs)-1]
	d.nextID = last.id + 1
	d.tail = pos{seq: seq, seg: last.id, off: last.size, logical: logical}
	d.read = d.head
	d.normalize(&d.head, true)
	d.read = d.head
	return nil
}

// scanForRecovery scans one segment file from offset from and logs a damaged tail.
func (d *Disk) scanForRecovery(id uint64, path string, from int64) (*segment, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("queue: open segment: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("queue: stat segment: %w", err)
	}
	size := fi.Size()
	s := &segment{id: id, path: path}
	if from > size {
		from = size
	}
	end, err := scanSegment(f, size, from, func(int64, recHeader, []byte) { s.count++ })
	var ce *errCorrupt
	switch {
	case errors.As(err, &ce):
		d.log.Warn("queue: dropping torn or corrupt segment tail", "file", path,
			"offset", ce.off, "bytes", size-ce.off, "reason", ce.reason)
		d.dropped[DropCorrupt]++
		d.droppedBytes += uint64(size - ce.off)
		if end < from {
			end = from // bad magic: nothing readable
		}
	case err != nil:
		return nil, fmt.Errorf("queue: scan %s: %w", path, err)
	}
	s.size = max(end, segHeaderLen)
	if end < segHeaderLen {
		s.size = segHeaderLen
	}
	return s, nil
}
