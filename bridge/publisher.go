package bridge

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// conn is one MQTT connection to the upstream broker and the two goroutines that serve it, so
// that the run loop never waits for the network:
//
//   - the loop publishes through conn (the session's sparkplug.Publisher), which only appends
//     to the outbox, and seals what it published for one purpose (a batch of samples, a
//     replayed transaction, births) into a numbered batch;
//   - the sender hands the outbox on in order: QoS 0 publishes straight into the socket's
//     buffer (batchConn.writePublish), others to paho (whose Publish may wait up to the write
//     timeout for its outgoing goroutine);
//   - the waiter waits for each batch's tokens in order (QoS 0: written, bounded by the write
//     timeout; QoS 1: PUBACK) and moves acked, which the loop reads on its tick; the first
//     failure goes to the loop at once, as a failedEvent;
//   - the prober, when the loop asks, proves that the broker has read what was written (see
//     proof.go), and moves proven the same way.
//
// A failure (a token error, a write that timed out, paho's connection-lost callback) is kept
// in failure; the loop then treats the connection as lost.
type conn struct {
	b       *Bridge
	gen     uint64
	server  string
	bdSeq   uint64
	client  mqtt.Client               // set by connect, before the dialedEvent
	sock    atomic.Pointer[batchConn] // the socket paho writes to, set when paho opens it
	timeout time.Duration

	// Owned by the run loop.
	err    error  // the outbox refused a publish: the connection does not keep up
	sealed uint64 // id of the last sealed batch
	open   int    // publishes since the last seal
	qos0   bool   // one of them is QoS 0

	out    outbox
	groups chan group // sender → waiter

	acked    atomic.Uint64 // the last batch whose tokens all completed without error
	proven   atomic.Uint64 // the last batch the broker is known to have read (see proof.go)
	probes   chan uint64   // loop → prober: prove the batches up to this one
	probing  atomic.Bool   // a probe is asked for or in flight
	sent     atomic.Bool   // the CONNECT went out (its bdSeq was committed)
	noted    atomic.Bool   // a failedEvent is in the mailbox
	progress chan struct{} // pinged on each report (shut waits on it)
	mu       sync.Mutex
	failure  error

	stop   chan struct{} // closed by shut: the sender and waiter end
	closed chan struct{} // closed when shut is done: the client is disconnected
	wg     sync.WaitGroup
}

// deathWait bounds the wait for NDEATH's PUBACK before an intentional DISCONNECT.
const deathWait = 2 * time.Second

// groupBacklog is how many sealed batches may wait for the waiter.
const groupBacklog = 4096

var (
	errBacklog = errors.New("publish: the connection does not keep up with what is published")
	errStopped = errors.New("connection closed")
)

func (b *Bridge) newConn(gen uint64, server string) *conn {
	c := &conn{
		b: b, gen: gen, server: server, timeout: b.opts.ConnectTimeout,
		groups: make(chan group, groupBacklog), progress: make(chan struct{}, 1),
		probes: make(chan uint64, 1),
		stop:   make(chan struct{}), closed: make(chan struct{}),
	}
	c.out.init(b.opts.MailboxBytes)
	return c
}

// Publish implements sparkplug.Publisher: it queues the message for the sender. It fails when
// the outbox is full; every later publish then fails at once.
func (c *conn) Publish(topic string, qos byte, retain bool, payload []byte) error {
	if c.err != nil {
		return c.err
	}
	if !c.out.push(outItem{topic: topic, payload: payload, qos: qos, retain: retain}) {
		c.err = errBacklog
		return c.err
	}
	c.open++
	c.qos0 = c.qos0 || qos == 0
	return nil
}

// proof identifies what confirms a batch of publishes: its id on the connection, whether it
// holds a QoS 0 publish, and when the loop learnt that all of it was written (or, QoS 1,
// acknowledged).
type proof struct {
	id      uint64
	qos0    bool
	written time.Time
}

