package bridge

import (
	"testing"
	"time"

	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/internal/peers"
	"github.com/wellgate/wellgate/sparkplug"
)

// setpointValues returns the "setpoint" values the collector saw in DDATA, in order.
func setpointValues(msgs []received) []float64 {
	var out []float64
	for _, m := range msgs {
		if m.topic != "spBv1.0/G/DDATA/E/well1" || m.payload == nil {
			continue
		}
		for _, mt := range m.payload.Metrics {
			if mt.Name == "setpoint" {
				v, _ := mt.DriverValue(drivers.Double)
				out = append(out, v.Float64())
			}
		}
	}
	return out
}

func contains(vs []float64, v float64) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

// TestWrittenInsideDeadband: an upstream DCMD writes a value inside the tag's deadband (1.0);
// the value read back, handed in through Written, reaches the host in DDATA although report by
// exception holds the same kind of change back when it comes as a sample.
func TestWrittenInsideDeadband(t *testing.T) {
	m := peers.StartMosquitto(t)
	col := newCollector(t, m.Addr)
	h := newHarness(t, "", testOptions(m.URL()), nil).start()
	h.waitState(StateOnline, 10*time.Second)
	setpoint := func(v float64) []drivers.Sample {
		return []drivers.Sample{{Device: "well1", Tag: "setpoint", Value: drivers.DoubleValue(v), Quality: drivers.Good, Time: h.clk.Now()}}
	}
	h.b.Samples(setpoint(10))
	h.waitFor(10*time.Second, "setpoint 10", func() bool { return contains(setpointValues(col.all()), 10) })
	h.b.Samples(setpoint(10.4)) // a poll inside the deadband: held back

	p := sparkplug.Payload{Metrics: []sparkplug.Metric{{Name: "setpoint", Datatype: sparkplug.TypeDouble}}}
	p.Metrics[0].SetValue(drivers.DoubleValue(10.5)) // inside the deadband too
	col.c.Publish("spBv1.0/G/DCMD/E/well1", 1, false, p.Marshal()).Wait()
	h.waitFor(10*time.Second, "the read-back 10.5 in DDATA", func() bool { return contains(setpointValues(col.all()), 10.5) })
	if vs := setpointValues(col.all()); contains(vs, 10.4) {
		t.Fatalf("setpoint values %v: 10.4 is inside the deadband and should have been held back", vs)
	}
}
