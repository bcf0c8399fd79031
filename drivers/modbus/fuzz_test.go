package modbus

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/wellgate/wellgate/drivers"
)

// fuzzRequest builds a read of table tb with up to three tags of the kinds and orders the fuzzer
// picks, laid out from offset 0 with the gaps it picks.
func fuzzRequest(spec []byte) (*request, []drivers.Sample) {
	r := &request{table: holdingRegisters}
	if len(spec) > 0 && spec[0]&1 == 1 {
		r.table = coils
	}
	at := 0
	for i := 1; i+2 < len(spec) && len(r.tags) < 3; i += 3 {
		t := &tag{info: &drivers.TagInfo{Name: "t"}, x: &tagExtra{}, index: int32(len(r.tags)), table: r.table, start: uint16(at), bit: -1}
		if r.table.isBit() {
			t.kind, t.size = kBool, 1
		} else {
			t.kind = kind(1 + int(spec[i])%10)
			t.order = byteOrder(spec[i+1] % 4)
			t.size = uint16(t.kind.registers())
			switch t.kind {
			case kString:
				t.size = uint16(1 + int(spec[i+2])%8)
			case kBool:
				t.bit = int8(spec[i+2] % 16)
			default:
				t.scaled, t.x.scale, t.x.offset = spec[i+2]&1 == 1, 0.5, -1
			}
		}
		t.info.Type = t.kind.sparkplug()
		if t.scaled {
			t.info.Type = drivers.Double
		}
		r.tags = append(r.tags, t)
		at += int(t.size) + int(spec[i+2]%3)
	}
	if len(r.tags) == 0 {
		return nil, nil
	}
	last := r.tags[len(r.tags)-1]
	r.count = uint16(last.end())
	return r, make([]drivers.Sample, len(r.tags))
}

// FuzzDecodeResponse feeds arbitrary response data to the decoder: it must never panic, must
// refuse data of the wrong length, and must give every tag a value of its published type.
func FuzzDecodeResponse(f *testing.F) {
	f.Add([]byte{0, 3, 0, 0, 9, 1, 1, 10, 3, 2}, []byte{0x3f, 0x80, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0}, []byte{0xff})
	f.Add([]byte{0, 10, 3, 7}, []byte("WELL1\x00  \xff\xfe"))
	f.Fuzz(func(t *testing.T, spec, data []byte) {
		r, out := fuzzRequest(spec)
		if r == nil {
			return
		}
		err := decodeResponse(r, data, time.Time{}, out)
		if err != nil {
			return
		}
		for _, tg := range r.tags {
			s := out[tg.index]
			if s.Quality != drivers.Good || s.Value.Type() != tg.typ() || s.Value.IsNull() {
				t.Fatalf("tag %+v decoded to %v (%v)", tg, s.Value, s.Value.Type())
			}
		}
	})
}

// fuzzOp is a request the driver could send, picked by the fuzzer: one of the eight functions,
// with a quantity that fits the function.
func fuzzOp(sel byte, addr, qty uint16) []byte {
	fcs := []byte{fcReadCoils, fcReadDiscrete, fcReadHolding, fcReadInput, fcWriteCoil, fcWriteRegister, fcWriteCoils, fcWriteRegisters}
	fc := fcs[int(sel)%len(fcs)]
	tg := &tag{info: &drivers.TagInfo{Name: "t"}, start: addr, bit: -1}
	switch fc {
	case fcReadCoils, fcReadDiscrete:
		return readOp(&request{table: coils, start: addr, count: 1 + qty%2000}).withFC(fc)
	case fcReadHolding, fcReadInput:
		return readOp(&request{table: holdingRegisters, start: addr, count: 1 + qty%125}).withFC(fc)
	case fcWriteCoil:
		return writeSingleOp(fc, tg, 0xFF00*(qty&1)).pdu
	case fcWriteRegister:
		return writeSingleOp(fc, tg, qty).pdu
	case fcWriteCoils:
		n := 1 + qty%16
		return writeMultipleOp(fc, tg, n, make([]byte, (n+7)/8)).pdu
	}
	n := 1 + qty%8
	return writeMultipleOp(fc, tg, n, make([]byte, 2*n)).pdu
}

