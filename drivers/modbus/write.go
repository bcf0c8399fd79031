package modbus

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/wellgate/wellgate/drivers"
)

// writeJob is a write handed to the endpoint goroutine, encoded and checked beforehand.
type writeJob struct {
	d    *device
	t    *tag
	bit  bool   // coils and bits in registers
	wire []byte // registers, as they travel
	done chan writeResult
}

type writeResult struct {
	v   drivers.Value
	err error
}

// errNotRunning is returned by Write when Run is not running.
var errNotRunning = errors.New("modbus driver is not running")

// Write encodes v with the tag's type, byte order and scale, checks its range, writes it,
// reads it back and returns the value read back (drivers.Writer); publishing it is the
// caller's job, so that it goes out once. A tag that is not writable gives
// drivers.ErrNotWritable and a value out of range drivers.ErrOutOfRange; nothing is written
// then.
func (d *Driver) Write(ctx context.Context, device, tag string, v drivers.Value) (drivers.Value, error) {
	dev := d.byName[device]
	if dev == nil {
		return drivers.Value{}, fmt.Errorf("device %q: %w", device, drivers.ErrUnknownTag)
	}
	t := dev.tag(tag)
	if t == nil {
		return drivers.Value{}, fmt.Errorf("device %q: tag %q: %w", device, tag, drivers.ErrUnknownTag)
	}
	j, err := prepareWrite(dev, t, v)
	if err != nil {
		return drivers.Null(t.typ()), fmt.Errorf("device %q: tag %q: %w", device, tag, err)
	}
	e := d.byDevice[dev]
	d.mu.Lock()
	running := d.sink != nil
	d.mu.Unlock()
	if !running {
		return drivers.Null(t.typ()), errNotRunning
	}
	select {
	case e.jobs <- j:
	case <-e.stopped:
		return drivers.Null(t.typ()), errNotRunning
	case <-ctx.Done():
		return drivers.Null(t.typ()), ctx.Err()
	}
	select {
	case r := <-j.done:
		if r.err != nil {
			r.err = fmt.Errorf("device %q: tag %q: %w", device, tag, r.err)
		}
		return r.v, r.err
	case <-ctx.Done():
		return drivers.Null(t.typ()), ctx.Err()
	}
}

// prepareWrite checks and encodes a write without any I/O.
func prepareWrite(d *device, t *tag, v drivers.Value) (*writeJob, error) {
	if !t.info.Writable {
		return nil, drivers.ErrNotWritable
	}
	j := &writeJob{d: d, t: t, done: make(chan writeResult, 1)}
	var err error
	if t.kind == kBool {
		j.bit, err = encodeBool(v)
	} else {
		j.wire, err = encodeRegisters(t, v)
	}
	return j, err
}

// write runs a write job on the endpoint goroutine and hands the value read back to the
// caller of Write, which publishes it (the gateway reports it even inside a deadband).
func (e *endpoint) write(ctx context.Context, j *writeJob) {
	d, t := j.d, j.t
	err := e.send(ctx, j)
	if err != nil { // the gateway logs the outcome of every write, once, with who asked
		j.done <- writeResult{drivers.Null(t.typ()), err}
		return
	}
	r := &request{table: t.table, start: t.start, count: t.size, tags: []*tag{t}}
	data, err := e.read(ctx, d, r)
	if err != nil {
		j.done <- writeResult{drivers.Null(t.typ()), fmt.Errorf("written, but reading back failed: %w", err)}
		return
	}
	samples := make([]drivers.Sample, len(d.tags))
	if err := decodeResponse(r, data, time.Now(), samples); err != nil {
		j.done <- writeResult{drivers.Null(t.typ()), fmt.Errorf("written, but reading back failed: %w", err)}
		return
	}
	j.done <- writeResult{samples[t.index].Value, nil}
}

// send writes the job's value with the function that fits the tag and the device's
// write_coil and write_single_register.
func (e *endpoint) send(ctx context.Context, j *writeJob) error {
	d, t := j.d, j.t
	var o *op
	switch {
	case t.table == coils && d.writeCoil == fcWriteCoils:
		o = writeMultipleOp(fcWriteCoils, t, 1, []byte{b2u8(j.bit)})
	case t.table == coils:
		o = writeSingleOp(fcWriteCoil, t, 0xFF00*uint16(b2u8(j.bit)))
	case t.bit >= 0:
		return e.writeBit(ctx, j)
	case t.size == 1:
		o = e.writeRegister(d, t, binary.BigEndian.Uint16(j.wire))
	default:
		o = writeMultipleOp(fcWriteRegisters, t, t.size, j.wire)
	}
	_, err := e.do(ctx, d, o)
	return err
}

// writeRegister is the request that writes one register with the device's function.
func (e *endpoint) writeRegister(d *device, t *tag, v uint16) *op {
	if d.writeReg == fcWriteRegisters {
		return writeMultipleOp(fcWriteRegisters, t, 1, binary.BigEndian.AppendUint16(nil, v))
	}
	return writeSingleOp(fcWriteRegister, t, v)
}

// writeBit sets or clears one bit of a holding register by read-modify-write.
func (e *endpoint) writeBit(ctx context.Context, j *writeJob) error {
	t := j.t
	r := &request{table: t.table, start: t.start, count: 1, tags: []*tag{t}}
	data, err := e.read(ctx, j.d, r)
	if err != nil {
		return fmt.Errorf("reading the register: %w", err)
	}
	v := binary.BigEndian.Uint16(data)
	if j.bit {
		v |= 1 << t.bit
	} else {
		v &^= 1 << t.bit
	}
	_, err = e.do(ctx, j.d, e.writeRegister(j.d, t, v))
	return err
}

func b2u8(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}
