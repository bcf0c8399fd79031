package bridge

import (
	"log/slog"
	"time"

	"github.com/wellgate/wellgate/bridge/queue"
	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/internal/logx"
)

// replay publishes the backlog, oldest first, within the ReplayRate budget, and only while
// the connection's sender keeps up (its outbox under a quarter of its bound).
func (b *Bridge) replay(now time.Time) {
	l := &b.loop
	if !l.live {
		return
	}
	rate := float64(b.opts.ReplayRate)
	if rate < 0 {
		l.budget = maxReplayPerTick
	} else {
		limit := max(rate*tickInterval.Seconds()*2, 1)
		l.budget = min(l.budget+rate*now.Sub(l.lastTick).Seconds(), limit)
	}
	// The budget pays for what goes out; reading is bounded per tick on its own, so that a
	// backlog the births made moot (the first poll, queued while the births waited for it)
	// is read through at once instead of at the rate, without holding the loop for long.
	for read := 0; l.live && l.budget >= 1 && read < maxReplayPerTick && l.conn.out.size() < b.opts.MailboxBytes/4; {
		tx, err := b.opts.Queue.Begin(int(min(l.budget, maxReplayBatch)))
		if err != nil {
			b.limit.Log(b.log, slog.LevelWarn, "queue read", "queue read failed", "err", logx.Err(err))
			return
		}
		if l.backlog = tx.Len() > 0; !l.backlog {
			return
		}
		read += tx.Len()
		l.budget -= float64(b.publishBacklog(tx))
	}
}

// publishBacklog publishes one transaction: runs of samples as historical DATA, forwarded
// messages as they were. On a publish failure the connection is treated as lost (which rolls
// the transaction back). It returns how many of its records went out: all but the samples the
// session skipped (carried by the births, or of tags no longer configured) and bad records.
func (b *Bridge) publishBacklog(tx *queue.Tx) (sent int) {
	l := &b.loop
	var samples []drivers.Sample
	var nSamples, nMsgs, bad int
	skipped0, covered0 := b.opts.Session.HistoricalSkipped(), b.opts.Session.HistoricalCovered()
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
				err = l.conn.Publish(m.topic, m.qos, m.retain, m.payload)
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
	n := tx.Len()
	tx.Records = nil // confirmation needs only the position
	l.inflight = append(l.inflight, flight{tx: tx, n: n, proof: l.conn.seal()})
	l.held += n
	skipped := b.opts.Session.HistoricalSkipped() - skipped0
	sent = n - bad - int(skipped) - int(b.opts.Session.HistoricalCovered()-covered0)
	if skipped > 0 {
		b.stat.update(func(s *Status) { s.HistoricalSkipped += skipped })
		b.limit.Log(b.log, slog.LevelWarn, "historical skipped",
			"queued samples of devices or tags no longer configured skipped", "samples", skipped)
	}
	if bad > 0 {
		b.limit.Log(b.log, slog.LevelWarn, "bad records", "undecodable queue records skipped", "records", bad)
	}
	switch {
	case err != nil && l.conn.err != nil:
		b.lost(err, -1)
		return
	case err != nil:
		b.limit.Log(b.log, slog.LevelWarn, "historical refused", "historical publish refused by the session", "err", logx.Err(err))
	}
	b.stat.update(func(s *Status) {
		s.PublishedHistorical += uint64(nSamples)
		s.Forwarded += uint64(nMsgs)
	})
	return sent
}
