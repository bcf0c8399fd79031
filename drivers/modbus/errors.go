package modbus

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
)

// Error kinds, as counted in drivers.DeviceStatus.ErrorsByKind. Every failed request counts
// once under its kind; kindLate counts frames discarded because they did not answer the
// request they arrived during (not failed requests).
const (
	kindTimeout       = "timeout"        // no reply before the device's timeout
	kindException     = "exception"      // the device answered with a Modbus exception
	kindConnection    = "connection"     // connect, open, read or write failed (EOF, port gone)
	kindCRC           = "crc"            // a reply for the request whose CRC is wrong (RTU)
	kindWrongFunction = "wrong_function" // a reply with another function code
	kindWrongLength   = "wrong_length"   // a reply whose byte count or size does not fit the request
	kindWrongUnit     = "wrong_unit"     // a reply from another unit id (TCP)
	kindWrongEcho     = "wrong_echo"     // a write's reply that does not echo its address and value
	kindGarbage       = "garbage"        // bytes that make no reply frame at all
	kindLate          = "late_reply"     // a frame discarded: not the reply to the request in flight
	kindOverrun       = "poll_overrun"   // an answered poll ended past its next start, which was skipped
)

// Errors the driver itself detects.
var (
	errTimeout    = errors.New("timeout")
	errNoAnswer   = errors.New("device is not answering")
	errBadReplies = errors.New("device's replies break the protocol")
)

// connError marks an error opening a connection or a port.
type connError struct{ err error }

func (e *connError) Error() string { return "connect: " + e.err.Error() }
func (e *connError) Unwrap() error { return e.err }

// exceptionError is a Modbus exception reply: the device answered and refused the request.
type exceptionError struct {
	function byte // the request's function code
	code     byte // exception code
}

// exceptionNames are the exception codes of the Modbus application protocol.
var exceptionNames = map[byte]string{
	1: "illegal function", 2: "illegal data address", 3: "illegal data value",
	4: "server device failure", 5: "acknowledge", 6: "server device busy",
	8: "memory parity error", 10: "gateway path unavailable",
	11: "gateway target device failed to respond",
}

func (e *exceptionError) Error() string {
	if name, ok := exceptionNames[e.code]; ok {
		return name
	}
	return "exception " + strconv.Itoa(int(e.code))
}

// protocolError is a reply that breaks the protocol (wrong function, length, unit, echo or
// CRC, or no frame at all). It is not an exception: the device did not answer the request.
type protocolError struct {
	kind  string // kindCRC, kindWrongFunction, …
	msg   string
	frame []byte // the raw bytes, for debug logs
}

func (e *protocolError) Error() string { return e.msg }

// frameHex formats the raw frame of err, if it carries one, for a debug log.
func frameHex(err error) string {
	var pe *protocolError
	if errors.As(err, &pe) {
		return hex.EncodeToString(pe.frame)
	}
	return ""
}

func protoErr(kind string, frame []byte, format string, args ...any) *protocolError {
	return &protocolError{kind: kind, frame: frame, msg: fmt.Sprintf(format, args...)}
}

// requestError names the request an error happened on: `illegal data address reading
// hr:49000 (1 register) for tag "Bogus/Out Of Range"`. These texts are what the status page
// shows as a device's last error.
type requestError struct {
	op  *op
	err error
}

func (e *requestError) Error() string { return e.err.Error() + " " + e.op.String() }
func (e *requestError) Unwrap() error { return e.err }

// errorKind classifies an error from a request.
func errorKind(err error) string {
	var ee *exceptionError
	var pe *protocolError
	var ce *connError
	var ne net.Error
	switch {
	case errors.As(err, &ee):
		return kindException
	case errors.As(err, &pe):
		return pe.kind
	case errors.As(err, &ce):
		return kindConnection
	case errors.Is(err, errTimeout), errors.As(err, &ne) && ne.Timeout():
		return kindTimeout
	}
	return kindConnection // EOF, connection reset, broken pipe, port gone
}

// isException reports whether err is a Modbus exception reply.
func isException(err error) bool {
	var ee *exceptionError
	return errors.As(err, &ee)
}

// isIllegalAddress reports whether err is the exception "illegal data address".
func isIllegalAddress(err error) bool {
	var ee *exceptionError
	return errors.As(err, &ee) && ee.code == 2
}

// silentKind reports whether errors of kind mean that the device did not answer at all (as
// opposed to answering wrongly).
func silentKind(kind string) bool { return kind == kindTimeout || kind == kindConnection }

// asProtocolError returns err's *protocolError, or nil; it allocates nothing when err is nil
// (a good reply), unlike errors.As with a variable of the caller's.
func asProtocolError(err error) *protocolError {
	if err == nil {
		return nil
	}
	var pe *protocolError
	if errors.As(err, &pe) {
		return pe
	}
	return nil
}