// confirmed reports whether the batch is known delivered: the broker has read it (proven: a
// PUBACK of it or of a later QoS 1 publish, or the answer to a probe sent after it was
// written), or, failing any proof, the connection survived the detection window after the
// write (a dead link would have been noticed by then; see detectionWindow).
func (p proof) confirmed(proven uint64, now time.Time, window time.Duration) bool {
	return p.id <= proven || (!p.written.IsZero() && (!p.qos0 || now.Sub(p.written) >= window))
}

// byProof reports whether the batch is confirmed by proof rather than by the window alone.
func (p proof) byProof(proven uint64) bool { return p.id <= proven }

// seal closes the batch of what was published since the last seal. A seal with nothing
// published gives the previous batch's id: it is confirmed with it.
func (c *conn) seal() proof {
	p := proof{id: c.sealed, qos0: c.qos0}
	if c.open > 0 {
		c.sealed++
		p.id = c.sealed
		c.out.push(outItem{mark: c.sealed})
	}
	c.open, c.qos0 = 0, false
	return p
}

// start runs the sender, the waiter and the prober.
func (c *conn) start() {
	c.wg.Add(3)
	go c.send()
	go c.await()
	go c.probe()
}

// shut ends the connection: it waits (at most deathWait) for batch until when until > 0 (the
// NDEATH), disconnects with quiesce milliseconds for paho, and stops the goroutines (a sender
// inside paho's Publish returns within the write timeout). It runs off the loop.
func (c *conn) shut(until uint64, quiesce uint) {
	defer close(c.closed)
	if until > 0 {
		c.waitAcked(until, deathWait)
	}
	if c.client != nil {
		c.client.Disconnect(quiesce)
	}
	close(c.stop)
	c.wg.Wait()
}

func (c *conn) waitAcked(id uint64, d time.Duration) {
	t := time.NewTimer(d) // a network wait: real time
	defer t.Stop()
	for c.acked.Load() < id && c.failed() == nil {
		select {
		case <-c.progress:
		case <-t.C:
			return
		}
	}
}

// fail records the connection's first failure and tells the loop at once, with at most one
// failedEvent in the mailbox at a time.
func (c *conn) fail(err error) {
	c.mu.Lock()
	if c.failure == nil {
		c.failure = err
	}
	c.mu.Unlock()
	c.report()
	if c.noted.CompareAndSwap(false, true) {
		c.b.mail.put(failedEvent{c})
	}
}

func (c *conn) failed() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failure
}

// report wakes waitAcked: acked or proven moved, or the connection failed. The loop reads
// acked and proven on its tick (stamp, retire, askProof), which is when it uses them: an
// event per written batch (about one loop wake-up per DDATA in a poll's burst) bought nothing.
func (c *conn) report() {
	select {
	case c.progress <- struct{}{}:
	default:
	}
}

// group is a sealed batch as the waiter sees it.
type group struct {
	id     uint64
	tokens []pubToken
}

// proves says what the PUBACKs of a completed group prove, beyond its own tokens: paho writes
// publishes in order (OrderMatters) on one connection, and a broker reads them in order, so a
// PUBACK proves that every publish before it was read. It returns the last batch proven: the
// group itself when no QoS 0 publish follows its last QoS 1 one, the batch before it when one
// does, none (0, false) without a QoS 1 publish.
func (g group) proves() (uint64, bool) {
	last1, last0 := -1, -1
	for i, pt := range g.tokens {
		if pt.qos > 0 {
			last1 = i
		} else {
			last0 = i
		}
	}
	switch {
	case last1 < 0:
		return 0, false
	case last0 > last1:
		return g.id - 1, true
	}
	return g.id, true
}

type pubToken struct {
	t   mqtt.Token
	qos byte
}

// send hands the outbox to paho in order, passing each sealed batch's tokens to the waiter.
func (c *conn) send() {
	defer c.wg.Done()
	var g group
	for {
		items, ok := c.out.wait(c.stop)
		if !ok {
			return
		}
		for _, it := range items {
			if it.mark == 0 {
				g.tokens = append(g.tokens, pubToken{c.publish(it), it.qos})
				continue
			}
			g.id = it.mark
			select {
			case c.groups <- g:
			case <-c.stop:
				return
			}
			g = group{}
		}
	}
}

