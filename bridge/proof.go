package bridge

import (
	"time"
)

// Proof of delivery.
//
// A value published at QoS 1 is delivered when its PUBACK comes back. A value published at
// QoS 0 gets no answer of its own; paho completes its token once the bytes are written to the
// socket, which says nothing about a link that has silently died. The bridge therefore keeps
// QoS 0 values until it has proof that the broker has read them, and takes as proof any answer
// the broker sent to a packet written after them on the same connection: the broker reads one
// connection's packets in order and answers each after reading it.
//
//   - The PUBACK of a later QoS 1 publish: a forwarded QoS 1 message, the NDEATH of a clean
//     shutdown, any QoS 1 DATA (see group.proves).
//   - The UNSUBACK of a probe: paho v1.5.1 keeps its keep-alive PINGREQ and PINGRESP to itself
//     (no callback, no counter), so the bridge sends its own round trip instead: an
//     UNSUBSCRIBE of a topic it never subscribes to (its own NDEATH topic), which a 3.1.1
//     broker must answer with an UNSUBACK and which changes nothing. A probe goes out only
//     when something written is not proven yet, at most once per ProofInterval, and only
//     after the loop has seen the values' tokens complete (written), so it is on the wire
//     after them.
//
// Values without proof when the connection ends are queued again: only they can reach the
// host twice. Failing any proof on a connection that stays up, a value is taken as delivered
// after the detection window (see detectionWindow).

// prove records that the broker has read every batch up to id.
func (c *conn) prove(id uint64) {
	for {
		cur := c.proven.Load()
		if id <= cur || c.proven.CompareAndSwap(cur, id) {
			return
		}
	}
}

// probe serves the loop's probe requests until the connection stops: for each, one
// UNSUBSCRIBE round trip; its UNSUBACK proves the batches the request named.
func (c *conn) probe() {
	defer c.wg.Done()
	topic := c.b.opts.Session.DeathTopic() // never subscribed to
	for {
		select {
		case <-c.stop:
			return
		case upTo := <-c.probes:
			t := c.client.Unsubscribe(topic)
			select {
			case <-t.Done():
			case <-c.stop:
				return
			}
			if t.Error() == nil {
				c.prove(upTo)
				c.report()
			}
			c.probing.Store(false)
		}
	}
}

// askProof asks the prober of the live connection for proof of what was written and is not
// proven yet, at most once per ProofInterval and one probe at a time. It runs on the loop.
func (b *Bridge) askProof(now time.Time) {
	l := &b.loop
	c := l.conn
	if c == nil || !l.live || c.probing.Load() || now.Sub(l.lastProbe) < b.opts.ProofInterval {
		return
	}
	written := c.acked.Load()
	if written <= c.proven.Load() {
		return
	}
	c.probing.Store(true)
	select {
	case c.probes <- written:
		l.lastProbe = now
	default:
		c.probing.Store(false)
	}
}
