package modbus

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	smodbus "github.com/simonvetter/modbus"

	"github.com/wellgate/wellgate/drivers"
)

// rawTCPServer is a Modbus TCP peer that breaks the protocol on purpose: reply returns the
// frames (whole MBAP ADUs) to send for each request ADU, none for silence.
type rawTCPServer struct {
	addr string
	ln   net.Listener

	mu       sync.Mutex
	reply    func(req []byte) [][]byte
	requests int
}

func newRawTCPServer(t *testing.T, reply func(req []byte) [][]byte) *rawTCPServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawTCPServer{addr: ln.Addr().String(), ln: ln, reply: reply}
	var wg sync.WaitGroup
	var conns []net.Conn
	var cmu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			cmu.Lock()
			conns = append(conns, c)
			cmu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		cmu.Lock()
		for _, c := range conns {
			c.Close()
		}
		cmu.Unlock()
		wg.Wait()
	})
	return s
}

func (s *rawTCPServer) serve(c net.Conn) {
	hdr := make([]byte, 7)
	for {
		if _, err := io.ReadFull(c, hdr); err != nil {
			return
		}
		body := make([]byte, binary.BigEndian.Uint16(hdr[4:])-1)
		if _, err := io.ReadFull(c, body); err != nil {
			return
		}
		s.mu.Lock()
		s.requests++
		out := s.reply(append(append([]byte(nil), hdr...), body...))
		s.mu.Unlock()
		for _, f := range out {
			if _, err := c.Write(f); err != nil {
				return
			}
		}
	}
}