// publish hands one publish to the connection: a QoS 0 one straight to the socket's buffer
// (batchConn.writePublish; its token is complete once it is there, as paho's is once written),
// any other through paho, which numbers it and waits for its PUBACK.
func (c *conn) publish(it outItem) mqtt.Token {
	if sock := c.sock.Load(); sock != nil && it.qos == 0 {
		return doneToken{sock.writePublish(it.topic, it.retain, it.payload)}
	}
	return c.client.Publish(it.topic, it.qos, it.retain, it.payload)
}

// doneToken is the token of a publish that is complete: written to the socket's buffer, or
// failed with err.
type doneToken struct{ err error }

// closedChan is the channel of every doneToken.
var closedChan = func() chan struct{} { ch := make(chan struct{}); close(ch); return ch }()

func (doneToken) Wait() bool                     { return true }
func (doneToken) WaitTimeout(time.Duration) bool { return true }
func (doneToken) Done() <-chan struct{}          { return closedChan }
func (t doneToken) Error() error                 { return t.err }

// await waits for each batch's tokens in order, moves acked, and reports the first failure.
func (c *conn) await() {
	defer c.wg.Done()
	for {
		select {
		case <-c.stop:
			return
		case g := <-c.groups:
			if err := c.waitGroup(g); err != nil {
				if !errors.Is(err, errStopped) {
					c.fail(err)
				}
				return
			}
			c.acked.Store(g.id)
			if id, ok := g.proves(); ok {
				c.prove(id)
			}
			c.report()
		}
	}
}

// waitGroup waits for a batch's tokens: QoS 0 ones at most the write timeout (paho has
// written them or failed by then), QoS 1 ones until their PUBACK or the connection's end.
// The write timeout's timer starts with the first token not complete yet: by the time the
// waiter takes a group, paho has usually written it.
func (c *conn) waitGroup(g group) error {
	var deadline *time.Timer // a network wait: real time
	defer func() {
		if deadline != nil {
			deadline.Stop()
		}
	}()
	for _, pt := range g.tokens {
		select {
		case <-pt.t.Done():
			if err := pt.t.Error(); err != nil {
				return fmt.Errorf("publish: %w", err)
			}
			continue
		default:
		}
		if deadline == nil {
			deadline = time.NewTimer(c.timeout)
		}
		var timeout <-chan time.Time
		if pt.qos == 0 {
			timeout = deadline.C
		}
		select {
		case <-pt.t.Done():
			if err := pt.t.Error(); err != nil {
				return fmt.Errorf("publish: %w", err)
			}
		case <-timeout:
			return errors.New("publish: not written within the write timeout")
		case <-c.stop:
			return errStopped
		}
	}
	return nil
}

// outItem is a publish waiting for the sender, or (mark > 0) the end of a sealed batch.
type outItem struct {
	topic   string
	payload []byte
	qos     byte
	retain  bool
	mark    uint64
}

// outbox carries publishes from the loop to the sender. It is bounded in bytes; marks always
// fit.
type outbox struct {
	mu     sync.Mutex
	items  []outItem
	bytes  int
	max    int
	notify chan struct{}
}

func (o *outbox) init(maxBytes int) {
	o.max = maxBytes
	o.notify = make(chan struct{}, 1)
}

func (o *outbox) push(it outItem) bool {
	size := len(it.topic) + len(it.payload)
	o.mu.Lock()
	if it.mark == 0 && o.bytes+size > o.max {
		o.mu.Unlock()
		return false
	}
	o.items = append(o.items, it)
	o.bytes += size
	o.mu.Unlock()
	select {
	case o.notify <- struct{}{}:
	default:
	}
	return true
}

// wait returns what is queued, waiting for something; false once stop is closed.
func (o *outbox) wait(stop <-chan struct{}) ([]outItem, bool) {
	for {
		o.mu.Lock()
		items := o.items
		o.items, o.bytes = nil, 0
		o.mu.Unlock()
		if len(items) > 0 {
			return items, true
		}
		select {
		case <-o.notify:
		case <-stop:
			return nil, false
		}
	}
}

// size returns the bytes waiting for the sender.
func (o *outbox) size() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.bytes
}
