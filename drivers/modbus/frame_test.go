package modbus

import (
	"errors"
	"testing"

	"github.com/wellgate/wellgate/drivers"
)

// TestRTUReader sorts byte streams as a shared bus delivers them against one request each:
// the issue's late coil reply in front of unit 1's coil read, false starts, stale frames of
// every kind, and replies that are wrong in each way.
func TestRTUReader(t *testing.T) {
	coils8 := readOp(&request{table: coils, start: 0, count: 8}).pdu           // 01 0000 0008
	regs2 := readOp(&request{table: holdingRegisters, start: 0, count: 2}).pdu // 03 0000 0002
	tg := &tag{info: &drivers.TagInfo{Name: "sp"}, start: 10, bit: -1}
	wr := writeSingleOp(fcWriteRegister, tg, 1234).pdu
	reply1 := withCRC([]byte{1, 1, 1, 0x05})
	// Five registers whose data hold a whole valid frame of unit 2: read in small pieces, that
	// frame is complete before the reply around it.
	regs5 := readOp(&request{table: holdingRegisters, start: 0, count: 5}).pdu
	inner := cat([]byte{0, 0}, withCRC([]byte{2, 3, 2, 0, 7}), []byte{0})
	outer := withCRC(cat([]byte{1, 3, 10}, inner))
	cases := []struct {
		name     string
		req      []byte
		stream   []byte
		wantData []byte
		wantKind string // of the failure, when no answer
		late     int
	}{
		{"issue: late unit 2 coil reply before unit 1's", coils8, cat([]byte{0x02, 0x01, 0x01, 0x01, 0x90, 0x0c}, reply1), []byte{0x05}, "", 1},
		{"reply alone", coils8, reply1, []byte{0x05}, "", 0},
		{"false start: a lone unit byte", coils8, cat([]byte{0x01}, reply1), []byte{0x05}, "", 0},
		{"false start: a cut frame", coils8, cat(reply1[:3], reply1), []byte{0x05}, "", 0},
		{"stale same unit, other function", coils8, cat(withCRC([]byte{1, 3, 4, 1, 1, 1, 1}), reply1), []byte{0x05}, "", 1},
		{"stale same unit, other byte count", coils8, cat(withCRC([]byte{1, 1, 2, 1, 1}), reply1), []byte{0x05}, "", 1},
		{"stale echo of another write", wr, cat(withCRC([]byte{1, 6, 0, 10, 0, 1}), withCRC(cat([]byte{1}, wr))), nil, "", 1},
		{"stale frames of three units and noise", regs2, cat([]byte{0xff, 0x00}, withCRC([]byte{2, 3, 2, 1, 3}), withCRC([]byte{3, 1, 1, 3}),
			withCRC([]byte{4, 0x83, 2}), withCRC([]byte{1, 3, 4, 0, 1, 0, 2})), []byte{0, 1, 0, 2}, "", 3},
		{"a frame-shaped run inside the reply's data", regs5, outer, inner, "", 0},
		{"wrong function only", coils8, withCRC([]byte{1, 3, 2, 0, 42}), nil, kindWrongFunction, 1},
		{"wrong length only", regs2, withCRC([]byte{1, 3, 2, 0, 42}), nil, kindWrongLength, 1},
		{"wrong echo only", wr, withCRC([]byte{1, 6, 0, 10, 0, 1}), nil, kindWrongEcho, 1},
		{"bad crc", coils8, cat([]byte{1, 1, 1, 5}, []byte{0, 0}), nil, kindCRC, 0},
		{"cut reply", regs2, []byte{1, 3, 4, 0}, nil, kindGarbage, 0},
		{"another unit only", regs2, withCRC([]byte{2, 3, 4, 0, 1, 0, 2}), nil, kindTimeout, 1},
		{"nothing", regs2, nil, nil, kindTimeout, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for chunk := 1; chunk <= len(c.stream)+1; chunk++ {
				data, done, late, err := readStream(t, 1, c.req, c.stream, chunk)
				if len(late) != c.late {
					t.Errorf("chunk %d: %d late frames, want %d", chunk, len(late), c.late)
				}
				if c.wantKind != "" {
					if done || errorKind(err) != c.wantKind {
						t.Fatalf("chunk %d: done %v, %v (kind %s), want a %s failure", chunk, done, err, errorKind(err), c.wantKind)
					}
					continue
				}
				if !done || err != nil || string(data) != string(c.wantData) {
					t.Fatalf("chunk %d: %x, done %v, %v; want %x", chunk, data, done, err, c.wantData)
				}
			}
		})
	}
}

func TestRTUReaderException(t *testing.T) {
	req := readOp(&request{table: holdingRegisters, start: 49000, count: 1}).pdu
	_, done, _, err := readStream(t, 1, req, withCRC([]byte{1, 0x83, 2}), 5)
	var ee *exceptionError
	if !done || !errors.As(err, &ee) || ee.code != 2 || err.Error() != "illegal data address" {
		t.Fatalf("done %v, %v", done, err)
	}
	// An exception to another function is a reply with the wrong function, not an exception.
	_, done, _, _ = readStream(t, 1, req, withCRC([]byte{1, 0x81, 2}), 5)
	if done {
		t.Fatal("an exception to function 1 answered a read of holding registers")
	}
}

// TestIssueFrameCRC: the late frame quoted in the issue is a valid frame for unit 2.
func TestIssueFrameCRC(t *testing.T) {
	f := []byte{0x02, 0x01, 0x01, 0x01, 0x90, 0x0c}
	if rtuFrameLen(f) != 6 || rtuCRC(f[:4]) != 0x0c90 || crc16(f[:4]) != rtuCRC(f[:4]) {
		t.Fatalf("len %d crc %04x", rtuFrameLen(f), rtuCRC(f[:4]))
	}
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
