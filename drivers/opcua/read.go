package opcua

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"

	"github.com/wellgate/wellgate/drivers"
)

// readIDs reads attributes in as many requests as the server's MaxNodesPerRead requires. A
// server that refuses a request with BadTooManyOperations (a limit it did not state) gets
// requests half as large from then on.
func (c *conn) readIDs(ctx context.Context, rvs []*ua.ReadValueID) ([]*ua.DataValue, error) {
	out := make([]*ua.DataValue, 0, len(rvs))
	clk := c.d.drv.clock
	for start := 0; start < len(rvs); {
		n := min(max(c.lim.read, 1), len(rvs)-start)
		rctx, cancel := context.WithTimeout(ctx, c.d.opts.Timeout)
		t0 := clk.Now()
		res, err := c.client.Read(rctx, &ua.ReadRequest{NodesToRead: rvs[start : start+n], TimestampsToReturn: ua.TimestampsToReturnBoth})
		cancel()
		if errors.Is(err, ua.StatusBadTooManyOperations) && n > 1 {
			c.lim.read = n / 2
			c.d.log.Info("the server refused a read of many nodes; reading fewer at a time", "nodes", n, "now", c.lim.read)
			continue
		}
		if err == nil && (res == nil || len(res.Results) != n) {
			err = fmt.Errorf("the server answered a read of %d nodes with %d results", n, resultCount(res))
		}
		if err != nil {
			c.d.stats.Failed(errorKind(err), err, clk.Now())
			return nil, err
		}
		now := clk.Now()
		c.d.stats.Answered(now.Sub(t0))
		c.d.stats.Good(now)
		c.lastOK = now
		out = append(out, res.Results...)
		start += n
	}
	return out, nil
}

func resultCount(res *ua.ReadResponse) int {
	if res == nil {
		return 0
	}
	return len(res.Results)
}

// checkTags resolves every tag's node id and reads its DataType, and refuses, for this
// session, the tags whose node is missing or whose type cannot be published as the tag's.
func (c *conn) checkTags(ctx context.Context) error {
	d := c.d
	c.ids = make([]*ua.NodeID, len(d.tags))
	c.nodeType = make([]ua.TypeID, len(d.tags))
	c.last = make([]lastSeen, len(d.tags))
	ns := c.client.Namespaces()
	var rvs []*ua.ReadValueID
	var idx []int
	for i, t := range d.tags {
		nid, err := t.node.resolve(ns)
		if err != nil {
			d.tagProblem(t, fmt.Sprintf("node %s: %v", t.node, err))
			continue
		}
		c.ids[i] = nid
		rvs = append(rvs, &ua.ReadValueID{NodeID: nid, AttributeID: ua.AttributeIDDataType})
		idx = append(idx, i)
	}
	res, err := c.readIDs(ctx, rvs)
	if err != nil {
		return err
	}
	for k, dv := range res {
		i := idx[k]
		if msg := c.checkType(i, dv); msg != "" {
			c.refuse(i)
			d.tagProblem(d.tags[i], msg)
			continue
		}
		d.tagProblem(d.tags[i], "")
	}
	return nil
}

// checkType checks one tag's node against the tag's type, from its DataType attribute. It
// returns the problem, or "" when the tag can be read.
func (c *conn) checkType(i int, dv *ua.DataValue) string {
	t := c.d.tags[i]
	if dv == nil || quality(dv.Status) == drivers.Bad {
		st := ua.StatusBad
		if dv != nil {
			st = dv.Status
		}
		return fmt.Sprintf("node %s: %s", t.node, statusText(st))
	}
	var dt *ua.NodeID
	if dv.Value != nil {
		switch v := dv.Value.Value().(type) {
		case *ua.NodeID:
			dt = v
		case *ua.ExpandedNodeID:
			dt = v.NodeID
		}
	}
	builtin, known := builtinOfDataType(dt)
	if !known {
		return "" // abstract, enumerated or vendor type: the first value's type decides
	}
	return c.acceptType(i, builtin)
}

// acceptType checks a node's built-in type against the tag and records it.
func (c *conn) acceptType(i int, builtin ua.TypeID) string {
	t := c.d.tags[i]
	tight, ok := sparkplugType(builtin)
	if !ok {
		return fmt.Sprintf("node %s holds %s values, which have no Sparkplug type", t.node, typeName(builtin))
	}
	if t.declared == drivers.Unknown {
		c.d.learnType(t, tight)
	}
	if !convertible(builtin, t.typ) {
		if t.declared == drivers.Unknown {
			return fmt.Sprintf("node %s holds %s values; the tag is published as %s until wellgate restarts (or set type = %q)",
				t.node, typeName(builtin), t.typ, tight.String())
		}
		return fmt.Sprintf("node %s holds %s values, which cannot be published as %s: set type = %q or remove type",
			t.node, typeName(builtin), t.typ, tight.String())
	}
	c.mu.Lock()
	c.nodeType[i] = builtin
	c.mu.Unlock()
	return ""
}

