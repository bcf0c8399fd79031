package modbus

import (
	"testing"
	"time"

	"github.com/goburrow/modbus"

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
		t := &tag{name: "t", index: len(r.tags), table: r.table, start: uint16(at), bit: -1}
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
				t.bit = int(spec[i+2] % 16)
			default:
				t.scaled, t.scale, t.offset = spec[i+2]&1 == 1, 0.5, -1
			}
		}
		t.typ = t.kind.sparkplug()
		if t.scaled {
			t.typ = drivers.Double
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
			if s.Quality != drivers.Good || s.Value.Type() != tg.typ || s.Value.IsNull() {
				t.Fatalf("tag %+v decoded to %v (%v)", tg, s.Value, s.Value.Type())
			}
		}
	})
}

// FuzzDecodeRTUFrame feeds arbitrary bytes, as if they came down the serial line, through the
// RTU framing (resync, frame length) and goburrow's packager checks: nothing may panic, and a
// frame accepted must belong to the request.
func FuzzDecodeRTUFrame(f *testing.F) {
	f.Add(byte(1), byte(3), uint16(0), uint16(2), withCRC([]byte{1, 3, 4, 0x3f, 0x80, 0, 0}))
	f.Add(byte(1), byte(1), uint16(0), uint16(3), withCRC([]byte{1, 1, 1, 5}))
	f.Add(byte(2), byte(3), uint16(0), uint16(1), append([]byte{9, 9}, withCRC([]byte{2, 0x83, 2})...))
	f.Fuzz(func(t *testing.T, unit, fc byte, addr, qty uint16, line []byte) {
		p := modbus.NewRTUClientHandler("")
		p.SlaveId = unit
		req, err := p.Encode(&modbus.ProtocolDataUnit{FunctionCode: fc, Data: []byte{byte(addr >> 8), byte(addr), byte(qty >> 8), byte(qty)}})
		if err != nil {
			return
		}
		got := append([]byte(nil), line...)
		n := resync(req, got)
		got = got[:n]
		want := frameLength(req, got)
		if want == 0 || n < want {
			return
		}
		frame := got[:want]
		if p.Verify(req, frame) != nil {
			return
		}
		pdu, err := p.Decode(frame)
		if err != nil {
			return
		}
		if frame[0] != unit || (pdu.FunctionCode != fc && pdu.FunctionCode != fc|0x80) {
			t.Fatalf("accepted frame % x for request % x", frame, req)
		}
	})
}
