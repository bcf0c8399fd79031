package main

import (
	"fmt"
	"slices"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/wellgate/wellgate/internal/sim"
	"github.com/wellgate/wellgate/sparkplug"
)

// subscriber is the upstream subscriber on mosquitto (Ignition's place): every message of the
// group, its bytes (payload + topic), and each live DDATA metric's delay from its timestamp
// (the poll's time, in ms), as gateway/fleet_load_test.go's fleetSub counts them.
type subscriber struct {
	client paho.Client

	mu         sync.Mutex
	want       int             // devices
	seen       map[string]bool // devices that sent a DDATA
	all        chan struct{}   // closed once every device has
	nbirth     chan time.Time  // each NBIRTH's arrival
	record     bool
	msgs       int
	bytes      int
	metrics    int
	delays     []time.Duration // live metrics
	historical int             // historical metrics, counted whether recording or not
	bad        int             // undecodable DDATA
}

func newSubscriber(url string, devices int) (*subscriber, error) {
	s := &subscriber{want: devices, seen: map[string]bool{}, all: make(chan struct{}), nbirth: make(chan time.Time, 16)}
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("bench-%d", time.Now().UnixNano())).
		SetCleanSession(true).SetAutoReconnect(false)
	s.client = paho.NewClient(opts)
	if tok := s.client.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("subscriber connect: %v", tok.Error())
	}
	tok := s.client.Subscribe("spBv1.0/"+sim.Group+"/#", 0, func(_ paho.Client, m paho.Message) { s.handle(m) })
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		s.client.Disconnect(0)
		return nil, fmt.Errorf("subscribe: %v", tok.Error())
	}
	return s, nil
}

func (s *subscriber) close() { s.client.Disconnect(100) }

func (s *subscriber) handle(m paho.Message) {
	now := time.Now()
	tp, err := sparkplug.ParseTopic(m.Topic())
	if err != nil || tp.Type != sparkplug.DDATA {
		if err == nil && tp.Type == sparkplug.NBIRTH {
			select {
			case s.nbirth <- now:
			default:
			}
		}
		s.count(m, 0)
		return
	}
	p, err := sparkplug.Unmarshal(m.Payload())
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.bad++
		return
	}
	if !s.seen[tp.Device] {
		s.seen[tp.Device] = true
		if len(s.seen) == s.want {
			close(s.all)
		}
	}
	for _, mm := range p.Metrics {
		if mm.IsHistorical {
			s.historical++
		}
	}
	if !s.record {
		return
	}
	s.msgs++
	s.bytes += len(m.Payload()) + len(m.Topic())
	s.metrics += len(p.Metrics)
	for _, mm := range p.Metrics {
		if mm.HasTimestamp && !mm.IsNull && !mm.IsHistorical {
			s.delays = append(s.delays, now.Sub(time.UnixMilli(int64(mm.Timestamp))))
		}
	}
}

func (s *subscriber) count(m paho.Message, metrics int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.record {
		s.msgs++
		s.bytes += len(m.Payload()) + len(m.Topic())
		s.metrics += metrics
	}
}

// window is what arrived while recording.
type window struct {
	msgs, bytes, metrics int
	delays               []time.Duration // sorted
}

func (s *subscriber) setRecording(on bool) window {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.record = on
	if on {
		s.msgs, s.bytes, s.metrics, s.delays = 0, 0, 0, nil
		return window{}
	}
	w := window{msgs: s.msgs, bytes: s.bytes, metrics: s.metrics, delays: slices.Clone(s.delays)}
	slices.Sort(w.delays)
	return w
}

func (s *subscriber) seenDevices() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

func (s *subscriber) historicalMetrics() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.historical
}

// pct is the p-th quantile (0…1) of sorted delays; 0 when there are none.
func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}
