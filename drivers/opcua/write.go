package opcua

import (
	"context"
	"errors"
	"fmt"

	"github.com/gopcua/opcua/ua"

	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/internal/logx"
)

// errNotConnected is returned by Write while a device has no session.
var errNotConnected = errors.New("the device has no session")

// Write converts v to the node's data type, writes it, logs the write's status code, reads
// the value back and returns it (drivers.Writer); publishing it is the caller's job. A tag
// that is not writable gives drivers.ErrNotWritable, a value that does not fit the node's type
// or the tag's min/max drivers.ErrOutOfRange; nothing is written then.
func (d *Driver) Write(ctx context.Context, device, tagName string, v drivers.Value) (drivers.Value, error) {
	dev := d.byName[device]
	if dev == nil {
		return drivers.Value{}, fmt.Errorf("device %q: %w", device, drivers.ErrUnknownTag)
	}
	t := dev.byName[tagName]
	if t == nil {
		return drivers.Value{}, fmt.Errorf("device %q: tag %q: %w", device, tagName, drivers.ErrUnknownTag)
	}
	got, err := dev.write(ctx, t, v)
	if err != nil {
		return drivers.Null(t.typ), fmt.Errorf("device %q: tag %q: %w", device, tagName, err)
	}
	return got, nil
}

func (d *device) write(ctx context.Context, t *tag, v drivers.Value) (drivers.Value, error) {
	if !t.writable {
		return drivers.Value{}, drivers.ErrNotWritable
	}
	if err := t.inRange(v); err != nil {
		return drivers.Value{}, err
	}
	c := d.conn()
	if c == nil {
		return drivers.Value{}, errNotConnected
	}
	nid, nodeType := c.node(t.index) // the client itself is safe for concurrent use

	if nid == nil {
		return drivers.Value{}, fmt.Errorf("node %s is refused in this session (see the log)", t.node)
	}
	if nodeType == 0 {
		return drivers.Value{}, fmt.Errorf("the data type of node %s is not known yet", t.node)
	}
	variant, err := toVariant(v, nodeType)
	if err != nil {
		return drivers.Value{}, err
	}
	req := &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{
		NodeID: nid, AttributeID: ua.AttributeIDValue,
		Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: variant},
	}}}
	wctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	t0 := d.drv.clock.Now()
	res, err := c.client.Write(wctx, req)
	cancel()
	if err == nil && len(res.Results) != 1 {
		err = fmt.Errorf("the server answered a write with %d results", len(res.Results))
	}
	if err != nil {
		d.stats.Failed(errorKind(err), err, d.drv.clock.Now())
		d.log.Warn("write failed", "tag", t.label(), "value", logx.Value(v.String()), "err", logx.Err(err))
		return drivers.Value{}, err
	}
	now := d.drv.clock.Now()
	d.stats.Answered(now.Sub(t0))
	d.stats.Good(now)
	status := res.Results[0]
	d.log.Info("write", "tag", t.label(), "node", t.node.String(), "value", logx.Value(v.String()),
		"as", typeName(nodeType), "status", statusText(status))
	if quality(status) == drivers.Bad {
		return drivers.Value{}, fmt.Errorf("the server refused the write: %w", status)
	}
	return d.readBack(ctx, c, t, nid)
}

// readBack reads a tag's value after a write.
func (d *device) readBack(ctx context.Context, c *conn, t *tag, nid *ua.NodeID) (drivers.Value, error) {
	rctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	t0 := d.drv.clock.Now()
	res, err := c.client.Read(rctx, &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnBoth,
		NodesToRead: []*ua.ReadValueID{{NodeID: nid, AttributeID: ua.AttributeIDValue}}})
	if err == nil && len(res.Results) != 1 {
		err = fmt.Errorf("the server answered a read with %d results", len(res.Results))
	}
	if err != nil {
		d.stats.Failed(errorKind(err), err, d.drv.clock.Now())
		return drivers.Value{}, fmt.Errorf("reading back: %w", err)
	}
	now := d.drv.clock.Now()
	d.stats.Answered(now.Sub(t0))
	d.stats.Good(now)
	dv := res.Results[0]
	if quality(dv.Status) == drivers.Bad {
		return drivers.Value{}, fmt.Errorf("reading back: %w", dv.Status)
	}
	v, err := toValue(dv.Value, t.typ)
	if err != nil {
		return drivers.Value{}, fmt.Errorf("reading back: %w", err)
	}
	return v, nil
}

// inRange checks a value against the tag's min and max.
func (t *tag) inRange(v drivers.Value) error {
	if t.min == nil && t.max == nil {
		return nil
	}
	n, ok := numberOfValue(v)
	if !ok {
		return nil
	}
	f := n.float()
	if (t.min != nil && f < *t.min) || (t.max != nil && f > *t.max) {
		return fmt.Errorf("%w: %s is outside min/max", drivers.ErrOutOfRange, v)
	}
	return nil
}
