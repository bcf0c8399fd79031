package bridge

import (
	"github.com/wellgate/wellgate/drivers"
)

// event is something the run loop reacts to. Every event type says how it is handled, so that
// an event without a handler does not compile. apply runs on the loop's goroutine only (or,
// for a bridge whose Run never started, in Close, which then owns the loop state).
type event interface {
	apply(b *Bridge)
}

type (
	// samplesEvent is a driver batch (Samples).
	samplesEvent []drivers.Sample
	// writtenEvent is the values read back after a command's write (Written).
	writtenEvent []drivers.Sample
	// deviceEvent is a device's communications going up or down (DeviceState).
	deviceEvent struct {
		device string
		up     bool
	}
	// dialedEvent is a finished connection attempt, from the dialing goroutine.
	dialedEvent struct {
		c   *conn
		err error
	}
	// failedEvent says that c failed: a publish failed or paho lost the connection. One at a
	// time (conn.noted). Progress (c.acked, c.proven) the loop reads on its tick.
	failedEvent struct{ c *conn }
	// inboundEvent is a message received from upstream on c (commands, STATE, down rules).
	inboundEvent struct {
		c        *conn
		topic    string
		payload  []byte
		retained bool // a retained message (replayed on subscribing)
	}
	// nextServerEvent asks the loop to move to the next server (NextServer).
	nextServerEvent struct{}
	// reconfigureEvent gives the session a new device set (Reconfigure).
	reconfigureEvent struct {
		devices []drivers.DeviceInfo
		done    chan<- error // buffered: receives the result
	}
)

func (ev samplesEvent) apply(b *Bridge)     { b.onSamples(ev, false) }
func (ev writtenEvent) apply(b *Bridge)     { b.onSamples(ev, true) }
func (ev deviceEvent) apply(b *Bridge)      { b.onDevice(ev) }
func (ev message) apply(b *Bridge)          { b.onForward(ev) }
func (ev dialedEvent) apply(b *Bridge)      { b.onDialed(ev) }
func (ev failedEvent) apply(b *Bridge)      { b.onFailed(ev.c) }
func (ev inboundEvent) apply(b *Bridge)     { b.onInbound(ev) }
func (ev nextServerEvent) apply(b *Bridge)  { b.nextServer() }
func (ev reconfigureEvent) apply(b *Bridge) { b.onReconfigure(ev) }

var (
	_ event = samplesEvent(nil)
	_ event = writtenEvent(nil)
	_ event = deviceEvent{}
	_ event = message{}
	_ event = dialedEvent{}
	_ event = failedEvent{}
	_ event = inboundEvent{}
	_ event = nextServerEvent{}
	_ event = reconfigureEvent{}
)
