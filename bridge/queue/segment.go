package queue

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"time"
)

// On-disk format. A segment file starts with segMagic and holds records back to back; a
// record is a 12-byte header followed by its payload:
//
//	length  uint32 LE  payload bytes
//	added   uint32 LE  Unix seconds when the record was added (for the age bound)
//	crc     uint32 LE  CRC-32C of the first 8 header bytes and the payload
//
// A record whose header or checksum is wrong ends the segment's readable part: everything
// from it to the end of the file is a torn or corrupt tail and is dropped (and logged).
const (
	segMagic     = "WGQSEG1\n"
	segHeaderLen = int64(len(segMagic))
	// RecordOverhead is the bytes a record takes on top of its payload; Bytes counts it.
	RecordOverhead = 12
	// MaxRecord is the largest record payload a queue accepts.
	MaxRecord = 1 << 24
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// recHeader is a decoded record header.
type recHeader struct {
	length uint32
	added  uint32
	crc    uint32
}

func (h recHeader) addedTime() time.Time { return time.Unix(int64(h.added), 0) }

func parseHeader(b []byte) recHeader {
	return recHeader{
		length: binary.LittleEndian.Uint32(b[0:4]),
		added:  binary.LittleEndian.Uint32(b[4:8]),
		crc:    binary.LittleEndian.Uint32(b[8:12]),
	}
}

// appendRecord appends one framed record to dst.
func appendRecord(dst, payload []byte, added time.Time) []byte {
	var h [RecordOverhead]byte
	binary.LittleEndian.PutUint32(h[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(h[4:8], addedSeconds(added))
	c := crc32.Update(crc32.Checksum(h[:8], castagnoli), castagnoli, payload)
	binary.LittleEndian.PutUint32(h[8:12], c)
	dst = append(dst, h[:]...)
	return append(dst, payload...)
}

func addedSeconds(t time.Time) uint32 {
	s := t.Unix()
	switch {
	case s < 0:
		return 0
	case s > 1<<32-1:
		return 1<<32 - 1
	}
	return uint32(s)
}

// valid reports whether payload matches the header's length and checksum.
func (h recHeader) valid(hdr, payload []byte) bool {
	if int(h.length) != len(payload) {
		return false
	}
	return crc32.Update(crc32.Checksum(hdr[:8], castagnoli), castagnoli, payload) == h.crc
}

// errCorrupt marks the offset where a segment stops being readable.
type errCorrupt struct {
	off    int64
	reason string
}

func (e *errCorrupt) Error() string {
	return fmt.Sprintf("corrupt record at offset %d: %s", e.off, e.reason)
}

// scanSegment reads the records of a segment of size bytes from offset from on, calling fn
// (when not nil) for each valid one, and returns the offset after the last valid record.
// It returns an *errCorrupt when it stopped before size because of a bad header, a bad
// checksum or a torn record, and other errors for I/O failures. It never panics.
func scanSegment(r io.ReaderAt, size, from int64, fn func(off int64, h recHeader, payload []byte)) (int64, error) {
	if from <= segHeaderLen {
		var magic [len(segMagic)]byte
		if n, err := r.ReadAt(magic[:], 0); n < len(magic) || string(magic[:]) != segMagic {
			if err != nil && !errors.Is(err, io.EOF) {
				return 0, err
			}
			return 0, &errCorrupt{off: 0, reason: "bad segment header"}
		}
		from = segHeaderLen
	}
	br := bufio.NewReaderSize(io.NewSectionReader(r, from, size-from), 256<<10)
	off := from
	var hdr [RecordOverhead]byte
	var payload []byte
	for off < size {
		if size-off < RecordOverhead {
			return off, &errCorrupt{off: off, reason: "torn header"}
		}
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return off, readErr(off, err)
		}
		h := parseHeader(hdr[:])
		if h.length > MaxRecord || int64(h.length) > size-off-RecordOverhead {
			return off, &errCorrupt{off: off, reason: fmt.Sprintf("length %d past the end", h.length)}
		}
		if cap(payload) < int(h.length) {
			payload = make([]byte, h.length)
		}
		payload = payload[:h.length]
		if _, err := io.ReadFull(br, payload); err != nil {
			return off, readErr(off, err)
		}
		if !h.valid(hdr[:], payload) {
			return off, &errCorrupt{off: off, reason: "checksum mismatch"}
		}
		if fn != nil {
			fn(off, h, payload)
		}
		off += RecordOverhead + int64(h.length)
	}
	return off, nil
}

func readErr(off int64, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &errCorrupt{off: off, reason: "file shorter than expected"}
	}
	return fmt.Errorf("read at offset %d: %w", off, err)
}
