package sphost

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/sparkplug"
)

// recorder is a sparkplug.Publisher that records what a QoS 1 subscriber would see.
type recorder struct {
	mu   sync.Mutex
	msgs []Message
}

func (r *recorder) Publish(topic string, qos byte, retain bool, payload []byte) error {
	t, err := sparkplug.ParseTopic(topic)
	if err != nil {
		return err
	}
	m := Message{Topic: t, Raw: payload, QoS: min(qos, 1), Retain: retain}
	m.Payload, m.Err = sparkplug.Unmarshal(payload)
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
	return nil
}

// will is what the broker publishes for a connection lost with bdSeq.
func (r *recorder) will(t *testing.T, bdSeq uint64) {
	if err := r.Publish(sparkplug.NodeTopic(tGroup, sparkplug.NDEATH, tEdge), 1, false, sparkplug.WillPayload(bdSeq)); err != nil {
		t.Fatal(err)
	}
}

var sessionDevices = []drivers.DeviceInfo{
	{Name: "PLC1", Driver: "modbus-tcp", Tags: []drivers.TagInfo{
		{Name: "Level", Type: drivers.UInt16}, {Name: "Offset", Type: drivers.Int8},
		{Name: "Flow", Type: drivers.Float, Units: "m3/h"}, {Name: "Count", Type: drivers.UInt32},
		{Name: "Setpoint", Type: drivers.Int16, Writable: true},
	}},
	{Name: "PLC2", Driver: "modbus-tcp", Tags: []drivers.TagInfo{
		{Name: "Total", Type: drivers.Int64}, {Name: "Run", Type: drivers.Boolean},
		{Name: "Tag", Type: drivers.String}, {Name: "Pressure", Type: drivers.Double},
	}},
}

func samples(at time.Time, i int64) []drivers.Sample {
	s := func(dev, tag string, v drivers.Value) drivers.Sample {
		return drivers.Sample{Device: dev, Tag: tag, Value: v, Quality: drivers.Good, Time: at}
	}
	return []drivers.Sample{
		s("PLC1", "Level", drivers.UintValue(drivers.UInt16, uint64(40+i))),
		s("PLC1", "Offset", drivers.IntValue(drivers.Int8, -5-i)),
		s("PLC1", "Flow", drivers.FloatValue(float32(i)+0.5)),
		s("PLC1", "Count", drivers.UintValue(drivers.UInt32, 4_000_000_000+uint64(i))),
		s("PLC2", "Total", drivers.IntValue(drivers.Int64, -1<<40-i)),
		s("PLC2", "Run", drivers.BoolValue(i%2 == 0)),
		s("PLC2", "Tag", drivers.StringValue(fmt.Sprint("t", i))),
		s("PLC2", "Pressure", drivers.DoubleValue(float64(i)*1.5)),
	}
}

// runSession drives a real edge node session through births, data, a bad and a stale value,
// a device lost and back, store-and-forward backlog, a rebirth, a crash (the will), a
// reconnect with the next bdSeq while a device is down (born dead, given its backlog, back),
// and an intentional death.
func runSession(t *testing.T, aliases bool, qos byte) []Message {
	s, err := sparkplug.NewSession(sparkplug.Options{GroupID: tGroup, EdgeNodeID: tEdge, Aliases: aliases,
		DataQoS: qos, Devices: sessionDevices})
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{}
	at := time.UnixMilli(tTime)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	update := func(smp []drivers.Sample) {
		t.Helper()
		_, err := s.Update(smp)
		must(err)
	}
	must(s.Start(r, 7))
	for i := range int64(3) {
		update(samples(at.Add(time.Duration(i)*time.Second), i))
	}
	update([]drivers.Sample{{Device: "PLC1", Tag: "Level", Value: drivers.Null(drivers.UInt16), Quality: drivers.Bad, Time: at}})
	update([]drivers.Sample{{Device: "PLC1", Tag: "Flow", Value: drivers.FloatValue(1), Quality: drivers.Stale, Time: at}})
	must(s.SetDeviceState("PLC2", false))
	update(samples(at.Add(5*time.Second), 5)) // PLC2's are recorded, not published
	must(s.SetDeviceState("PLC2", true))
	must(s.PublishHistorical(samples(at.Add(-time.Hour), 9)))
	must(s.Rebirth())
	update(samples(at.Add(6*time.Second), 6))
	s.Stop()
	r.will(t, 7)
	must(s.SetDeviceState("PLC2", false))
	must(s.Start(r, 8)) // PLC2 is born dead: DBIRTH with nulls, DDEATH
	update(samples(at.Add(7*time.Second), 7))
	must(s.PublishHistorical(samples(at.Add(-30*time.Minute), 10))) // PLC2's backlog while it is down
	must(s.SetDeviceState("PLC2", true))
	update(samples(at.Add(8*time.Second), 8))
	must(s.Death())
	return r.msgs
}

// The real edge node session passes Verify in every mode.
func TestVerifySession(t *testing.T) {
	for _, aliases := range []bool{false, true} {
		for _, qos := range []byte{0, 1} {
			t.Run(fmt.Sprintf("aliases=%v,qos=%d", aliases, qos), func(t *testing.T) {
				msgs := runSession(t, aliases, qos)
				exp := Expect{DataQoS: qos, Aliases: aliases, Devices: []string{"PLC1", "PLC2"}, FromStart: true}
				if vs := Verify(msgs, exp); len(vs) > 0 {
					t.Errorf("%d messages, violations:%s", len(msgs), report(vs))
				}
				// The same stream checked with the wrong expectations fails.
				exp.Aliases, exp.DataQoS = !aliases, 1-qos
				if vs := Verify(msgs, exp); len(vs) == 0 {
					t.Error("no violation with the wrong Expect")
				}
			})
		}
	}
}
