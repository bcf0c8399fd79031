package sim

import (
	"context"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
)

// readVars reads the values of variables T0000… of a simulated server.
func readVars(t *testing.T, ctx context.Context, c *opcua.Client, ns uint16, tags int) []int16 {
	t.Helper()
	req := &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnBoth}
	for j := range tags {
		req.NodesToRead = append(req.NodesToRead, &ua.ReadValueID{NodeID: ua.NewStringNodeID(ns, TagName(j)), AttributeID: ua.AttributeIDValue})
	}
	resp, err := c.Read(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int16, tags)
	for j, r := range resp.Results {
		v, ok := r.Value.Value().(int16)
		if r.Status != ua.StatusOK || !ok {
			t.Fatalf("%s: status %v, value %#v", TagName(j), r.Status, r.Value.Value())
		}
		out[j] = v
	}
	return out
}

// TestFleetOPCUA reads a simulated OPC UA server's variables as the driver does (security
// None, anonymous, the namespace found by its URI), sees them change and writes one.
func TestFleetOPCUA(t *testing.T) {
	const tags = 20
	f := startFleet(t, FleetOptions{OPCUA: 1, Tags: tags, ChangePercent: 50})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := opcua.NewClient(f.OPCUAEndpoints()[0], opcua.SecurityMode(ua.MessageSecurityModeNone))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	ns, err := c.FindNamespace(ctx, OPCUANamespace)
	if err != nil {
		t.Fatal(err)
	}
	before := readVars(t, ctx, c, ns, tags)
	for {
		after := readVars(t, ctx, c, ns, tags)
		changed := 0
		for j := range tags {
			if after[j] != before[j] {
				changed++
			}
		}
		if changed >= 3 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%d variables changed: %v → %v", changed, before, after)
		}
	}

	// Writes need a variable that stops changing: a server of its own whose values stay.
	g := startFleet(t, FleetOptions{OPCUA: 1, Tags: tags})
	w, err := opcua.NewClient(g.OPCUAEndpoints()[0], opcua.SecurityMode(ua.MessageSecurityModeNone))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer w.Close(context.Background())
	resp, err := w.Write(ctx, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{
		{NodeID: ua.NewStringNodeID(ns, TagName(4)), AttributeID: ua.AttributeIDValue,
			Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(int16(-1234))}},
		{NodeID: ua.NewStringNodeID(ns, TagName(5)), AttributeID: ua.AttributeIDValue,
			Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: ua.MustVariant(float32(1))}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Results[0] != ua.StatusOK || resp.Results[1] != ua.StatusBadTypeMismatch {
		t.Errorf("write results %v, want Good and BadTypeMismatch", resp.Results)
	}
	if got := readVars(t, ctx, w, ns, tags); got[4] != -1234 || got[5] != 5 {
		t.Errorf("after the writes T0004 = %d, T0005 = %d; want -1234 and 5", got[4], got[5])
	}
}