func (s *rawTCPServer) set(reply func(req []byte) [][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reply = reply
}

func (s *rawTCPServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// mbap frames pdu for unit with transaction id tid.
func mbap(tid uint16, unit byte, pdu []byte) []byte {
	f := binary.BigEndian.AppendUint16(nil, tid)
	f = append(f, 0, 0)
	f = binary.BigEndian.AppendUint16(f, uint16(len(pdu)+1))
	return append(append(f, unit), pdu...)
}

// goodReply answers a read of holding registers with registers holding 7.
func goodReply(req []byte) []byte {
	n := int(binary.BigEndian.Uint16(req[10:]))
	pdu := []byte{req[7], byte(2 * n)}
	for range n {
		pdu = append(pdu, 0, 7)
	}
	return mbap(binary.BigEndian.Uint16(req), req[6], pdu)
}

// TestWrongFunctionIsProtocolError: a reply with another function code is a protocol error
// of its own kind, not an exception (goburrow read the byte count as "exception 4"), and the
// device's state follows it: down with that error, up again when the replies are right. Over
// Modbus TCP and over RTU.
func TestWrongFunctionIsProtocolError(t *testing.T) {
	check := func(t *testing.T, d *Driver, sink *testSink, want string) {
		t.Helper()
		eventually(t, 5*time.Second, "down", func() bool { return sink.lastState("plc") == -1 })
		sink.mu.Lock()
		last := sink.states[len(sink.states)-1]
		sink.mu.Unlock()
		if !strings.Contains(last.err.Error(), want) || !errors.Is(last.err, errBadReplies) {
			t.Errorf("down because %q, want %q", last.err, want)
		}
		st := statusOf(d, "plc")
		if st.ErrorsByKind[kindWrongFunction] < 2 || st.ErrorsByKind[kindException] != 0 || st.Up {
			t.Errorf("status %v, up %v", st.ErrorsByKind, st.Up)
		}
		if !strings.HasPrefix(st.LastError, "wrong function in reply (4 read input registers, want 3) reading hr:0-1 (2 registers) for tag") {
			t.Errorf("last error %q", st.LastError)
		}
		eventually(t, 2*time.Second, "bad", isBad(sink, "plc", "a"))
	}
	t.Run("tcp", func(t *testing.T) {
		srv := newRawTCPServer(t, func(req []byte) [][]byte {
			r := goodReply(req)
			r[7] = 4 // reads input registers instead
			return [][]byte{r}
		})
		dev := tcpOptions("plc", srv.addr, 1, TagOptions{Name: "a", Address: "hr:0", Type: "uint32"})
		dev.PollInterval, dev.Timeout = 50*time.Millisecond, time.Second
		d, sink := startDriver(t, Options{Devices: []DeviceOptions{dev}})
		check(t, d, sink, "wrong function in reply")
		srv.set(func(req []byte) [][]byte { return [][]byte{goodReply(req)} })
		eventually(t, 5*time.Second, "good again", good(sink, "plc", "a", drivers.UintValue(drivers.UInt32, 7<<16|7)))
	})
	t.Run("rtu", func(t *testing.T) {
		a, b := ptyPair(t)
		slave := newRTUSlave(t, b, 1)
		slave.with(1, func(bk *bank, s *rtuSlave) { bk.holding[0], bk.holding[1] = 0, 9; s.wrongFC[1] = 4 })
		dev := rtuDevice("plc", a, 1, TagOptions{Name: "a", Address: "hr:0", Type: "uint32"})
		dev.Timeout = 400 * time.Millisecond // each wrong reply is waited out to its timeout
		d, sink := startDriver(t, Options{Devices: []DeviceOptions{dev}})
		check(t, d, sink, "wrong function in reply")
		slave.with(1, func(_ *bank, s *rtuSlave) { delete(s.wrongFC, 1) })
		eventually(t, 5*time.Second, "good again", good(sink, "plc", "a", drivers.UintValue(drivers.UInt32, 9)))
	})
}

// TestTCPProtocolErrors: a stale transaction id is discarded and counted, the reply after it
// is the answer; a reply from another unit id is wrong_unit; a header that is no Modbus TCP is
// garbage.
func TestTCPProtocolErrors(t *testing.T) {
	srv := newRawTCPServer(t, func(req []byte) [][]byte {
		stale := goodReply(req)
		binary.BigEndian.PutUint16(stale, binary.BigEndian.Uint16(req)-1)
		stale[len(stale)-1] = 99
		return [][]byte{stale, goodReply(req)}
	})
	dev := tcpOptions("plc", srv.addr, 1, TagOptions{Name: "a", Address: "hr:0"})
	dev.PollInterval, dev.Timeout = 50*time.Millisecond, time.Second
	d, sink := startDriver(t, Options{Devices: []DeviceOptions{dev}})
	eventually(t, 5*time.Second, "value", good(sink, "plc", "a", drivers.UintValue(drivers.UInt16, 7)))
	eventually(t, 5*time.Second, "late replies counted", func() bool { return statusOf(d, "plc").ErrorsByKind[kindLate] >= 3 })
	if st := statusOf(d, "plc"); st.Errors != 0 || sink.badCount("plc") != 0 {
		t.Fatalf("stale replies cost cycles: %v", st.ErrorsByKind)
	}
	srv.set(func(req []byte) [][]byte { r := goodReply(req); r[6] = 2; return [][]byte{r} })
	eventually(t, 5*time.Second, "wrong unit", func() bool { return statusOf(d, "plc").ErrorsByKind[kindWrongUnit] >= 2 })
	if st := statusOf(d, "plc"); !strings.HasPrefix(st.LastError, `wrong unit in reply (2, want 1) reading hr:0 (1 register) for tag "a"`) {
		t.Errorf("last error %q", st.LastError)
	}
	srv.set(func(req []byte) [][]byte { return [][]byte{[]byte("HTTP/1.1 400 Bad Request\r\n\r\n")} })
	eventually(t, 5*time.Second, "garbage", func() bool { return statusOf(d, "plc").ErrorsByKind[kindGarbage] >= 2 })
}

// TestExceptionNamesTheRequest: the status page's last error names the exception, the
// register range and the tag.
func TestExceptionNamesTheRequest(t *testing.T) {
	srv := newTestServer(t, 1)
	srv.with(1, func(b *bank) { b.illegal[holdingRegisters] = map[uint16]bool{49000: true} })
	d, sink := startDriver(t, Options{Devices: []DeviceOptions{
		tcpDevice("plc", srv, 1, TagOptions{Name: "Bogus/Out Of Range", Address: "hr:49000"}, TagOptions{Name: "ok", Address: "hr:0"}),
	}})
	want := `illegal data address reading hr:49000 (1 register) for tag "Bogus/Out Of Range"`
	eventually(t, 5*time.Second, "the exception", func() bool { return statusOf(d, "plc").LastError == want })
	if st := statusOf(d, "plc"); !st.Up || st.ErrorsByKind[kindException] == 0 {
		t.Errorf("status %+v", st)
	}
	eventually(t, time.Second, "the refused tag bad", isBad(sink, "plc", "Bogus/Out Of Range"))

	srv.with(1, func(b *bank) { b.exception = smodbus.ErrServerDeviceBusy })
	want = `server device busy reading hr:49000 (1 register) for tag "Bogus/Out Of Range"` // the last read of the cycle
	eventually(t, 5*time.Second, "busy", func() bool { return statusOf(d, "plc").LastError == want })
}

// TestOpText: how requests are named in errors.
func TestOpText(t *testing.T) {
	tags := func(names ...string) []*tag {
		var out []*tag
		for _, n := range names {
			out = append(out, &tag{info: &drivers.TagInfo{Name: n}})
		}
		return out
	}
	coil := &tag{info: &drivers.TagInfo{Name: "Dump Valve"}, table: coils, start: 4}
	for _, c := range []struct {
		o    *op
		want string
	}{
		{readOp(&request{table: holdingRegisters, start: 49000, count: 1, tags: tags("Bogus/Out Of Range")}),
			`reading hr:49000 (1 register) for tag "Bogus/Out Of Range"`},
		{readOp(&request{table: coils, start: 0, count: 8, tags: tags("a", "b")}), `reading co:0-7 (8 coils) for tags "a" and "b"`},
		{readOp(&request{table: inputRegisters, start: 10, count: 4, tags: tags("a", "b", "c")}), `reading ir:10-13 (4 registers) for tags "a", "b" and "c"`},
		{readOp(&request{table: discreteInputs, start: 3, count: 9, tags: tags("a", "b", "c", "d", "e")}), `reading di:3-11 (9 discrete inputs) for tags "a", "b" and 3 more`},
		{readOp(&request{table: holdingRegisters, start: 21, count: 1}), `reading hr:21 (1 register)`},
		{writeMultipleOp(fcWriteCoils, coil, 1, []byte{1}), `writing co:4 (1 coil, function 15) for tag "Dump Valve"`},
		{writeSingleOp(fcWriteRegister, &tag{info: &drivers.TagInfo{Name: "sp"}, table: holdingRegisters, start: 20}, 5), `writing hr:20 (1 register, function 6) for tag "sp"`},
	} {
		if got := c.o.String(); got != c.want {
			t.Errorf("got  %s\nwant %s", got, c.want)
		}
	}
}

// TestWriteFunctionOptions: unit 1 refuses functions 6 and 5, unit 2 refuses 16 and 15.
// Devices set to write single registers and coils with 16 and 15 can write unit 1; with the
// defaults (6 and 5) they can write unit 2; the other way round, the write fails with an error
// that names the exception, the function and the tag, and writes nothing.
func TestWriteFunctionOptions(t *testing.T) {
	a, b := ptyPair(t)
	slave := newRTUSlave(t, b, 1, 2)
	slave.with(1, func(_ *bank, s *rtuSlave) {
		s.refuse[1] = map[byte]bool{fcWriteRegister: true, fcWriteCoil: true}
		s.refuse[2] = map[byte]bool{fcWriteRegisters: true, fcWriteCoils: true}
	})
	tags := []TagOptions{{Name: "sp", Address: "hr:20", Writable: true}, {Name: "valve", Address: "co:4", Writable: true},
		{Name: "flag", Address: "hr:21.3", Writable: true}}
	dev := func(name string, unit int, multiple bool) DeviceOptions {
		o := rtuDevice(name, a, unit, tags...)
		o.Timeout = time.Second
		if multiple {
			o.WriteSingleRegister, o.WriteCoil = "fc16", "FC15"
		}
		return o
	}
	d, sink := startDriver(t, Options{Devices: []DeviceOptions{
		dev("u1-fc16", 1, true), dev("u1-fc6", 1, false), dev("u2-fc6", 2, false), dev("u2-fc16", 2, true),
	}})
	for _, n := range []string{"u1-fc16", "u1-fc6", "u2-fc6", "u2-fc16"} {
		eventually(t, 5*time.Second, n+" up", func() bool { return sink.lastState(n) == 1 })
	}
	for _, c := range []struct{ dev, fail string }{
		{"u1-fc16", ""}, {"u2-fc6", ""},
		{"u1-fc6", `illegal function writing hr:20 (1 register, function 6) for tag "sp"`},
		{"u2-fc16", `illegal function writing hr:20 (1 register, function 16) for tag "sp"`},
	} {
		got, err := d.Write(t.Context(), c.dev, "sp", drivers.UintValue(drivers.UInt16, 321))
		if c.fail == "" {
			if err != nil || !got.Equal(drivers.UintValue(drivers.UInt16, 321)) {
				t.Errorf("%s: write sp: %v, %v", c.dev, got, err)
			}
			if _, err := d.Write(t.Context(), c.dev, "valve", drivers.BoolValue(true)); err != nil {
				t.Errorf("%s: write valve: %v", c.dev, err)
			}
			if got, err := d.Write(t.Context(), c.dev, "flag", drivers.BoolValue(true)); err != nil || !got.Equal(drivers.BoolValue(true)) {
				t.Errorf("%s: write flag: %v, %v", c.dev, got, err)
			}
			continue
		}
		if err == nil || !strings.HasSuffix(err.Error(), c.fail) || !isException(err) {
			t.Errorf("%s: write sp: %v, want an error ending %q", c.dev, err, c.fail)
		}
		if _, err := d.Write(t.Context(), c.dev, "valve", drivers.BoolValue(true)); err == nil || !strings.Contains(err.Error(), "illegal function writing co:4 (1 coil, function") {
			t.Errorf("%s: write valve: %v", c.dev, err)
		}
		if st := statusOf(d, c.dev); !strings.HasPrefix(st.LastError, "illegal function writing co:4") || !st.Up {
			t.Errorf("%s: status %q, up %v", c.dev, st.LastError, st.Up)
		}
	}
	slave.mu.Lock()
	w1, w2 := string(slave.writes[1]), string(slave.writes[2])
	slave.mu.Unlock()
	// Unit 1 took 16 (sp), 15 (valve) and 16 (flag, after reading the register); unit 2 6, 5, 6.
	if w1 != "\x10\x0f\x10" || w2 != "\x06\x05\x06" {
		t.Errorf("writes accepted: unit 1 % x, unit 2 % x", w1, w2)
	}
	slave.with(1, func(bk *bank, _ *rtuSlave) {
		if bk.holding[20] != 321 || !bk.coils[4] || bk.holding[21] != 1<<3 {
			t.Errorf("unit 1 holds %d, %v, %#x", bk.holding[20], bk.coils[4], bk.holding[21])
		}
	})
}

// TestZeroBased: a device whose manual counts registers from 0 reads "40000" as the first
// holding register; the plan prints the addresses the way the device's tags are written.
func TestZeroBased(t *testing.T) {
	srv := newTestServer(t, 1)
	srv.with(1, func(b *bank) { b.holding[0], b.holding[100] = 11, 22 })
	zero := tcpDevice("zero", srv, 1, TagOptions{Name: "first", Address: "40000"}, TagOptions{Name: "h", Address: "400100"},
		TagOptions{Name: "p", Address: "hr:100"})
	zero.ZeroBased = true
	one := tcpDevice("one", srv, 1, TagOptions{Name: "first", Address: "40001"}, TagOptions{Name: "h", Address: "40101"})
	d, sink := startDriver(t, Options{Devices: []DeviceOptions{zero, one}})
	eventually(t, 5*time.Second, "zero first", good(sink, "zero", "first", drivers.UintValue(drivers.UInt16, 11)))
	eventually(t, 5*time.Second, "zero h", good(sink, "zero", "h", drivers.UintValue(drivers.UInt16, 22)))
	eventually(t, 5*time.Second, "zero p", good(sink, "zero", "p", drivers.UintValue(drivers.UInt16, 22)))
	eventually(t, 5*time.Second, "one first", good(sink, "one", "first", drivers.UintValue(drivers.UInt16, 11)))
	eventually(t, 5*time.Second, "one h", good(sink, "one", "h", drivers.UintValue(drivers.UInt16, 22)))
	var plan strings.Builder
	d.WritePlan(&plan)
	if !strings.Contains(plan.String(), "start     0 (400000)") || !strings.Contains(plan.String(), "start     0 (400001)") {
		t.Errorf("plan:\n%s", plan.String())
	}
	if _, err := New(Options{Devices: []DeviceOptions{tcpDevice("x", srv, 1, TagOptions{Name: "a", Address: "40000"})}}, nil); err == nil ||
		!strings.Contains(err.Error(), "set zero_based = true") {
		t.Errorf("40000 on a one-based device: %v", err)
	}
}
