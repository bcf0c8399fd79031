package sparkplug

import (
	"errors"
	"fmt"

	"github.com/wellgate/wellgate/drivers"
)

// ErrUnknownMetric is wrapped when a command names (or aliases) a metric that was not born.
var ErrUnknownMetric = errors.New("unknown metric")

// ErrNotCommand is wrapped when HandleCommand gets a topic that is not this node's NCMD/DCMD.
var ErrNotCommand = errors.New("not a command for this edge node")

// ErrTooManyMetrics is wrapped when a command carries more metrics than
// Options.MaxCommandMetrics: it is refused as a whole.
var ErrTooManyMetrics = errors.New("too many metrics in one command")

// maxCommandErrors is the most per-metric problems one HandleCommand error lists; the rest
// are counted.
const maxCommandErrors = 10

// Write is a write a command asks for. Device "" is a node metric.
type Write struct {
	Device, Tag string
	Value       drivers.Value // converted to the tag's type
}

// HandleCommand interprets an NCMD or DCMD received on topic. NCMD "Node Control/Rebirth" =
// true republishes every birth before HandleCommand returns (a rebirth requested while offline
// is an ErrOffline error), unless the last rebirth served on request is younger than
// Options.RebirthHoldoff: then the request is merged, with any other that comes before the
// hold-off has passed, into one rebirth that FlushRebirth publishes when it has (see
// DeferredRebirth). A storm of
// requests thus gives one rebirth per hold-off, and every request is answered by births
// published after it. Every other metric, by name or by alias, becomes a Write with the value
// converted to the tag's type (integers from int_value or long_value, either sign form).
//
// Problems are returned joined in one error (the first few, then a count): a topic that is
// not this node's command topic (ErrNotCommand, ErrTopic), a malformed payload
// (ErrMalformed), more metrics than Options.MaxCommandMetrics (ErrTooManyMetrics: nothing of
// the command is done), a device that is unknown (ErrUnknownDevice) or down (ErrOffline), and
// per metric an unknown name or alias (ErrUnknownMetric), a tag that is not writable
// (drivers.ErrNotWritable), a null, or a value of the wrong type or out of range (ErrType).
// The Writes returned alongside such an error are the metrics that were valid: perform them
// and log the error. It never panics.
func (s *Session) HandleCommand(topic string, payload []byte) ([]Write, error) {
	t, err := ParseTopic(topic)
	if err != nil {
		return nil, fmt.Errorf("command: %w", err)
	}
	if (t.Type != NCMD && t.Type != DCMD) || t.Group != s.opts.GroupID || t.EdgeNode != s.opts.EdgeNodeID {
		return nil, fmt.Errorf("command %q: %w", topic, ErrNotCommand)
	}
	p, err := Unmarshal(payload)
	if err != nil {
		return nil, fmt.Errorf("command %q: %w", topic, err)
	}
	if n := len(p.Metrics); n > s.opts.MaxCommandMetrics {
		return nil, fmt.Errorf("command %q: %d metrics, limit %d: %w", topic, n, s.opts.MaxCommandMetrics, ErrTooManyMetrics)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.node
	if t.Type == DCMD {
		if d = s.byDevice[t.Device]; d == nil {
			return nil, fmt.Errorf("command %q: %w", topic, ErrUnknownDevice)
		}
		if !d.up {
			return nil, fmt.Errorf("command %q: device %s is down: %w", topic, t.Device, ErrOffline)
		}
	}
	var writes []Write
	var errs []error
	refused := 0
	fail := func(err error) {
		if refused++; refused <= maxCommandErrors {
			errs = append(errs, err)
		}
	}
	rebirth := false
	for i := range p.Metrics {
		m := &p.Metrics[i]
		if t.Type == NCMD && m.Name == MetricRebirth {
			v, err := m.DriverValue(drivers.Boolean)
			if err == nil && v.IsNull() {
				err = fmt.Errorf("%w: null", ErrType)
			}
			if err != nil {
				fail(fmt.Errorf("command %q: %s: %w", topic, MetricRebirth, err))
			}
			rebirth = rebirth || (err == nil && v.Bool())
			continue
		}
		w, err := s.commandWrite(d, m)
		if err != nil {
			fail(fmt.Errorf("command %q: %w", topic, err))
			continue
		}
		writes = append(writes, w)
	}
	if refused > maxCommandErrors {
		errs = append(errs, fmt.Errorf("command %q: %d more metrics refused", topic, refused-maxCommandErrors))
	}
	if rebirth {
		if err := s.requestRebirth(); err != nil {
			errs = append(errs, fmt.Errorf("command %q: %w", topic, err))
		}
	}
	return writes, errors.Join(errs...)
}

// commandWrite resolves one command metric against device d and converts its value.
func (s *Session) commandWrite(d *deviceState, m *Metric) (Write, error) {
	i := -1
	switch {
	case m.Name != "":
		i = d.byName.Find(d.tags, m.Name)
	case m.HasAlias && s.opts.Aliases:
		i = d.byAlias(m.Alias)
	}
	if i < 0 {
		return Write{}, fmt.Errorf("metric %q alias %d: %w", m.Name, m.Alias, ErrUnknownMetric)
	}
	ti := &d.tags[i]
	if !ti.Writable {
		return Write{}, fmt.Errorf("metric %q: %w", ti.Name, drivers.ErrNotWritable)
	}
	if m.IsNull {
		return Write{}, fmt.Errorf("metric %q: %w: cannot write null", ti.Name, ErrType)
	}
	v, err := m.DriverValue(ti.Type)
	if err != nil {
		return Write{}, fmt.Errorf("metric %q: %w", ti.Name, err)
	}
	return Write{Device: d.name, Tag: ti.Name, Value: v}, nil
}
