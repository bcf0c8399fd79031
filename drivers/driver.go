package drivers

import (
	"context"
	"io"
	"strconv"
	"time"
)

// Quality is a tag's quality, in the numbers Ignition reads from the Sparkplug `Quality` property.
type Quality int32

// Qualities.
const (
	Bad   Quality = 0
	Good  Quality = 192
	Stale Quality = 500
)

func (q Quality) String() string {
	switch q {
	case Good:
		return "good"
	case Bad:
		return "bad"
	case Stale:
		return "stale"
	}
	return "quality(" + strconv.Itoa(int(q)) + ")"
}

// Sample is one reading of one tag.
type Sample struct {
	Device  string // device name as configured
	Tag     string // tag name as configured (may contain '/' folders)
	Value   Value  // typed value; null when there is none (bad quality)
	Quality Quality
	Time    time.Time // when the value was read (source timestamp where the device gives one)
}

// Sink receives what a driver produces. Implementations must not block for long: drivers call
// them from their poll loops. A Sink is safe for concurrent use.
type Sink interface {
	// Samples delivers one poll's readings. The slice is owned by the callee after the call:
	// the driver does not touch it again. A driver may take it from NewBatch; the callee's
	// last holder may give it back with Release.
	Samples(batch []Sample)
	// DeviceState reports that a device's communications went up (err == nil) or down.
	DeviceState(device string, up bool, err error)
}

// Driver polls or subscribes to one or more devices and delivers samples to a Sink.
//
// Lifecycle: Run blocks until ctx is cancelled and then returns nil, or returns an error that
// makes further running pointless (never for a device that is merely unreachable: a driver
// retries those itself with backoff). Run is called once.
type Driver interface {
	Run(ctx context.Context, sink Sink) error
}

// Writer is implemented by drivers whose devices accept writes. Write encodes v with the tag's
// type and scaling, writes it, reads it back and returns the value read back, which the caller
// publishes. It refuses tags that are not writable and values out of range, writing nothing.
type Writer interface {
	Write(ctx context.Context, device, tag string, v Value) (Value, error)
}

// ScanRater is implemented by drivers whose poll rate can be changed while they run (the
// Sparkplug Node Control/Scan Rate metric). SetScanRate makes every device poll at rate from
// its next poll on; 0 restores each device's configured interval. It is safe to call while
// Run runs.
type ScanRater interface {
	SetScanRate(rate time.Duration)
}

// Planner is implemented by drivers that plan their requests before they poll. WritePlan
// prints the plan, for `wellgate check -plan`, without any I/O to the devices.
type Planner interface {
	WritePlan(w io.Writer)
}

// ErrNotWritable and friends are returned by Writer implementations; match with errors.Is.
var (
	ErrNotWritable = errorString("tag is not writable")
	ErrUnknownTag  = errorString("unknown tag")
	ErrOutOfRange  = errorString("value out of range")
)

type errorString string

func (e errorString) Error() string { return string(e) }