func (o *op) withFC(fc byte) []byte { o.pdu[0] = fc; return o.pdu }

// replyTo is the frame a device sends in answer to req, with data made from seed.
func replyTo(unit byte, req []byte, seed byte) []byte {
	fc := req[0]
	pdu := []byte{fc}
	switch fc {
	case fcReadCoils, fcReadDiscrete, fcReadHolding, fcReadInput:
		n := replyDataLen(req)
		pdu = append(pdu, byte(n))
		for i := range n {
			pdu = append(pdu, seed+byte(i))
		}
	default:
		pdu = append(pdu, req[1:5]...)
	}
	return rtuEncode(nil, unit, pdu)
}

// readStream feeds stream to a reader in chunks of chunk bytes, as the link does, sorting the
// frames against req to unit. It checks that every frame surfaced is a piece of the stream
// with a valid CRC and the length its header gives, and that the reader holds fewer than
// rtuMaxFrame bytes between reads. It returns the answer, if one came, and the late frames.
func readStream(t *testing.T, unit byte, req, stream []byte, chunk int) (answer []byte, done bool, late [][]byte, err error) {
	t.Helper()
	var r rtuReader
	r.reset(unit, req[0])
	check := func(f []byte) {
		if !bytes.Contains(stream, f) || rtuFrameLen(f) != len(f) || rtuCRC(f[:len(f)-2]) != binary.LittleEndian.Uint16(f[len(f)-2:]) {
			t.Fatalf("surfaced % x, not a valid frame of the stream", f)
		}
	}
	onLate := func(_ byte, f []byte, why error) {
		check(f)
		if why == nil {
			t.Fatalf("late frame % x without a reason", f)
		}
		late = append(late, f)
	}
	for at := 0; at < len(stream); at += chunk {
		r.add(stream[at:min(at+chunk, len(stream))])
		if answer, done, err = r.take(req, onLate); done {
			return answer, done, late, err
		}
		if r.pending() >= rtuMaxFrame {
			t.Fatalf("reader holds %d bytes", r.pending())
		}
	}
	return nil, false, late, r.failure()
}

// answersAt reports whether a frame that answers req to unit starts at stream[i].
func answersAt(unit byte, req, stream []byte, i int) bool {
	l := rtuFrameLen(stream[i:])
	if l <= 0 || i+l > len(stream) || stream[i] != unit {
		return false
	}
	f := stream[i : i+l]
	if rtuCRC(f[:l-2]) != binary.LittleEndian.Uint16(f[l-2:]) {
		return false
	}
	_, err := checkReply(req, f[1:l-2])
	var pe *protocolError
	return !errors.As(err, &pe)
}

// FuzzRTUFrames feeds arbitrary bytes, in arbitrary chunks, through the RTU frame reader as
// if they came down the serial line in answer to a request: nothing may panic, every frame
// surfaced must be a valid frame of the stream, the reader stays bounded, and an answer
// accepted must be a frame of the stream that answers the request (unit, function, length,
// echo).
func FuzzRTUFrames(f *testing.F) {
	f.Add(byte(1), byte(0), uint16(0), uint16(7), byte(3), []byte{0x02, 0x01, 0x01, 0x01, 0x90, 0x0c, 0x01, 0x01, 0x01, 0x05, 0x91, 0x8b})
	f.Add(byte(1), byte(2), uint16(0), uint16(1), byte(1), withCRC([]byte{1, 3, 4, 0x3f, 0x80, 0, 0}))
	f.Add(byte(2), byte(2), uint16(0), uint16(0), byte(7), append([]byte{9, 9}, withCRC([]byte{2, 0x83, 2})...))
	f.Fuzz(func(t *testing.T, unit, sel byte, addr, qty uint16, chunk byte, stream []byte) {
		unit = 1 + unit%247
		req := fuzzOp(sel, addr, qty)
		data, done, _, err := readStream(t, unit, req, stream, 1+int(chunk)%64)
		if !done {
			return
		}
		found := false
		for i := range stream {
			found = found || answersAt(unit, req, stream, i)
		}
		if !found {
			t.Fatalf("accepted %x (%v) for request %x from a stream holding no answer: % x", data, err, req, stream)
		}
	})
}

