package modbus

import (
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wellgate/wellgate/drivers"
)

// defaultTCPPort is the port of a Modbus TCP address that names none.
const defaultTCPPort = "502"

// baudRates are the rates goburrow/serial accepts on Linux.
var baudRates = []int{50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200,
	38400, 57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000, 1152000, 1500000,
	2000000, 2500000, 3000000, 3500000, 4000000}

// device is one validated device with its poll state.
type device struct {
	name     string
	driver   string // NameTCP or NameRTU
	unit     byte
	interval time.Duration // as configured
	schedule drivers.Schedule
	override *atomic.Int64 // the driver's scan rate override (ns), when set; may be nil
	timeout  time.Duration
	maxRegs  int
	maxBits  int
	maxGap   int
	// zeroBased: the five- and six-digit addresses count from 0 (zero_based).
	zeroBased bool
	// writeReg and writeCoil are the functions that write one register (6 or 16) and one
	// coil (5 or 15).
	writeReg, writeCoil byte
	maxBackoff          time.Duration // longest probe interval in quarantine
	endpoint            string        // "tcp host:port" or "rtu /dev/tty…": devices sharing it share a goroutine
	addr                string        // host:port for TCP
	order               byteOrder     // the tags' byte order unless they set their own
	serial              SerialOptions // for RTU, with the parity in upper case
	log                 *slog.Logger

	// The tags, in the configuration's order, and their descriptions, index for index: info
	// is what Devices hands out (shared, read only). byName holds the tags' indexes sorted by
	// name (the last of equal names first), for Write.
	tags   []tag
	info   []drivers.TagInfo
	byName drivers.TagIndex

	planMu sync.Mutex
	reqs   []*request      // the plan: every read of one poll cycle, by table and start
	cuts   map[table][]int // positions no merged read may span (from illegal-address splits)

	// Owned by the endpoint goroutine.
	next     time.Time // next poll
	fails    int       // poll cycles failed in a row (communication errors, not exceptions)
	lastKind string    // kind of the error that failed the last failed cycle
	state    devState

	stats drivers.Counters
}

// devState is what the sink was last told about a device.
type devState uint8

const (
	stateUnknown devState = iota
	stateUp
	stateDown
)

// pollInterval is the interval in force: the scan rate override, else the configured one.
func (d *device) pollInterval() time.Duration {
	if d.override != nil {
		if o := d.override.Load(); o > 0 {
			return time.Duration(o)
		}
	}
	return d.interval
}

// newDevice checks a device's own options (not its tags) and returns the device with every
// problem it finds. A value that breaks a rule is replaced by a usable one, so that the tags
// can still be checked against the device.
func newDevice(o *DeviceOptions, log *slog.Logger) (*device, problems) {
	d := &device{
		name: o.Name, driver: NameTCP, interval: o.PollInterval, timeout: o.Timeout,
		maxRegs: o.MaxRegisters, maxBits: o.MaxBits, maxGap: o.MaxGap, zeroBased: o.ZeroBased,
		maxBackoff: o.MaxBackoff, cuts: map[table][]int{},
		log: log.With("device", o.Name),
	}
	ps := d.limits(o.ByteOrder)
	ps = append(ps, d.protocol(o)...)
	if o.Serial == nil {
		ps = append(ps, d.tcpSettings(o)...)
	} else {
		ps = append(ps, d.rtuSettings(o)...)
	}
	return d, ps
}

// limits checks the device's byte order and read limits.
func (d *device) limits(order string) problems {
	var ps problems
	var err error
	if d.order, err = parseOrder(order); err != nil {
		ps.add("byte_order", "%v", err)
	}
	if d.maxRegs < 1 || d.maxRegs > maxReadRegisters {
		ps.add("max_registers", "max_registers must be from 1 to %d, not %d", maxReadRegisters, d.maxRegs)
		d.maxRegs = maxReadRegisters
	}
	if d.maxBits < 1 || d.maxBits > maxReadBits {
		ps.add("max_bits", "max_bits must be from 1 to %d, not %d", maxReadBits, d.maxBits)
		d.maxBits = maxReadBits
	}
	if d.maxGap < 0 {
		ps.add("max_gap", "max_gap must not be negative")
		d.maxGap = 0
	}
	return ps
}

// Bounds of the keys that protocol and rtuSettings check.
const (
	maxDelay      = 5 * time.Second // inter_frame_delay, turnaround_delay
	maxMaxBackoff = time.Hour       // max_backoff (the message says "1h")
)

// protocol checks the device's write functions and quarantine backoff.
func (d *device) protocol(o *DeviceOptions) problems {
	var ps problems
	switch strings.ToLower(o.WriteSingleRegister) {
	case "fc6":
		d.writeReg = fcWriteRegister
	case "fc16":
		d.writeReg = fcWriteRegisters
	default:
		ps.add("write_single_register", "write_single_register must be \"fc6\" or \"fc16\", not %q", o.WriteSingleRegister)
	}
	switch strings.ToLower(o.WriteCoil) {
	case "fc5":
		d.writeCoil = fcWriteCoil
	case "fc15":
		d.writeCoil = fcWriteCoils
	default:
		ps.add("write_coil", "write_coil must be \"fc5\" or \"fc15\", not %q", o.WriteCoil)
	}
	if o.MaxBackoff <= 0 || o.MaxBackoff > maxMaxBackoff {
		ps.add("max_backoff", "max_backoff must be more than 0s and at most 1h, not %v", o.MaxBackoff)
		d.maxBackoff = DefaultMaxBackoff
	}
	return ps
}

