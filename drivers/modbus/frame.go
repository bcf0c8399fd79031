package modbus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// RTU framing. An RTU frame is unit id, function code, data and a CRC (low byte first); its
// end is marked on the wire by 3.5 characters of silence, which the kernel's serial buffer does
// not keep. So frames are found in the byte stream by their structure: from each position,
// the function code (and byte count) give the length a frame starting there would have, and
// the CRC decides whether one does. A position whose candidate frame is complete with a wrong
// CRC was a false start (a byte inside a stale frame, line noise): the reader slides past it.

// rtuMaxFrame is the longest RTU frame.
const rtuMaxFrame = 256

// rtuFrameLen is the length of the frame that would start at b[0]: -1 when no reply frame can
// start there (unit 0 or above 247, a function code no device answers with), 0 when more
// bytes are needed to tell. The length may exceed len(b).
func rtuFrameLen(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	if b[0] == 0 || b[0] > 247 {
		return -1
	}
	fc := b[1]
	if fc&fcException != 0 {
		if rtuKnownFunction(fc &^ fcException) {
			return 5 // unit, function, exception code, CRC
		}
		return -1
	}
	switch fc {
	case 5, 6, 8, 11, 15, 16: // echo, diagnostics, event counter: 4 data bytes
		return 8
	case 7: // read exception status: 1 data byte
		return 5
	case 22: // mask write register: 6 data bytes
		return 10
	case 24: // read FIFO queue: a 16-bit byte count
		if len(b) < 4 {
			return 0
		}
		n := int(binary.BigEndian.Uint16(b[2:]))
		if n < 2 || 6+n > rtuMaxFrame {
			return -1
		}
		return 6 + n
	case 1, 2, 3, 4, 12, 17, 20, 21, 23: // a byte count, then that many bytes
		if len(b) < 3 {
			return 0
		}
		n := int(b[2])
		switch {
		case n == 0 || 5+n > rtuMaxFrame:
			return -1
		case (fc == 3 || fc == 4 || fc == 23) && n%2 == 1: // registers come in pairs of bytes
			return -1
		}
		return 5 + n
	}
	return -1
}

// rtuKnownFunction reports whether rtuFrameLen can frame replies to function fc.
func rtuKnownFunction(fc byte) bool {
	switch fc {
	case 1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 15, 16, 17, 20, 21, 22, 23, 24:
		return true
	}
	return false
}

// rtuReader splits the bytes read from a serial line into frames. It holds only the bytes
// that may still start a frame: at most rtuMaxFrame-1 of them between calls to next.
type rtuReader struct {
	buf []byte
	// want is the unit and function of the request in flight: a complete candidate frame for
	// them with a wrong CRC is kept in badCRC, to name the failure if nothing better arrives.
	want   [2]byte
	badCRC []byte
	// noise counts the bytes dropped that were not part of a frame.
	noise int
	// wrong is the last frame from the unit that did not answer the request.
	wrong error
	// out holds the frame next returned last, reused from call to call.
	out []byte
}

// reset forgets every byte and starts a new request for unit and function fc.
func (r *rtuReader) reset(unit, fc byte) {
	r.buf, r.want, r.badCRC, r.noise, r.wrong = r.buf[:0], [2]byte{unit, fc}, nil, 0, nil
}

// add appends bytes read from the line.
func (r *rtuReader) add(b []byte) { r.buf = append(r.buf, b...) }

// pending is the number of bytes held that may still start a frame.
func (r *rtuReader) pending() int { return len(r.buf) }

// next returns the first complete frame with a valid CRC (CRC included, in the reader's own
// buffer: valid until the next call) and drops it and every byte before it; false when the bytes so far hold none, after dropping the
// leading bytes that can no longer start one. A frame that lies inside the span of an earlier
// candidate still incomplete is not taken yet (it may be bytes of that frame's data: a reply
// being received must not lose its start to a frame-shaped run inside it), unless answers
// says it is the answer to the request in flight (then the earlier candidate was a false
// start, and the answer must not wait for it); the frames passed over before it are returned
// in skipped. answers may be nil.
func (r *rtuReader) next(answers func(frame []byte) bool) (frame []byte, skipped [][]byte, ok bool) {
	n := len(r.buf)
	undecided := n // the first position that may still start a frame
	cover := 0     // the end of the furthest span of an incomplete candidate
	var passed [][2]int
	for i := 0; i < n; i++ {
		l := rtuFrameLen(r.buf[i:])
		switch {
		case l < 0:
			continue
		case l == 0 || i+l > n:
			undecided = min(undecided, i)
			cover = max(cover, i+max(l, rtuMaxFrame))
			continue
		}
		f := r.buf[i : i+l]
		if rtuCRC(f[:l-2]) != binary.LittleEndian.Uint16(f[l-2:]) {
			if f[0] == r.want[0] && (f[1] == r.want[1] || f[1] == r.want[1]|fcException) {
				r.badCRC = append(r.badCRC[:0], f...)
			}
			continue
		}
		if i < cover && (answers == nil || !answers(f)) {
			passed = append(passed, [2]int{i, i + l})
			continue
		}
		end := 0
		for _, p := range passed {
			if p[0] >= end && p[1] <= i {
				skipped = append(skipped, append([]byte(nil), r.buf[p[0]:p[1]]...))
				end = p[1]
			}
		}
		r.out = append(r.out[:0], f...)
		frame = r.out
		r.noise += i
		r.buf = r.buf[:copy(r.buf, r.buf[i+l:])]
		return frame, skipped, true
	}
	r.noise += undecided
	r.buf = r.buf[:copy(r.buf, r.buf[undecided:])]
	return nil, nil, false
}

