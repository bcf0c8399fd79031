package sparkplug

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wellgate/wellgate/drivers"
)

// recorder is the in-memory Publisher test double: it stands at the session's boundary and
// records every message (raw and decoded).
type recorder struct {
	mu   sync.Mutex
	msgs []msg
	fail error // returned by Publish when set
}

type msg struct {
	topic  string
	qos    byte
	retain bool
	raw    []byte
	p      *Payload
}

func (r *recorder) Publish(topic string, qos byte, retain bool, payload []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	p, err := Unmarshal(payload)
	if err != nil {
		return fmt.Errorf("recorder: session published an undecodable payload: %w", err)
	}
	r.msgs = append(r.msgs, msg{topic, qos, retain, append([]byte{}, payload...), p})
	return nil
}

// take returns and forgets the messages recorded so far.
func (r *recorder) take() []msg {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.msgs
	r.msgs = nil
	return m
}

// clock is an injectable session clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var t0 = time.UnixMilli(1700000000000).UTC()

// testOptions: node metric "uptime", device "plc1" (pressure with deadbands, flow writable,
// state string, mode Int8 writable), device "rtu2" (level writable UInt32).
func testOptions(c *clock) Options {
	return Options{
		GroupID: "wellsite", EdgeNodeID: "gw1", Now: c.Now,
		NodeMetrics: []drivers.TagInfo{{Name: "Gateway/Uptime", Type: drivers.Int64}},
		Devices: []drivers.DeviceInfo{
			{Name: "plc1", Tags: []drivers.TagInfo{
				{Name: "Tubing/Pressure", Type: drivers.Double, Units: "psi", Description: "tubing head pressure", Deadband: 1},
				{Name: "Flow", Type: drivers.Float, Writable: true, DeadbandPercent: 10},
				{Name: "State", Type: drivers.String},
				{Name: "Mode", Type: drivers.Int8, Writable: true},
				{Name: "Heartbeat", Type: drivers.UInt16, MaxInterval: time.Minute},
			}},
			{Name: "rtu2", Tags: []drivers.TagInfo{{Name: "Level", Type: drivers.UInt32, Writable: true}}},
		},
	}
}

func newSession(t *testing.T, opts Options) *Session {
	t.Helper()
	s, err := NewSession(opts)
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	return s
}

// started returns an online session whose births were already taken from the recorder.
func started(t *testing.T, opts Options, bdSeq uint64) (*Session, *recorder) {
	t.Helper()
	s := newSession(t, opts)
	r := &recorder{}
	if err := s.Start(r, bdSeq); err != nil {
		t.Fatalf("Start: %v", err)
	}
	r.take()
	return s, r
}

func sample(dev, tag string, v drivers.Value, q drivers.Quality, at time.Time) drivers.Sample {
	return drivers.Sample{Device: dev, Tag: tag, Value: v, Quality: q, Time: at}
}

func good(dev, tag string, v drivers.Value) drivers.Sample {
	return sample(dev, tag, v, drivers.Good, t0)
}

func metricByName(p *Payload, name string) (Metric, bool) {
	for _, m := range p.Metrics {
		if m.Name == name {
			return m, true
		}
	}
	return Metric{}, false
}

func quality(m Metric) (int32, bool) {
	pv, ok := m.Properties.Get(PropQuality)
	if !ok {
		return 0, false
	}
	return int32(uint32(pv.Value.Bits)), pv.Type == TypeInt32 && pv.Value.Kind == KindInt
}

func mustUpdate(t *testing.T, s *Session, samples ...drivers.Sample) []drivers.Sample {
	t.Helper()
	rep, err := s.Update(samples)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	return rep
}

var errBroken = errors.New("broken pipe")
