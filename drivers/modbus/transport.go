package modbus

import (
	"errors"
	"net"
	"strings"
	"time"

	"github.com/goburrow/modbus"
	"github.com/goburrow/serial"
)

// link is the connection (TCP) or port (RTU) an endpoint's goroutine owns. It is used by that
// goroutine only.
type link interface {
	// client returns the client that talks to unit over the shared connection.
	client(unit byte) modbus.Client
	// connect opens the connection or port if it is not open.
	connect() error
	// close closes it; the next request opens it again. Idempotent.
	close()
	// setTimeout sets the timeout of the following requests.
	setTimeout(d time.Duration)
}

// Errors the driver itself detects.
var (
	errGarbage  = errors.New("garbage response")
	errTimeout  = errors.New("timeout")
	errNoAnswer = errors.New("device is not answering")
)

// connError marks an error opening a connection or a port.
type connError struct{ err error }

func (e *connError) Error() string { return "connect: " + e.err.Error() }
func (e *connError) Unwrap() error { return e.err }

// Error kinds, as counted in drivers.DeviceStatus.ErrorsByKind.
const (
	kindTimeout    = "timeout"
	kindException  = "exception"
	kindCRC        = "crc"
	kindConnection = "connection"
	kindGarbage    = "garbage"
)

// errorKind classifies an error from a request.
func errorKind(err error) string {
	var me *modbus.ModbusError
	var ce *connError
	var ne net.Error
	switch {
	case errors.As(err, &me):
		return kindException
	case errors.As(err, &ce):
		return kindConnection
	case errors.Is(err, errTimeout), errors.Is(err, serial.ErrTimeout), errors.As(err, &ne) && ne.Timeout():
		return kindTimeout
	case strings.Contains(err.Error(), "crc"):
		return kindCRC
	case errors.Is(err, errGarbage), strings.HasPrefix(err.Error(), "modbus: "):
		return kindGarbage
	}
	return kindConnection // EOF, connection reset, broken pipe, port gone
}

// isIllegalAddress reports whether err is the exception "illegal data address".
func isIllegalAddress(err error) bool {
	var me *modbus.ModbusError
	return errors.As(err, &me) && me.ExceptionCode == modbus.ExceptionCodeIllegalDataAddress
}

// tcpLink is one Modbus TCP connection shared by every unit id behind an endpoint. Each unit
// gets its own packager (unit id, transaction ids) over the shared transporter.
type tcpLink struct {
	shared  *modbus.TCPClientHandler
	clients map[byte]modbus.Client
	addr    string
}

func newTCPLink(addr string) *tcpLink {
	h := modbus.NewTCPClientHandler(addr)
	h.IdleTimeout = 0 // its idle timer would close the connection under a request
	return &tcpLink{shared: h, clients: map[byte]modbus.Client{}, addr: addr}
}

func (l *tcpLink) client(unit byte) modbus.Client {
	c, ok := l.clients[unit]
	if !ok {
		p := modbus.NewTCPClientHandler(l.addr) // used as the packager only
		p.SlaveId = unit
		c = modbus.NewClient2(p, l.shared)
		l.clients[unit] = c
	}
	return c
}

func (l *tcpLink) connect() error {
	if err := l.shared.Connect(); err != nil {
		return &connError{err}
	}
	return nil
}

func (l *tcpLink) close()                     { _ = l.shared.Close() }
func (l *tcpLink) setTimeout(d time.Duration) { l.shared.Timeout = d }
