package bridge

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"time"

	"github.com/wellgate/wellgate/bridge/queue"
	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/internal/logx"
)

// maxReplayBatch is the most records one queue transaction carries (one PublishHistorical).
const maxReplayBatch = 1000

// maxReplayPerTick bounds replay per tick when the rate is unlimited (ReplayRate < 0).
const maxReplayPerTick = 10 * maxReplayBatch

// onSamples runs a batch through the session (written: without report by exception): what it
// reports is published live when online (and kept in the ring until confirmed), queued
// otherwise. Node metrics are never queued: the next NBIRTH carries their current values.
func (b *Bridge) onSamples(batch []drivers.Sample, written bool) {
	l := &b.loop
	reported, err := b.opts.Session.AppendReported(l.reported[:0], batch, written)
	drivers.Release(batch) // the bridge was its last holder (gateway.fanOut); reported is a copy
	defer func() {
		// reported is used only here: its buffer is kept for the next batch, without the
		// strings it refers to, unless a burst made it large.
		clear(reported)
		if l.reported = reported[:0]; cap(reported) > maxReported {
			l.reported = nil
		}
	}()
	if !l.live {
		b.enqueue(encodeSamples(deviceSamples(reported)))
		b.pollCheck()
		return
	}
	if l.conn.err != nil {
		b.lost(l.conn.err, -1)                            // first: the ring goes back to the queue before these
		b.enqueue(encodeSamples(deviceSamples(reported))) // some may have gone out: duplicates, not a loss
		return
	}
	if err != nil {
		b.limit.Log(b.log, slog.LevelWarn, "session update", "session update failed", "err", logx.Err(err))
	}
	p := l.conn.seal()
	if len(reported) > 0 {
		var recs packedRecords
		var n int
		if recs, n, l.scratch = packSamples(reported, l.scratch); n > 0 {
			l.ring = append(l.ring, ringEntry{records: recs, n: n, proof: p})
			l.held += n
		}
		b.stat.update(func(s *Status) { s.PublishedLive += uint64(len(reported)) })
	}
}

