package modbus

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// Function codes the driver sends.
const (
	fcReadCoils           = 1
	fcReadDiscrete        = 2
	fcReadHolding         = 3
	fcReadInput           = 4
	fcWriteCoil           = 5
	fcWriteRegister       = 6
	fcWriteCoils          = 15
	fcWriteRegisters      = 16
	fcException      byte = 0x80 // set in the function code of an exception reply
)

// readFunction is the function that reads table tb.
func readFunction(tb table) byte {
	switch tb {
	case coils:
		return fcReadCoils
	case discreteInputs:
		return fcReadDiscrete
	case inputRegisters:
		return fcReadInput
	}
	return fcReadHolding
}

// op is one request: its PDU (function code and data, as it travels) and what messages need
// to name it. Its text is built only when an error needs it.
type op struct {
	write bool
	table table
	start uint16
	count uint16 // registers or bits
	tags  []*tag
	pdu   []byte
}

// readOp is the request that reads r, built once per request (only the endpoint's goroutine
// polls, so only it calls this) and never modified: an op and its PDU are read only.
func readOp(r *request) *op {
	if r.read != nil {
		return r.read
	}
	pdu := []byte{readFunction(r.table), 0, 0, 0, 0}
	binary.BigEndian.PutUint16(pdu[1:], r.start)
	binary.BigEndian.PutUint16(pdu[3:], r.count)
	r.read = &op{table: r.table, start: r.start, count: r.count, tags: r.tags, pdu: pdu}
	return r.read
}

// writeSingleOp writes one coil (value 0xFF00 or 0) or register with function 5 or 6.
func writeSingleOp(fc byte, t *tag, value uint16) *op {
	pdu := []byte{fc, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(pdu[1:], t.start)
	binary.BigEndian.PutUint16(pdu[3:], value)
	return &op{write: true, table: t.table, start: t.start, count: 1, tags: []*tag{t}, pdu: pdu}
}

// writeMultipleOp writes count coils (packed bits) or registers with function 15 or 16.
func writeMultipleOp(fc byte, t *tag, count uint16, data []byte) *op {
	pdu := make([]byte, 6, 6+len(data))
	pdu[0] = fc
	binary.BigEndian.PutUint16(pdu[1:], t.start)
	binary.BigEndian.PutUint16(pdu[3:], count)
	pdu[5] = byte(len(data))
	pdu = append(pdu, data...)
	return &op{write: true, table: t.table, start: t.start, count: count, tags: []*tag{t}, pdu: pdu}
}

// String names the request: `reading hr:49000 (1 register) for tag "Bogus/Out Of Range"`,
// `writing co:4 (1 coil, function 15) for tag "Dump Valve"`.
func (o *op) String() string {
	var b strings.Builder
	if o.write {
		b.WriteString("writing ")
	} else {
		b.WriteString("reading ")
	}
	b.WriteString(o.table.prefix() + ":" + strconv.Itoa(int(o.start)))
	if o.count > 1 {
		b.WriteString("-" + strconv.Itoa(int(o.start)+int(o.count)-1))
	}
	b.WriteString(" (" + strconv.Itoa(int(o.count)) + " " + o.table.unit(o.count))
	if o.write {
		b.WriteString(", function " + strconv.Itoa(int(o.pdu[0])))
	}
	b.WriteString(")")
	switch n := len(o.tags); {
	case n == 1:
		fmt.Fprintf(&b, " for tag %q", o.tags[0].name())
	case n == 2 || n == 3:
		fmt.Fprintf(&b, " for tags %q", o.tags[0].name())
		for i, t := range o.tags[1:] {
			if i == n-2 {
				fmt.Fprintf(&b, " and %q", t.name())
			} else {
				fmt.Fprintf(&b, ", %q", t.name())
			}
		}
	case n > 3:
		fmt.Fprintf(&b, " for tags %q, %q and %d more", o.tags[0].name(), o.tags[1].name(), n-2)
	}
	return b.String()
}

// functionName names the function codes the driver sends, for messages.
func functionName(fc byte) string {
	switch fc {
	case fcReadCoils:
		return "read coils"
	case fcReadDiscrete:
		return "read discrete inputs"
	case fcReadHolding:
		return "read holding registers"
	case fcReadInput:
		return "read input registers"
	case fcWriteCoil:
		return "write single coil"
	case fcWriteRegister:
		return "write single register"
	case fcWriteCoils:
		return "write multiple coils"
	case fcWriteRegisters:
		return "write multiple registers"
	}
	if fc&fcException != 0 {
		return "exception to function " + strconv.Itoa(int(fc&^fcException))
	}
	return "function " + strconv.Itoa(int(fc))
}

// replyDataLen is the byte count a read's reply must carry.
func replyDataLen(req []byte) int {
	n := int(binary.BigEndian.Uint16(req[3:]))
	if req[0] == fcReadCoils || req[0] == fcReadDiscrete {
		return (n + 7) / 8
	}
	return 2 * n
}

// checkReply checks the reply PDU resp (function code and data) against the request PDU req.
// It returns a read's data (after the byte count; nil for a write), an *exceptionError when
// the device refused the request, or a *protocolError when resp is no answer to req: another
// function, a byte count or size that does not fit, or a write's echo of another address,
// value or quantity.
func checkReply(req, resp []byte) ([]byte, error) {
	fc := req[0]
	switch {
	case len(resp) == 0:
		return nil, protoErr(kindWrongLength, resp, "empty reply")
	case resp[0] == fc|fcException:
		if len(resp) != 2 {
			return nil, protoErr(kindWrongLength, resp, "wrong length in exception reply (%d bytes, want 2)", len(resp))
		}
		return nil, &exceptionError{function: fc, code: resp[1]}
	case resp[0] != fc:
		return nil, protoErr(kindWrongFunction, resp, "wrong function in reply (%d %s, want %d)", resp[0], functionName(resp[0]), fc)
	}
	switch fc {
	case fcReadCoils, fcReadDiscrete, fcReadHolding, fcReadInput:
		want := replyDataLen(req)
		if len(resp) < 2 || int(resp[1]) != want || len(resp) != 2+want {
			count := -1
			if len(resp) >= 2 {
				count = int(resp[1])
			}
			return nil, protoErr(kindWrongLength, resp, "wrong length in reply (byte count %d, %d data bytes, want %d)",
				count, max(len(resp)-2, 0), want)
		}
		return resp[2:], nil
	case fcWriteCoil, fcWriteRegister, fcWriteCoils, fcWriteRegisters:
		if len(resp) != 5 {
			return nil, protoErr(kindWrongLength, resp, "wrong length in reply (%d bytes, want 5)", len(resp))
		}
		// 5 and 6 echo the address and the value; 15 and 16 the address and the quantity.
		if !bytes.Equal(resp[1:5], req[1:5]) {
			return nil, protoErr(kindWrongEcho, resp, "reply echoes address %d and %d, not %d and %d",
				binary.BigEndian.Uint16(resp[1:]), binary.BigEndian.Uint16(resp[3:]),
				binary.BigEndian.Uint16(req[1:]), binary.BigEndian.Uint16(req[3:]))
		}
		return nil, nil
	}
	return resp[1:], nil
}
