package modbus

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wellgate/wellgate/config"
)

// serialSettings is one RTU bus's line settings; every device on a port must agree on them.
type serialSettings struct {
	port     string
	baud     int
	dataBits int
	parity   string // "N", "E" or "O"
	stopBits int
}

// baudRates are the rates goburrow/serial accepts on Linux.
var baudRates = []int{50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200,
	38400, 57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000, 1152000, 1500000,
	2000000, 2500000, 3000000, 3500000, 4000000}

// device is one validated device with its poll state.
// pollInterval is the interval in force: the scan rate override, else the configured one.
func (d *device) pollInterval() time.Duration {
	if d.override != nil {
		if o := d.override.Load(); o > 0 {
			return time.Duration(o)
		}
	}
	return d.interval
}

type device struct {
	name     string
	driver   string
	unit     byte
	interval time.Duration // as configured
	override *atomic.Int64 // the driver's scan rate override (ns), when set; may be nil
	timeout  time.Duration
	maxRegs  int
	maxBits  int
	maxGap   int
	endpoint string         // "tcp host:port" or "rtu /dev/tty…": devices sharing it share a goroutine
	addr     string         // host:port for TCP
	serial   serialSettings // for RTU
	tags     []*tag
	byName   map[string]*tag
	log      *slog.Logger

	planMu sync.Mutex
	reqs   []*request      // the plan: every read of one poll cycle, by table and start
	cuts   map[table][]int // positions no merged read may span (from illegal-address splits)

	// Owned by the endpoint goroutine.
	next     time.Time // next poll
	fails    int       // poll cycles failed in a row (communication errors, not exceptions)
	lastKind string    // kind of the error that failed the last failed cycle
	state    devState

	stats stats
}

// devState is what the sink was last told about a device.
type devState uint8

const (
	stateUnknown devState = iota
	stateUp
	stateDown
)

// parseDevice validates one device and its tags; it returns every problem it finds.
func parseDevice(cfg *config.Config, cd *config.Device, log *slog.Logger) (*device, config.Errors) {
	var errs config.Errors
	bad := func(format string, args ...any) { errs = append(errs, cfg.DeviceError(cd, format, args...)) }
	d := &device{
		name: cd.Name, driver: cd.Driver, interval: cd.PollInterval.D(), timeout: cd.Timeout.D(),
		maxRegs: cd.MaxRegisters, maxBits: cd.MaxBits, maxGap: cd.MaxGap,
		byName: map[string]*tag{}, cuts: map[table][]int{},
		log: log.With("device", cd.Name),
	}
	if cd.Name == "" {
		bad("device has no name")
	}
	for _, msg := range d.limits() {
		bad("%s", msg)
	}
	if cd.Driver == config.DriverModbusTCP {
		errs = append(errs, d.tcpSettings(cfg, cd)...)
	} else {
		errs = append(errs, d.rtuSettings(cfg, cd)...)
	}
	order, err := parseOrder(cd.ByteOrder, orderABCD)
	if err != nil {
		bad("%v", err)
	}
	for i := range cd.Tags {
		ct := &cd.Tags[i]
		t, terrs := parseTag(cfg, cd, ct, order)
		errs = append(errs, terrs...)
		if t == nil || ct.Name == "" {
			continue
		}
		if _, dup := d.byName[t.name]; dup {
			errs = append(errs, cfg.TagError(cd, ct, "tag name is used twice in this device"))
			continue
		}
		t.index = len(d.tags)
		d.tags = append(d.tags, t)
		d.byName[t.name] = t
	}
	return d, errs
}

// limits applies defaults to the device's timing and read limits and checks them.
func (d *device) limits() []string {
	var msgs []string
	if d.interval == 0 {
		d.interval = defaultInterval
	}
	if d.timeout == 0 {
		d.timeout = defaultTimeout
	}
	if d.interval < time.Millisecond || d.timeout < time.Millisecond {
		msgs = append(msgs, "poll_interval and timeout must be at least 1ms")
	}
	if d.maxRegs == 0 {
		d.maxRegs = defaultMaxRegisters
	}
	if d.maxBits == 0 {
		d.maxBits = defaultMaxBits
	}
	if d.maxRegs < 1 || d.maxRegs > defaultMaxRegisters {
		msgs = append(msgs, fmt.Sprintf("max_registers %d must be 1…%d", d.maxRegs, defaultMaxRegisters))
		d.maxRegs = defaultMaxRegisters
	}
	if d.maxBits < 1 || d.maxBits > defaultMaxBits {
		msgs = append(msgs, fmt.Sprintf("max_bits %d must be 1…%d", d.maxBits, defaultMaxBits))
		d.maxBits = defaultMaxBits
	}
	if d.maxGap < 0 {
		msgs = append(msgs, fmt.Sprintf("max_gap %d must not be negative", d.maxGap))
		d.maxGap = 0
	}
	return msgs
}

func (d *device) tcpSettings(cfg *config.Config, cd *config.Device) config.Errors {
	var errs config.Errors
	addr, err := tcpEndpoint(cd.Address)
	if err != nil {
		errs = append(errs, cfg.DeviceError(cd, "%v", err))
	}
	d.addr, d.endpoint = addr, "tcp "+addr
	if cd.UnitID < 0 || cd.UnitID > 255 {
		errs = append(errs, cfg.DeviceError(cd, "unit_id %d must be 0…255", cd.UnitID))
	}
	d.unit = byte(cd.UnitID)
	if cd.Port != "" || cd.Parity != "" || cd.Baud != 0 || cd.DataBits != 0 || cd.StopBits != 0 {
		errs = append(errs, cfg.DeviceError(cd, "port, baud, data_bits, parity and stop_bits apply to modbus-rtu only"))
	}
	return errs
}

func (d *device) rtuSettings(cfg *config.Config, cd *config.Device) config.Errors {
	var errs config.Errors
	bad := func(format string, args ...any) { errs = append(errs, cfg.DeviceError(cd, format, args...)) }
	s := serialSettings{port: cd.Port, baud: cd.Baud, dataBits: cd.DataBits, parity: strings.ToUpper(cd.Parity), stopBits: cd.StopBits}
	if s.port == "" {
		bad("modbus-rtu needs port, such as \"/dev/ttyUSB0\"")
	}
	if cd.Address != "" {
		bad("address applies to modbus-tcp only; a serial device has port")
	}
	if cd.UnitID < 1 || cd.UnitID > 247 {
		bad("unit_id %d must be 1…247 on a serial bus", cd.UnitID)
	}
	d.unit = byte(cd.UnitID)
	if s.baud == 0 {
		s.baud = defaultBaud
	}
	if !slices.Contains(baudRates, s.baud) {
		bad("baud %d is not a standard rate such as 9600, 19200 or 115200", s.baud)
	}
	if s.dataBits == 0 {
		s.dataBits = 8
	}
	if s.dataBits < 5 || s.dataBits > 8 {
		bad("data_bits %d must be 5…8", s.dataBits)
	}
	if s.stopBits == 0 {
		s.stopBits = 1
	}
	if s.stopBits != 1 && s.stopBits != 2 {
		bad("stop_bits %d must be 1 or 2", s.stopBits)
	}
	if s.parity != "N" && s.parity != "E" && s.parity != "O" {
		bad("parity must be set to N, E or O (there is no default: the bus's devices decide)")
	}
	d.serial, d.endpoint = s, "rtu "+s.port
	return errs
}
