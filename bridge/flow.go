package bridge

import (
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/wellgate/wellgate/bridge/queue"
	"github.com/wellgate/wellgate/drivers"
)

// maxReplayBatch is the most records one queue transaction carries (one PublishHistorical).
const maxReplayBatch = 1000

// maxReplayPerTick bounds replay per tick when the rate is unlimited (ReplayRate < 0).
const maxReplayPerTick = 10 * maxReplayBatch

// onSamples runs a driver batch through the session: published live when online (and kept
// in the ring until confirmed), queued otherwise.
func (b *Bridge) onSamples(batch []drivers.Sample) {
	l := &b.loop
	reported, err := b.opts.Session.Update(batch)
	if !l.live {
		b.enqueue(encodeSamples(reported))
		return
	}
	if l.pub.err != nil {
		b.lost(err, -1)                    // first: the ring goes back to the queue before these
		b.enqueue(encodeSamples(reported)) // some may have gone out: duplicates, not a loss
		return
	}
	if err != nil {
		b.log.Warn("session update failed", "err", err)
	}
	if len(reported) > 0 {
		l.ring = append(l.ring, ringEntry{records: encodeSamples(reported), at: time.Now(), tokens: l.pub.take()})
		b.stat.update(func(s *Status) { s.PublishedLive += uint64(len(reported)) })
	}
}

func encodeSamples(samples []drivers.Sample) [][]byte {
	if len(samples) == 0 {
		return nil
	}
	size := 0
	for _, s := range samples {
		size += 24 + len(s.Device) + len(s.Tag) + len(s.Value.Str())
	}
	buf := make([]byte, 0, size)
	recs := make([][]byte, len(samples))
	for i, s := range samples {
		start := len(buf)
		buf = queue.EncodeSample(buf, s)
		recs[i] = buf[start:len(buf):len(buf)]
	}
	return recs
}

func (b *Bridge) onDevice(ev deviceEvent) {
	l := &b.loop
	err := b.opts.Session.SetDeviceState(ev.device, ev.up)
	if l.live && l.pub.err != nil {
		b.lost(err, -1)
		return
	}
	if l.pub != nil {
		l.pub.take()
	}
	if err != nil {
		b.log.Warn("device state not applied", "device", ev.device, "up", ev.up, "err", err)
	}
}

// onForward publishes a local message matched by an Up rule, or queues it.
func (b *Bridge) onForward(m message) {
	l := &b.loop
	rec := [][]byte{encodeMessage(nil, m)}
	if !l.live {
		b.enqueue(rec)
		return
	}
	if err := l.pub.Publish(m.topic, m.qos, m.retain, m.payload); err != nil {
		b.lost(err, -1) // the ring first, then this newer message
		b.enqueue(rec)
		return
	}
	l.ring = append(l.ring, ringEntry{records: rec, at: time.Now(), tokens: l.pub.take()})
	b.stat.update(func(s *Status) { s.Forwarded++ })
}

// enqueue appends records to the queue; a refusal (full disk) loses them, counted and logged
// at most every 10 seconds.
func (b *Bridge) enqueue(records [][]byte) {
	if len(records) == 0 {
		return
	}
	err := b.opts.Queue.Add(records...)
	n := uint64(len(records))
	if err == nil {
		b.stat.update(func(s *Status) { s.Queued += n })
		return
	}
	b.stat.update(func(s *Status) { s.QueueErrors += n })
	b.stat.setError(err)
	if time.Since(b.loop.lastQErr) >= 10*time.Second {
		b.loop.lastQErr = time.Now()
		b.log.Error("store-and-forward queue refused records; they are lost", "records", n, "err", err)
	}
}

// retire forgets ring entries and acks replayed transactions once they are confirmed.
func (b *Bridge) retire(now time.Time) {
	l := &b.loop
	window := detectionWindow(b.opts.Upstream)
	for len(l.ring) > 0 && confirmed(l.ring[0].at, l.ring[0].tokens, now, window) {
		l.ring[0] = ringEntry{}
		l.ring = l.ring[1:]
	}
	for len(l.inflight) > 0 && confirmed(l.inflight[0].at, l.inflight[0].tokens, now, window) {
		if err := b.opts.Queue.Ack(l.inflight[0].tx); err != nil {
			b.log.Warn("queue ack failed", "err", err)
		}
		l.inflight[0] = flight{}
		l.inflight = l.inflight[1:]
	}
}

// confirmed: QoS 1 publishes by PUBACK, QoS 0 ones by surviving the detection window.
func confirmed(at time.Time, tokens []mqtt.Token, now time.Time, window time.Duration) bool {
	if len(tokens) > 0 {
		return acked(tokens)
	}
	return now.Sub(at) >= window
}