// tcpSettings checks a Modbus TCP device's address and unit id.
func (d *device) tcpSettings(o *DeviceOptions) problems {
	var ps problems
	if o.Address == "" {
		ps.add("address", "address is required for modbus-tcp (host or host:port)")
	} else if addr, msg := tcpAddress(o.Address); msg != "" {
		ps.add("address", "address %q: %s", o.Address, msg)
	} else {
		d.addr = addr
	}
	d.endpoint = "tcp " + d.addr
	if o.UnitID < 0 || o.UnitID > 247 {
		ps.add("unit_id", "unit_id must be from 0 to 247, not %d", o.UnitID)
	}
	d.unit = byte(o.UnitID)
	return ps
}

// rtuSettings checks a Modbus RTU device's serial line and unit id, in the order the
// configuration lists them.
func (d *device) rtuSettings(o *DeviceOptions) problems {
	var ps problems
	s := *o.Serial
	d.driver = NameRTU
	if s.Port == "" {
		ps.add("port", "port is required for modbus-rtu (a serial device such as \"/dev/ttyUSB0\")")
	}
	switch p := strings.ToUpper(s.Parity); {
	case s.Parity == "":
		ps.add("parity", "parity is required for modbus-rtu: N, E or O")
	case p == "N" || p == "E" || p == "O":
		s.Parity = p
	default:
		ps.add("parity", "parity %q is not one of N, E, O", s.Parity)
	}
	switch {
	case s.Baud <= 0:
		ps.add("baud", "baud must be greater than 0")
	case !slices.Contains(baudRates, s.Baud):
		ps.add("baud", "baud %d is not a standard rate such as 9600, 19200 or 115200", s.Baud)
	}
	if s.DataBits != 7 && s.DataBits != 8 {
		ps.add("data_bits", "data_bits must be 7 or 8, not %d", s.DataBits)
	}
	if s.StopBits != 1 && s.StopBits != 2 {
		ps.add("stop_bits", "stop_bits must be 1 or 2, not %d", s.StopBits)
	}
	if o.UnitID < 1 || o.UnitID > 247 {
		ps.add("unit_id", "unit_id must be from 1 to 247 for modbus-rtu, not %d", o.UnitID)
	}
	if s.InterFrameDelay < 0 || s.InterFrameDelay > maxDelay {
		ps.add("inter_frame_delay", "inter_frame_delay must be from 0s to %v, not %v", maxDelay, s.InterFrameDelay)
	}
	if s.TurnaroundDelay < 0 || s.TurnaroundDelay > maxDelay {
		ps.add("turnaround_delay", "turnaround_delay must be from 0s to %v, not %v", maxDelay, s.TurnaroundDelay)
	}
	d.unit = byte(o.UnitID)
	d.serial, d.endpoint = s, "rtu "+s.Port
	return ps
}

// sharesBusWith returns the key and what is wrong when d shares a serial port with first,
// the first device on that port, with other line settings; "" when nothing is.
func (d *device) sharesBusWith(first *device) (string, string) {
	a, b := d.serial, first.serial
	switch {
	case d.driver != NameRTU || a == b:
		return "", ""
	case a.Baud != b.Baud || a.DataBits != b.DataBits || a.Parity != b.Parity || a.StopBits != b.StopBits:
		return "port", fmt.Sprintf("port %s is shared with device %q, whose baud, data_bits, parity or stop_bits differ",
			d.serial.Port, first.name)
	}
	key := "inter_frame_delay"
	if a.InterFrameDelay == b.InterFrameDelay {
		key = "turnaround_delay"
	}
	return key, fmt.Sprintf("port %s is shared with device %q, whose inter_frame_delay or turnaround_delay differ",
		d.serial.Port, first.name)
}

// tcpAddress checks a Modbus TCP address, "host" or "host:port", and returns it with the port
// (502 when missing), or what is wrong.
func tcpAddress(addr string) (string, string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		if !strings.Contains(err.Error(), "missing port") {
			return "", "must be host or host:port, such as \"10.0.0.5:502\" (IPv6 in brackets: \"[fe80::1]:502\")"
		}
		host, port = strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]"), defaultTCPPort
	}
	if host == "" || strings.ContainsAny(host, " /[]") {
		return "", "must be host or host:port, such as \"10.0.0.5:502\""
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strings.HasPrefix(port, "+") {
		return "", "port " + strconv.Quote(port) + " is not a number from 1 to 65535"
	}
	return net.JoinHostPort(host, port), ""
}

// indexNames indexes the tags by name (among equal names the last one first, the one Write
// finds).
func (d *device) indexNames() { d.byName = drivers.NewTagIndex(d.info) }

// tag returns the tag named name (the last of that name), or nil.
func (d *device) tag(name string) *tag {
	i := d.byName.Find(d.info, name)
	if i < 0 {
		return nil
	}
	return &d.tags[i]
}