// refuse stops reading tag i for the rest of the session.
func (c *conn) refuse(i int) {
	c.mu.Lock()
	c.ids[i] = nil
	c.mu.Unlock()
}

// node returns tag i's node id and built-in type, for writers.
func (c *conn) node(i int) (*ua.NodeID, ua.TypeID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ids[i], c.nodeType[i]
}

// valueIDs returns the Value attribute of every tag usable in this session, and their tags.
func (c *conn) valueIDs() ([]*ua.ReadValueID, []int) {
	var rvs []*ua.ReadValueID
	var idx []int
	for i, nid := range c.ids {
		if nid != nil {
			rvs = append(rvs, &ua.ReadValueID{NodeID: nid, AttributeID: ua.AttributeIDValue})
			idx = append(idx, i)
		}
	}
	return rvs, idx
}

// pollOnce reads every tag and delivers one batch with a sample per tag (bad for the tags
// refused in this session).
func (c *conn) pollOnce(ctx context.Context, sink drivers.Sink) error {
	rvs, idx := c.valueIDs()
	res, err := c.readIDs(ctx, rvs)
	if err != nil {
		return err
	}
	d := c.d
	now := d.drv.clock.Now()
	batch := make([]drivers.Sample, len(d.tags))
	for i, t := range d.tags {
		batch[i] = drivers.Sample{Device: d.name, Tag: t.name, Value: drivers.Null(t.typ), Quality: drivers.Bad, Time: now}
	}
	for k, dv := range res {
		batch[idx[k]] = c.sample(idx[k], dv, now)
	}
	if len(batch) > 0 {
		sink.Samples(batch)
	}
	return nil
}

// sample turns a tag's DataValue into a sample of the tag's type, keeping the source
// timestamp (else the server's, else now).
func (c *conn) sample(i int, dv *ua.DataValue, now time.Time) drivers.Sample {
	d := c.d
	t := d.tags[i]
	s := drivers.Sample{Device: d.name, Tag: t.name, Value: drivers.Null(t.typ), Quality: drivers.Bad, Time: now}
	defer func() { c.last[i] = lastSeen{v: s.Value, q: s.Quality, set: true} }()
	if dv == nil {
		return s
	}
	switch {
	case !dv.SourceTimestamp.IsZero():
		s.Time = dv.SourceTimestamp
	case !dv.ServerTimestamp.IsZero():
		s.Time = dv.ServerTimestamp
	}
	q := quality(dv.Status)
	if q == drivers.Bad {
		return s
	}
	if c.nodeType[i] == 0 && dv.Value != nil && dv.Value.Type() != ua.TypeIDNull && !dv.Value.Has(ua.VariantArrayValues) {
		if msg := c.acceptType(i, dv.Value.Type()); msg != "" {
			d.tagProblem(t, msg)
			return s
		}
	}
	v, err := toValue(dv.Value, t.typ)
	if err != nil {
		d.tagProblem(t, fmt.Sprintf("node %s: %v", t.node, err))
		return s
	}
	s.Value, s.Quality = v, q
	return s
}

// keepAlive reads the server's state when no request has succeeded for a keep-alive period;
// an error, or a server that is not Running, ends the session.
func (c *conn) keepAlive(ctx context.Context) error {
	if c.d.drv.clock.Since(c.lastOK) < c.d.opts.KeepAlive {
		return nil
	}
	rvs := []*ua.ReadValueID{
		{NodeID: ua.NewNumericNodeID(0, id.Server_ServerStatus_State), AttributeID: ua.AttributeIDValue},
		{NodeID: ua.NewNumericNodeID(0, id.Server_ServerStatus_CurrentTime), AttributeID: ua.AttributeIDValue},
	}
	res, err := c.readIDs(ctx, rvs)
	if err != nil {
		return fmt.Errorf("keep-alive: %w", err)
	}
	if dv := res[0]; dv != nil && quality(dv.Status) == drivers.Good && dv.Value != nil {
		if n, ok := numberOf(dv.Value.Value()); ok && n.float() != float64(ua.ServerStateRunning) {
			return fmt.Errorf("keep-alive: the server state is %s", ua.ServerState(int32(n.float())))
		}
	}
	return nil
}
