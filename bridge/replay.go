package bridge

import (
	"context"
	"errors"
	"time"

	"github.com/wellgate/wellgate/bridge/queue"
	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/sparkplug"
)

// replay publishes the backlog, oldest first, within the ReplayRate budget.
func (b *Bridge) replay(now time.Time) {
	l := &b.loop
	if !l.live {
		return
	}
	rate := float64(b.opts.Upstream.Queue.ReplayRate)
	if rate < 0 {
		l.budget = maxReplayPerTick
	} else {
		limit := max(rate*tickInterval.Seconds()*2, 1)
		l.budget = min(l.budget+rate*now.Sub(l.lastTick).Seconds(), limit)
	}
	for l.live && l.budget >= 1 {
		tx, err := b.opts.Queue.Begin(int(min(l.budget, maxReplayBatch)))
		if err != nil {
			b.log.Warn("queue read failed", "err", err)
			return
		}
		if tx.Len() == 0 {
			return
		}
		l.budget -= float64(tx.Len())
		b.publishBacklog(tx, now)
	}
}

// publishBacklog publishes one transaction: runs of samples as historical DATA, forwarded
// messages as they were. On a publish failure the connection is treated as lost (which rolls
// the transaction back).
func (b *Bridge) publishBacklog(tx *queue.Tx, now time.Time) {
	l := &b.loop
	var samples []drivers.Sample
	var nSamples, nMsgs, bad int
	flush := func() error {
		if len(samples) == 0 {
			return nil
		}
		err := b.opts.Session.PublishHistorical(samples)
		nSamples += len(samples)
		samples = samples[:0]
		return err
	}
	var err error
	for _, r := range tx.Records {
		switch {
		case len(r) > 0 && r[0] == queue.SampleTag:
			s, derr := queue.DecodeSample(r)
			if derr != nil {
				bad++
				continue
			}
			samples = append(samples, s)
		case len(r) > 0 && r[0] == msgTag:
			m, derr := decodeMessage(r)
			if derr != nil {
				bad++
				continue
			}
			if err = flush(); err == nil {
				err = l.pub.Publish(m.topic, m.qos, m.retain, m.payload)
				nMsgs++
			}
		default:
			bad++
		}
		if err != nil {
			break
		}
	}
	if err == nil {
		err = flush()
	}
	tx.Records = nil // confirmation needs only the position
	l.inflight = append(l.inflight, flight{tx: tx, at: now, tokens: l.pub.take()})
	if bad > 0 {
		b.log.Warn("undecodable queue records skipped", "records", bad)
	}
	switch {
	case err != nil && l.pub.err != nil:
		b.lost(err, -1)
		return
	case err != nil:
		b.log.Warn("historical publish refused by the session", "err", err)
	}
	b.stat.update(func(s *Status) {
		s.PublishedHistorical += uint64(nSamples)
		s.Forwarded += uint64(nMsgs)
	})
}

// onCommand handles NCMD/DCMD: "Node Control/Next Server" here, the rest in the session;
// the writes go to the write goroutine.
func (b *Bridge) onCommand(ev inboundEvent) {
	l := &b.loop
	b.stat.update(func(s *Status) { s.Commands++ })
	payload := ev.payload
	next := false
	if ncmd, _ := b.opts.Session.Topics(); ev.topic == ncmd {
		next, payload = splitNextServer(payload)
	}
	var writes []sparkplug.Write
	var err error
	if payload != nil {
		writes, err = b.opts.Session.HandleCommand(ev.topic, payload)
	}
	if l.live && l.pub.err != nil { // a rebirth failed to publish
		b.lost(l.pub.err, -1)
		return
	}
	l.pub.take()
	if err != nil {
		b.stat.update(func(s *Status) { s.CommandErrors++ })
		b.log.Warn("command not fully applied", "topic", ev.topic, "err", err)
	}
	for _, w := range writes {
		l.writes.put(writeReq{topic: ev.topic, w: w})
	}
	if next {
		b.nextServer()
	}
}

// metricNextServer asks the edge node to move to the next server.
const metricNextServer = "Node Control/Next Server"

// splitNextServer takes "Node Control/Next Server" out of an NCMD payload. It returns
// whether it was true and the payload left for the session (nil when nothing is left).
func splitNextServer(payload []byte) (bool, []byte) {
	p, err := sparkplug.Unmarshal(payload)
	if err != nil {
		return false, payload // the session reports the malformed payload
	}
	next, found := false, false
	kept := p.Metrics[:0]
	for _, m := range p.Metrics {
		if m.Name != metricNextServer {
			kept = append(kept, m)
			continue
		}
		found = true
		if v, err := m.DriverValue(drivers.Boolean); err == nil && !v.IsNull() && v.Bool() {
			next = true
		}
	}
	if !found {
		return false, payload
	}
	if len(kept) == 0 {
		return next, nil
	}
	p.Metrics = kept
	return next, p.Marshal()
}

var errNextServer = errors.New("host asked for the next server")

// nextServerEvent asks the run loop to move to the next server.
type nextServerEvent struct{}

// NextServer moves the upstream connection to the next configured server, as an NCMD
// "Node Control/Next Server" upstream does; the gateway calls it for the same NCMD arriving
// on the embedded broker. It returns at once.
func (b *Bridge) NextServer() { b.mail.put(nextServerEvent{}) }

// nextServer disconnects (with NDEATH) and connects to the next configured server at once.
func (b *Bridge) nextServer() {
	l := &b.loop
	if l.live {
		b.death()
	}
	b.lost(errNextServer, 0)
	l.server = (l.server + 1) % len(b.opts.Upstream.Servers)
	b.log.Info("moving to the next server", "server", b.opts.Upstream.Servers[l.server])
}

// runWrites performs the writes commands asked for, one at a time.
func (b *Bridge) runWrites(ctx context.Context) {
	l := &b.loop
	for {
		select {
		case <-ctx.Done():
			if n := len(l.writes.take()); n > 0 {
				b.log.Warn("shutting down: writes not performed", "writes", n)
			}
			return
		case <-l.writes.notify:
			for _, r := range l.writes.take() {
				if b.opts.OnWrite == nil {
					b.log.Warn("write requested but no writer configured", "topic", r.topic, "device", r.w.Device, "tag", r.w.Tag)
					continue
				}
				if err := b.opts.OnWrite(ctx, r.w); err != nil {
					b.log.Warn("write failed", "topic", r.topic, "device", r.w.Device, "tag", r.w.Tag, "err", err)
				}
			}
		}
	}
}

// shutdown ends Run: NDEATH, everything unconfirmed and everything still in the mailbox goes
// to the queue, then DISCONNECT.
func (b *Bridge) shutdown() {
	l := &b.loop
	l.retry.Stop()
	if l.live {
		b.death()
	}
	b.opts.Session.Stop()
	b.requeue()
	client := l.client
	l.client, l.pub = nil, nil
	l.bg.Wait() // attempts in progress end with ctx
	for _, ev := range b.mail.take() {
		if b.onData(ev) {
			continue
		}
		if ev, ok := ev.(connEvent); ok && ev.client != nil {
			ev.client.Disconnect(0)
		}
	}
	if client != nil {
		client.Disconnect(250)
	}
	b.stat.setState(StateDisconnected, "")
	b.log.Info("bridge stopped", "queued", b.opts.Queue.Stats().Records)
}