// deviceSamples returns the samples of devices, leaving out node metrics (Device ""), which
// are not stored and forwarded. It returns samples itself when there is none to leave out.
func deviceSamples(samples []drivers.Sample) []drivers.Sample {
	for i, s := range samples {
		if s.Device != "" {
			continue
		}
		out := append([]drivers.Sample(nil), samples[:i]...)
		for _, s := range samples[i+1:] {
			if s.Device != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return samples
}

// packedRecords holds queue records back to back, each after its length (a uvarint): the
// ring's form of what a publish carried, one allocation and no pointers per batch.
type packedRecords []byte

// packSamples encodes the samples of devices (node metrics are never queued, see
// deviceSamples) as packed queue records. It packs them in scratch first, so that what it
// returns takes only the bytes it needs (one allocation), and returns them, how many there
// are, and scratch for next time.
func packSamples(samples []drivers.Sample, scratch []byte) (packedRecords, int, []byte) {
	buf, n := scratch[:0], 0
	var rec [128]byte // a record of the usual size stays on the stack
	for _, s := range samples {
		if s.Device == "" {
			continue
		}
		r := queue.EncodeSample(rec[:0], s)
		buf = binary.AppendUvarint(buf, uint64(len(r)))
		buf = append(buf, r...)
		n++
	}
	var out packedRecords
	if n > 0 {
		out = bytes.Clone(buf)
	}
	if cap(buf) > maxScratch {
		buf = nil
	}
	return out, n, buf
}

// maxScratch bounds the scratch buffer packSamples keeps between batches, maxReported the
// reported samples' buffer (in samples).
const (
	maxScratch  = 256 << 10
	maxReported = 4096
)

// packRecord packs one record.
func packRecord(rec []byte) packedRecords {
	buf := make([]byte, 0, binary.MaxVarintLen64+len(rec))
	return append(binary.AppendUvarint(buf, uint64(len(rec))), rec...)
}

// split returns the n records p holds, for the queue: slices of p, which the caller must not
// change.
func (p packedRecords) split(n int) [][]byte {
	recs := make([][]byte, 0, n)
	for len(p) > 0 {
		l, k := binary.Uvarint(p)
		if k <= 0 || l > uint64(len(p)-k) {
			break // cannot happen: the ring packs its records itself
		}
		end := k + int(l)
		recs = append(recs, p[k:end:end])
		p = p[end:]
	}
	return recs
}

// encodedSize is about the bytes queue.EncodeSample takes for s.
func encodedSize(s drivers.Sample) int {
	return 24 + len(s.Device) + len(s.Tag) + len(s.Value.Str())
}

func encodeSamples(samples []drivers.Sample) [][]byte {
	if len(samples) == 0 {
		return nil
	}
	size := 0
	for _, s := range samples {
		size += encodedSize(s)
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
	b.pollCheck()
	if c := l.conn; c != nil {
		if l.live && c.err != nil {
			b.lost(c.err, -1)
			return
		}
		c.seal()
	}
	if err != nil {
		b.limit.Log(b.log, slog.LevelWarn, "device state|"+ev.device, "device state not applied",
			"device", ev.device, "up", ev.up, "err", logx.Err(err))
	}
}

// onForward publishes a local message matched by an Up rule, or queues it.
func (b *Bridge) onForward(m message) {
	l := &b.loop
	rec := encodeMessage(nil, m)
	if !l.live {
		b.enqueue([][]byte{rec})
		return
	}
	if err := l.conn.Publish(m.topic, m.qos, m.retain, m.payload); err != nil {
		b.lost(err, -1) // the ring first, then this newer message
		b.enqueue([][]byte{rec})
		return
	}
	l.ring = append(l.ring, ringEntry{records: packRecord(rec), n: 1, proof: l.conn.seal()})
	l.held++
	b.stat.update(func(s *Status) { s.Forwarded++ })
}

// enqueue appends records to the queue; a refusal (full disk) loses them, counted and logged
// rate-limited.
func (b *Bridge) enqueue(records [][]byte) {
	if len(records) == 0 {
		return
	}
	n := uint64(len(records))
	if err := b.opts.Queue.Add(records...); err != nil {
		b.queueRefused(n, err)
		return
	}
	b.stat.update(func(s *Status) { s.Queued += n })
}

// retire forgets ring entries and acks replayed transactions once they are confirmed (see
// proof.confirmed). Ring entries are independent of each other: each goes as soon as it is
// confirmed, so that a PUBACKed QoS 1 message does not wait behind QoS 0 samples. Replayed
// transactions are acked in order (an Ack removes every older record).
func (b *Bridge) retire(now time.Time) {
	l := &b.loop
	proven := uint64(0)
	if l.conn != nil {
		proven = l.conn.proven.Load()
	}
	kept := l.ring[:0]
	for _, e := range l.ring {
		if !e.confirmed(proven, now, b.window) {
			kept = append(kept, e)
			continue
		}
		b.confirmed(e.n, e.byProof(proven))
	}
	clear(l.ring[len(kept):])
	l.ring = kept
	for len(l.inflight) > 0 && l.inflight[0].confirmed(proven, now, b.window) {
		f := l.inflight[0]
		if err := b.opts.Queue.Ack(f.tx); err != nil {
			b.limit.Log(b.log, slog.LevelWarn, "queue ack", "queue ack failed", "err", logx.Err(err))
		}
		b.confirmed(f.n, f.byProof(proven))
		l.inflight[0] = flight{}
		l.inflight = l.inflight[1:]
	}
	l.ringDone, l.flightDone = stamped(l.ring), stampedFlights(l.inflight)
	b.noteHeld()
}

// confirmed counts n records known delivered.
func (b *Bridge) confirmed(n int, byProof bool) {
	b.loop.held -= n
	b.stat.update(func(s *Status) {
		if byProof {
			s.Confirmed += uint64(n)
		} else {
			s.ConfirmedByWindow += uint64(n)
		}
	})
}

// noteHeld publishes the number of records waiting for confirmation to the status.
func (b *Bridge) noteHeld() {
	n := b.loop.held
	b.stat.update(func(s *Status) { s.Unconfirmed = n })
}

func stamped(ring []ringEntry) int {
	n := 0
	for n < len(ring) && !ring[n].written.IsZero() {
		n++
	}
	return n
}

func stampedFlights(fs []flight) int {
	n := 0
	for n < len(fs) && !fs[n].written.IsZero() {
		n++
	}
	return n
}