// flush returns the complete frames with a valid CRC among the bytes held, in order and not
// overlapping, as if every incomplete candidate had ended (the line fell silent), and drops
// every byte.
func (r *rtuReader) flush() [][]byte {
	var out [][]byte
	for i := 0; i < len(r.buf); {
		l := rtuFrameLen(r.buf[i:])
		if l > 0 && i+l <= len(r.buf) && rtuCRC(r.buf[i:i+l-2]) == binary.LittleEndian.Uint16(r.buf[i+l-2:]) {
			out = append(out, append([]byte(nil), r.buf[i:i+l]...))
			i += l
			continue
		}
		r.noise++
		i++
	}
	r.buf = r.buf[:0]
	return out
}

// take sorts the complete frames held against the request PDU req (to the unit reset named).
// It hands every frame that does not answer req to late and drops it; done is set by the
// answer: a read's data or a write's nil, or the *exceptionError the device replied with.
func (r *rtuReader) take(req []byte, late lateFunc) (data []byte, done bool, err error) {
	unit := r.want[0]
	answers := func(f []byte) bool {
		if f[0] != unit {
			return false
		}
		_, err := checkReply(req, f[1:len(f)-2])
		return asProtocolError(err) == nil
	}
	for {
		f, skipped, ok := r.next(answers)
		if !ok {
			return nil, false, nil
		}
		for _, sf := range skipped {
			r.sortLate(req, sf, late)
		}
		if f[0] != unit {
			late(f[0], slices.Clone(f), fmt.Errorf("from unit %d, not %d", f[0], unit))
			continue
		}
		data, err := checkReply(req, f[1:len(f)-2]) // data lies in r.out: valid until the next call
		pe := asProtocolError(err)
		if pe == nil {
			return data, true, err
		}
		pe.frame = slices.Clone(f)
		r.wrong = pe
		late(f[0], pe.frame, pe)
	}
}

// sortLate hands a frame that is not the answer to late, with the reason.
func (r *rtuReader) sortLate(req, f []byte, late lateFunc) {
	if f[0] != r.want[0] {
		late(f[0], f, fmt.Errorf("from unit %d, not %d", f[0], r.want[0]))
		return
	}
	_, err := checkReply(req, f[1:len(f)-2])
	if err == nil {
		err = errors.New("came in front of the answer")
	}
	late(f[0], f, err)
}

// failure is why no answer came: a frame from the unit that did not answer the request,
// else a reply with a wrong CRC, else bytes that made no frame, else a timeout.
func (r *rtuReader) failure() error {
	switch {
	case r.wrong != nil:
		return r.wrong
	case r.badCRC != nil:
		return protoErr(kindCRC, r.badCRC, "crc error in reply")
	case r.noise+r.pending() > 0:
		return protoErr(kindGarbage, append([]byte(nil), r.buf...), "no valid reply (%d bytes that make no frame)", r.noise+r.pending())
	}
	return errTimeout
}

// rtuCRC is the Modbus RTU CRC-16 (polynomial 0xA001 reflected, initial 0xFFFF).
func rtuCRC(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, c := range b {
		crc = crc>>8 ^ crcTable[byte(crc)^c]
	}
	return crc
}

var crcTable = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i)
		for range 8 {
			if c&1 != 0 {
				c = c>>1 ^ 0xA001
			} else {
				c >>= 1
			}
		}
		t[i] = c
	}
	return t
}()

// rtuEncode appends the RTU frame of pdu for unit to dst: unit, PDU, CRC low byte first.
func rtuEncode(dst []byte, unit byte, pdu []byte) []byte {
	adu := append(dst, unit)
	adu = append(adu, pdu...)
	return binary.LittleEndian.AppendUint16(adu, rtuCRC(adu[len(dst):]))
}
