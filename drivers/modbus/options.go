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
// driver's devices have (name, poll interval, timeout) are the caller's to check, except
// that the interval and the timeout must be positive.
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
	Timeout      time.Duration // per request
	// ByteOrder is the device's byte order: ABCD, CDAB, BADC or DCBA (see the package comment).
	ByteOrder    string
	MaxRegisters int // registers in one read, 1…125
	MaxBits      int // coils or discrete inputs in one read, 1…2000
	MaxGap       int // unused registers (or bits) one read may span, 0 or more
	Tags         []TagOptions
}

// SerialOptions are an RTU line's settings. Every device on one port must agree on them.
type SerialOptions struct {
	Port     string // such as "/dev/ttyUSB0"
	Baud     int    // a standard rate such as 9600 or 19200
	DataBits int    // 7 or 8
	Parity   string // "N", "E" or "O" (either case)
	StopBits int    // 1 or 2
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