// FuzzRTUStaleFrames builds what a shared bus delivers after a slow slave: noise, a stale
// frame cut short, whole stale frames (from another unit, or from the same unit in answer to
// another request), then the reply, then more stale bytes, read in arbitrary chunks. The reader
// must find the reply's own data, unless the bytes before it hold another frame that answers
// the request just as well (which RTU cannot tell apart), and must report every stale frame
// it skips as late.
func FuzzRTUStaleFrames(f *testing.F) {
	// The bytes: a late 02 01 01 01 90 0c in front of unit 1's coil read.
	f.Add([]byte{}, byte(2), byte(0), uint16(0), uint16(7), byte(0), byte(1), byte(0), uint16(0), uint16(7), byte(1), byte(6))
	f.Add([]byte{0xff, 0x01}, byte(1), byte(2), uint16(5), uint16(1), byte(3), byte(1), byte(2), uint16(0), uint16(1), byte(3), byte(64))
	f.Add([]byte{0x03, 0x03}, byte(4), byte(5), uint16(9), uint16(2), byte(4), byte(3), byte(5), uint16(9), uint16(3), byte(9), byte(2))
	f.Fuzz(func(t *testing.T, noise []byte, staleUnit, staleSel byte, staleAddr, staleQty uint16, cut,
		unit, sel byte, addr, qty uint16, seed, chunk byte) {
		unit, staleUnit = 1+unit%247, 1+staleUnit%247
		req := fuzzOp(sel, addr, qty)
		staleReq := fuzzOp(staleSel, staleAddr, staleQty)
		stale := replyTo(staleUnit, staleReq, seed^0x5a)
		reply := replyTo(unit, req, seed)
		var stream []byte
		stream = append(stream, noise...)
		stream = append(stream, stale[:int(cut)%len(stale)]...)
		stream = append(stream, stale...)
		at := len(stream)
		stream = append(stream, reply...)
		stream = append(stream, stale[:int(cut)%len(stale)]...)
		data, done, late, err := readStream(t, unit, req, stream, 1+int(chunk)%64)
		want, _ := checkReply(req, reply[1:len(reply)-2])
		if done && err == nil && bytes.Equal(data, want) {
			staleAnswers := staleUnit == unit && answersAt(unit, req, stale, 0)
			if !staleAnswers && !slices.ContainsFunc(late, func(f []byte) bool { return bytes.Equal(f, stale) }) && !overlapped(stream, stale, len(noise)) {
				t.Fatalf("stale frame % x skipped without being reported late (late: % x)", stale, late)
			}
			return
		}
		for i := range at {
			if answersAt(unit, req, stream, i) {
				return // an earlier frame answers the request: RTU cannot tell it from the reply
			}
		}
		if straddles(stream, at) {
			return // a valid frame runs from the bytes before the reply into it, and comes first
		}
		t.Fatalf("reply % x to %x not found after stale % x: got %x, done %v, %v", reply, req, stale, data, done, err)
	})
}

// overlapped reports whether the whole stale frame at stream[from+cut:] may have been taken
// into a frame that starts earlier (in the noise or the cut frame), which a valid CRC decides.
func overlapped(stream, stale []byte, from int) bool {
	whole := bytes.Index(stream[from:], stale)
	return whole < 0 || straddles(stream, from+whole)
}

