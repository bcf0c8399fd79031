package bridge

import (
	"errors"
	"fmt"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// publisher is the sparkplug.Publisher of one connection. QoS 0 publishes wait until paho has
// written them (bounded by the write timeout); QoS 1 publishes are tracked by their tokens so
// that what they carry is retired only on PUBACK. After the first failure every publish fails
// at once: the run loop then treats the connection as lost.
type publisher struct {
	client  mqtt.Client
	timeout time.Duration
	tokens  []mqtt.Token
	err     error
}

func (p *publisher) Publish(topic string, qos byte, retain bool, payload []byte) error {
	if p.err != nil {
		return p.err
	}
	t := p.client.Publish(topic, qos, retain, payload)
	if qos == 0 {
		if !t.WaitTimeout(p.timeout) {
			p.err = errors.New("publish: timed out")
		} else if err := t.Error(); err != nil {
			p.err = fmt.Errorf("publish: %w", err)
		}
		return p.err
	}
	select {
	case <-t.Done():
		if err := t.Error(); err != nil {
			p.err = fmt.Errorf("publish: %w", err)
			return p.err
		}
	default:
	}
	p.tokens = append(p.tokens, t)
	return nil
}

// take returns the QoS 1 tokens collected since the last take.
func (p *publisher) take() []mqtt.Token {
	t := p.tokens
	p.tokens = nil
	return t
}

// acked reports whether every token completed without error.
func acked(tokens []mqtt.Token) bool {
	for _, t := range tokens {
		select {
		case <-t.Done():
			if t.Error() != nil {
				return false
			}
		default:
			return false
		}
	}
	return true
}
