package bridge

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/wellgate/wellgate/internal/logx"
)

// Direction says which way a Rule forwards.
type Direction string

// Directions.
const (
	Up   Direction = "up"   // embedded broker → upstream (the default)
	Down Direction = "down" // upstream → embedded broker
)

// Rule forwards MQTT messages between the embedded broker and the upstream broker. Filter is
// in the local topic space; Prefix is the upstream namespace:
//
//   - Up: local messages matching Filter go upstream as Prefix+topic with QoS and Retain,
//     through the store-and-forward queue while the session is not online.
//   - Down: the bridge subscribes upstream to Prefix+Filter; messages go to the local broker
//     with Prefix removed, with QoS and Retain. They are not queued.
//
// Do not configure an Up rule that matches what a Down rule publishes (a loop).
type Rule struct {
	Direction Direction
	Filter    string
	Prefix    string
	QoS       byte
	Retain    bool
}

func (r *Rule) validate() error {
	if r.Direction == "" {
		r.Direction = Up
	}
	switch {
	case r.Direction != Up && r.Direction != Down:
		return fmt.Errorf("direction %q is not up or down", r.Direction)
	case r.Filter == "":
		return errors.New("empty filter")
	case r.QoS > 1:
		return fmt.Errorf("qos %d: only 0 and 1 are supported", r.QoS)
	case strings.ContainsAny(r.Prefix, "+#"):
		return fmt.Errorf("prefix %q has a wildcard", r.Prefix)
	case strings.HasPrefix(r.Prefix+r.Filter, "spBv1.0/"):
		return fmt.Errorf("%q: the Sparkplug namespace belongs to the session", r.Prefix+r.Filter)
	}
	return validFilter(r.Filter)
}

func validFilter(f string) error {
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if (strings.Contains(l, "#") && (l != "#" || i != len(levels)-1)) || (strings.Contains(l, "+") && l != "+") {
			return fmt.Errorf("filter %q: misplaced wildcard", f)
		}
	}
	return nil
}

// message is a forwarded MQTT message (Up rules).
type message struct {
	topic   string
	payload []byte
	qos     byte
	retain  bool
}

// msgTag starts a forwarded message's queue record (samples start with queue.SampleTag):
//
//	'M' | flags (bit 0 retain, bit 1 QoS 1) | uvarint len, topic | payload
const msgTag = 'M'

func encodeMessage(dst []byte, m message) []byte {
	flags := byte(0)
	if m.retain {
		flags |= 1
	}
	if m.qos > 0 {
		flags |= 2
	}
	dst = append(dst, msgTag, flags)
	dst = binary.AppendUvarint(dst, uint64(len(m.topic)))
	dst = append(dst, m.topic...)
	return append(dst, m.payload...)
}

func decodeMessage(b []byte) (message, error) {
	if len(b) < 3 || b[0] != msgTag || b[1]&^3 != 0 {
		return message{}, errors.New("bad message record")
	}
	n, k := binary.Uvarint(b[2:])
	if k <= 0 || n > uint64(len(b)-2-k) {
		return message{}, errors.New("bad message record topic")
	}
	rest := b[2+k:]
	return message{
		topic: string(rest[:n]), payload: append([]byte(nil), rest[n:]...),
		retain: b[1]&1 != 0, qos: b[1] >> 1,
	}, nil
}

// subscribeLocal installs the Up rules on the embedded broker. The callbacks only hand off.
func (b *Bridge) subscribeLocal() error {
	for _, r := range b.opts.Rules {
		if r.Direction != Up {
			continue
		}
		err := b.opts.Local.Subscribe(r.Filter, func(topic string, payload []byte, _ byte, _ bool) {
			b.offerForward(message{topic: r.Prefix + topic, payload: append([]byte(nil), payload...), qos: r.QoS, retain: r.Retain})
		})
		if err != nil {
			return fmt.Errorf("bridge: subscribe local %s: %w", r.Filter, err)
		}
	}
	return nil
}

// offerForward hands a local message to the run loop; when the mailbox is full it is dropped,
// counted and logged rate-limited (local clients must not crowd out the samples).
func (b *Bridge) offerForward(m message) {
	if b.mail.offer(m, len(m.topic)+len(m.payload)) {
		return
	}
	b.stat.update(func(s *Status) { s.ForwardDropped++ })
	b.limit.Log(b.log, slog.LevelWarn, "forward dropped", "bridge busy: local message not forwarded", "topic", logx.Value(m.topic))
}

// forwardDown delivers an upstream message that matched a Down rule to the embedded broker.
// It reports whether a rule matched.
func (b *Bridge) forwardDown(topic string, payload []byte) bool {
	for _, r := range b.opts.Rules {
		if r.Direction != Down || !strings.HasPrefix(topic, r.Prefix) || !matches(r.Filter, topic[len(r.Prefix):]) {
			continue
		}
		local := topic[len(r.Prefix):]
		if err := b.opts.Local.Publish(local, payload, r.Retain, r.QoS); err != nil {
			b.limit.Log(b.log, slog.LevelWarn, "forward down", "forward down failed", "topic", logx.Value(local), "err", logx.Err(err))
			return true
		}
		b.stat.update(func(s *Status) { s.ForwardedDown++ })
		return true
	}
	return false
}

// matches reports whether topic matches the MQTT filter.
func matches(filter, topic string) bool {
	f, t := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, l := range f {
		switch {
		case l == "#":
			return true
		case i >= len(t):
			return false
		case l != "+" && l != t[i]:
			return false
		}
	}
	return len(f) == len(t)
}
