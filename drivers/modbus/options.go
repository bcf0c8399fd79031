package modbus

import "time"

// The driver names a device's driver key gives, and DeviceInfo.Driver reports.
const (
	NameTCP = "modbus-tcp"
	NameRTU = "modbus-rtu"
)

// Options are the devices one Driver polls.
type Options struct {
	Devices []DeviceOptions
}

// DeviceOptions is one Modbus device. New checks every field with the same rules that the
// configuration's validation reports with lines (see configuration.go); the keys every
// driver's devices have (name, poll interval, poll schedule, timeout) are the caller's to
// check, except that the interval and the timeout must be positive and the schedule one that
// drivers.ParseSchedule knows.
type DeviceOptions struct {
	Name string
	// Address is the Modbus TCP server: "host:port", or "host" for port 502. Used when Serial
	// is nil.
	Address string
	// Serial is the RTU line; nil for a Modbus TCP device.
	Serial *SerialOptions
	// UnitID is the unit (slave) id: 0…247 over TCP, 1…247 on a serial line.
	UnitID       int
	PollInterval time.Duration
	// PollSchedule is when polls start (see drivers.Schedule): "clock" (also "") at whole
	// multiples of the interval since the Unix epoch, or "start": every interval from the
	// first poll. Either way the first poll is at once.
	PollSchedule string
	Timeout      time.Duration // per request
	// ByteOrder is the device's byte order: ABCD, CDAB, BADC or DCBA (see the package comment).
	ByteOrder    string
	MaxRegisters int // registers in one read, 1…125
	MaxBits      int // coils or discrete inputs in one read, 1…2000
	MaxGap       int // unused registers (or bits) one read may span, 0 or more
	// ZeroBased makes the five- and six-digit addresses of the device's tags count from 0
	// ("40000" is holding register offset 0), for devices whose manuals number registers
	// that way. The prefixed forms ("hr:0") are protocol addresses either way.
	ZeroBased bool
	// WriteSingleRegister is how a tag of one register (and a bit in a register) is written:
	// "fc6" (write single register) or "fc16" (write multiple registers, with one).
	WriteSingleRegister string
	// WriteCoil is how a coil is written: "fc5" (write single coil) or "fc15" (write
	// multiple coils, with one).
	WriteCoil string
	// MaxBackoff is the longest interval at which a device that stopped answering is probed
	// while another device on its line answers (see the package comment); greater than 0.
	MaxBackoff time.Duration
	Tags       []TagOptions
}

// Defaults of the configuration's keys (newSettings applies them), for Options made in code.
const (
	DefaultMaxBackoff          = 10 * time.Second
	DefaultWriteSingleRegister = "fc6"
	DefaultWriteCoil           = "fc5"
)

// SerialOptions are an RTU line's settings. Every device on one port must agree on them.
type SerialOptions struct {
	Port     string // such as "/dev/ttyUSB0"
	Baud     int    // a standard rate such as 9600 or 19200
	DataBits int    // 7 or 8
	Parity   string // "N", "E" or "O" (either case)
	StopBits int    // 1 or 2
	// InterFrameDelay is the silence kept on the line between frames when it is longer than
	// the 3.5 character times computed from the baud and framing (1.75 ms above 19200
	// baud): for radios and slow converters. 0 keeps the computed interval; at most 5 s.
	InterFrameDelay time.Duration
	// TurnaroundDelay is more silence kept after the line was last busy (a reply, or the
	// end of a request that got none) before the next request, for converters and radios
	// that switch direction slowly. 0 for none; at most 5 s.
	TurnaroundDelay time.Duration
}

// TagOptions is one tag of a device.
type TagOptions struct {
	Name    string
	Address string // "40001", "400001", "hr:0", "40001.3" …: see the package comment
	// Type is bool, int16, uint16, int32, uint32, int64, uint64, float32, float64 or string;
	// "" is a bool in the bit tables and a uint16 in the register tables.
	Type      string
	ByteOrder string   // "" takes the device's
	Length    int      // registers, for strings only
	Scale     *float64 // value = raw*scale + offset, published as a Double
	Offset    *float64

	Units       string
	Description string
	Writable    bool
	Min, Max    *float64 // writes outside are refused
	// Report by exception (see drivers.TagInfo).
	Deadband        float64
	DeadbandPercent float64
	MaxInterval     time.Duration
}
