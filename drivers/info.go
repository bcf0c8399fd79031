package drivers

import "time"

// TagInfo describes one tag as the rest of the gateway sees it: the Sparkplug metric it becomes.
//
// A driver holds one per configured tag, which the gateway's store and sessions share: the
// fields are ordered so that Type and Writable share a word (96 bytes, not 104).
type TagInfo struct {
	Name        string // metric name; '/' separates folders
	Type        Type   // the tightest type that holds every value the tag can have
	Writable    bool
	Units       string
	Description string
	// Address says where the value comes from, for people: "hr:40001 (2 registers, float32
	// ABCD)", "ns=2;s=Tank.Level". Optional.
	Address string

	// Report by exception: a new value is reported when it differs from the last reported one
	// by more than Deadband (absolute) or DeadbandPercent (of the last reported value), or when
	// MaxInterval has passed since the last report. Quality changes are always reported.
	Deadband        float64
	DeadbandPercent float64
	MaxInterval     time.Duration
}

// DeviceInfo describes one device and its tags.
type DeviceInfo struct {
	Name   string
	Driver string
	// Endpoint says how the device is reached, for people: "10.0.0.5:502 unit 1",
	// "/dev/ttyUSB0 9600 8N1 unit 3", "opc.tcp://10.0.0.30:4840". Optional.
	Endpoint string
	Tags     []TagInfo
}

// Describer is implemented by drivers: the devices and tags they serve, known before Run.
type Describer interface {
	Devices() []DeviceInfo
}

// DeviceStatus is a device's communication counters, for the status page and metrics.
type DeviceStatus struct {
	Device       string
	Up           bool
	Requests     uint64
	Errors       uint64
	ErrorsByKind map[string]uint64 // "timeout", "exception", "crc", "connection", ...
	LastError    string
	LastErrorAt  time.Time
	LastGood     time.Time
	ResponseTime time.Duration // last successful request
}

// StatusReporter is implemented by drivers that keep per-device counters.
type StatusReporter interface {
	Status() []DeviceStatus
}