// straddles reports whether a complete frame with a valid CRC starts before stream[at] and
// ends after it.
func straddles(stream []byte, at int) bool {
	for i := range at {
		if l := rtuFrameLen(stream[i:]); l > 0 && i+l > at && i+l <= len(stream) &&
			rtuCRC(stream[i:i+l-2]) == binary.LittleEndian.Uint16(stream[i+l-2:]) {
			return true
		}
	}
	return false
}

// chunkReader hands out b in reads of the sizes in chunks (1 to 256 bytes, in turn), the last
// one with io.EOF when eofWithData, as a connection may.
type chunkReader struct {
	b           []byte
	chunks      []byte
	i           int
	eofWithData bool
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := 1
	if len(c.chunks) > 0 {
		n += int(c.chunks[c.i%len(c.chunks)])
		c.i++
	}
	n = copy(p, c.b[:min(n, len(c.b))])
	c.b = c.b[n:]
	if len(c.b) == 0 && c.eofWithData {
		return n, io.EOF
	}
	return n, nil
}

// tcpFramesOf frames a whole Modbus TCP stream at once: the frames, then io.EOF at a frame's
// end, io.ErrUnexpectedEOF inside one, or a garbage header (its 7 bytes).
func tcpFramesOf(stream []byte) (frames [][]byte, garbage []byte, err error) {
	for at := 0; ; {
		rest := stream[at:]
		switch {
		case len(rest) == 0:
			return frames, nil, io.EOF
		case len(rest) < 7:
			return frames, nil, io.ErrUnexpectedEOF
		}
		n := int(binary.BigEndian.Uint16(rest[4:]))
		if rest[2] != 0 || rest[3] != 0 || n < 2 || n > 254 {
			return frames, rest[:7], nil
		}
		if len(rest) < 6+n {
			return frames, nil, io.ErrUnexpectedEOF
		}
		frames = append(frames, rest[:6+n])
		at += 6 + n
	}
}

// FuzzTCPFrames feeds arbitrary bytes, in arbitrary reads, through the TCP link's receive
// buffer: whatever the reads, it must give the frames, garbage header and end of stream that
// framing the whole stream at once gives, each frame intact until the next is asked for.
func FuzzTCPFrames(f *testing.F) {
	late, reply := mbap(1, 1, []byte{3, 2, 0, 9}), mbap(2, 1, []byte{3, 4, 0, 7, 0, 8})
	f.Add(append(late, reply...), []byte{255}, false)
	f.Add(append(late, reply...), []byte{0}, true)
	f.Add(append(reply, 0xFF, 0xFF, 0xFF, 0, 2, 0, 0), []byte{3, 9}, false)
	f.Add(append(reply, late[:5]...), []byte{11}, true)
	long := mbap(7, 1, append([]byte{3, 251}, make([]byte, 251)...))
	f.Add(slices.Concat(long, long, long, reply), []byte{255, 255, 40}, false)
	f.Fuzz(func(t *testing.T, stream, chunks []byte, eofWithData bool) {
		frames, garbage, end := tcpFramesOf(stream)
		var r tcpReader
		c := &chunkReader{b: stream, chunks: chunks, eofWithData: eofWithData}
		for i := 0; ; i++ {
			frame, err := r.next(c)
			if err != nil {
				var pe *protocolError
				switch {
				case i != len(frames):
					t.Fatalf("%v after %d frames, want %d frames", err, i, len(frames))
				case garbage != nil && (!errors.As(err, &pe) || pe.kind != kindGarbage || !bytes.Equal(pe.frame, garbage)):
					t.Fatalf("%v, want garbage % x", err, garbage)
				case garbage == nil && err != end:
					t.Fatalf("%v, want %v", err, end)
				}
				return
			}
			if i >= len(frames) || !bytes.Equal(frame, frames[i]) {
				t.Fatalf("frame %d: % x, want the stream's %d frames % x", i, frame, len(frames), frames)
			}
			if r.end-r.start > len(r.buf) || r.start > r.end {
				t.Fatalf("buffer holds [%d:%d]", r.start, r.end)
			}
		}
	})
}
