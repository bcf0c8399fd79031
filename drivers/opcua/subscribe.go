package opcua

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"

	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/internal/clock"
)

// lastSeen is what was last delivered for a tag.
type lastSeen struct {
	v   drivers.Value
	q   drivers.Quality
	set bool
}

// maxItemsPerSubscription bounds a subscription's monitored items (and the notifications of
// one publish response), so that a publish response stays small whatever the server does with
// MaxNotificationsPerPublish: gopcua's server, for one, ignores it and sends 5,000 changes as one
// unchunked 150 kB message, which its own client refuses.
const maxItemsPerSubscription = 1000

// subscribe creates the subscriptions (as many as maxItemsPerSubscription and the server's
// MaxMonitoredItemsPerSubscription require)
// and their monitored items (in calls of at most MaxMonitoredItemsPerCall): sampling at the
// interval, queue size 1, the tag's deadband as an absolute DataChangeFilter.
func (c *conn) subscribe(ctx context.Context) error {
	_, idx := c.valueIDs()
	if len(idx) == 0 {
		return nil
	}
	ivl := c.d.interval()
	keepCount := uint32(max(1, math.Ceil(float64(c.d.opts.KeepAlive)/float64(ivl))))
	lifetime := uint32(max(3*float64(keepCount), math.Ceil(float64(subscriptionLifetime)/float64(ivl))))
	per := maxItemsPerSubscription
	if c.lim.monitoredPerSub > 0 {
		per = min(per, c.lim.monitoredPerSub)
	}
	for start := 0; start < len(idx); start += per {
		group := idx[start:min(start+per, len(idx))]
		params := &opcua.SubscriptionParameters{Interval: ivl, MaxKeepAliveCount: keepCount, LifetimeCount: lifetime,
			MaxNotificationsPerPublish: maxItemsPerSubscription}
		sctx, cancel := context.WithTimeout(ctx, c.d.opts.Timeout)
		sub, err := c.client.Subscribe(sctx, params, c.notifs)
		cancel()
		if err != nil {
			return err
		}
		c.subs = append(c.subs, sub.SubscriptionID)
		c.revised = max(c.revised, sub.RevisedPublishingInterval)
		if err := c.monitor(ctx, sub.SubscriptionID, group, true); err != nil {
			return err
		}
	}
	c.lastRx = c.d.drv.clock.Now()
	return nil
}

// filterRefused reports whether a monitored item was refused for its filter.
func filterRefused(s ua.StatusCode) bool {
	return s == ua.StatusBadMonitoredItemFilterUnsupported || s == ua.StatusBadFilterNotAllowed ||
		s == ua.StatusBadDeadbandFilterInvalid || s == ua.StatusBadMonitoredItemFilterInvalid
}

// monitor creates the monitored items of tags idx in subscription sub. Items the server
// refuses for their deadband filter are created again without one (the gateway's report by
// exception still applies the deadband); items refused otherwise make their tags bad.
func (c *conn) monitor(ctx context.Context, sub uint32, idx []int, filters bool) error {
	clk := c.d.drv.clock
	for start := 0; start < len(idx); {
		n := min(max(c.lim.monitoredPerCall, 1), len(idx)-start)
		chunk := idx[start : start+n]
		req := &ua.CreateMonitoredItemsRequest{SubscriptionID: sub, TimestampsToReturn: ua.TimestampsToReturnBoth,
			ItemsToCreate: make([]*ua.MonitoredItemCreateRequest, n)}
		for k, i := range chunk {
			req.ItemsToCreate[k] = c.itemRequest(i, filters)
		}
		var res *ua.CreateMonitoredItemsResponse
		mctx, cancel := context.WithTimeout(ctx, c.d.opts.Timeout)
		t0 := clk.Now()
		err := c.client.Send(mctx, req, func(v ua.Response) error {
			r, ok := v.(*ua.CreateMonitoredItemsResponse)
			if !ok {
				return fmt.Errorf("unexpected response %T", v)
			}
			res = r
			return nil
		})
		cancel()
		if errors.Is(err, ua.StatusBadTooManyOperations) && n > 1 {
			c.lim.monitoredPerCall = n / 2
			c.d.log.Info("the server refused to create many monitored items at once; creating fewer", "items", n, "now", c.lim.monitoredPerCall)
			continue
		}
		if err == nil && len(res.Results) != n {
			err = fmt.Errorf("the server answered %d monitored items with %d results", n, len(res.Results))
		}
		if err != nil {
			c.d.stats.Failed(errorKind(err), err, clk.Now())
			return err
		}
		now := clk.Now()
		c.d.stats.Answered(now.Sub(t0))
		c.d.stats.Good(now)
		c.lastOK = now
		var retry []int
		for k, r := range res.Results {
			i := chunk[k]
			c.revised = max(c.revised, time.Duration(r.RevisedSamplingInterval*float64(time.Millisecond)))
			switch {
			case quality(r.StatusCode) != drivers.Bad:
			case filters && req.ItemsToCreate[k].RequestedParameters.Filter != nil && filterRefused(r.StatusCode):
				retry = append(retry, i)
			default:
				t := c.d.tags[i]
				c.d.tagProblem(t, fmt.Sprintf("monitoring node %s: %s", t.node, statusText(r.StatusCode)))
				c.refuse(i)
			}
		}
		if len(retry) > 0 {
			c.d.log.Info("the server refused the deadband filter; monitoring without it", "tags", len(retry),
				"status", statusText(res.Results[0].StatusCode))
			if err := c.monitor(ctx, sub, retry, false); err != nil {
				return err
			}
		}
		start += n
	}
	return nil
}

// itemRequest is the monitored item of tag i: its value, sampled at the interval, queue size
// 1 (only the newest value matters), its deadband as a filter.
func (c *conn) itemRequest(i int, filters bool) *ua.MonitoredItemCreateRequest {
	t := c.d.tags[i]
	p := &ua.MonitoringParameters{
		ClientHandle:     uint32(i),
		SamplingInterval: float64(c.d.interval()) / float64(time.Millisecond),
		QueueSize:        1,
		DiscardOldest:    true,
	}
	if filters && t.deadband > 0 {
		p.Filter = ua.NewExtensionObject(&ua.DataChangeFilter{
			Trigger:       ua.DataChangeTriggerStatusValue,
			DeadbandType:  uint32(ua.DeadbandTypeAbsolute),
			DeadbandValue: t.deadband,
		})
	} else {
		p.Filter = ua.NewExtensionObject(nil)
	}
	return &ua.MonitoredItemCreateRequest{
		ItemToMonitor:       &ua.ReadValueID{NodeID: c.ids[i], AttributeID: ua.AttributeIDValue, DataEncoding: &ua.QualifiedName{}},
		MonitoringMode:      ua.MonitoringModeReporting,
		RequestedParameters: p,
	}
}

// follow runs the session after its start: notifications or polls, keep-alive and the data
// watchdog, until an error or ctx ends. In poll mode the session's first poll (serve's) has
// just been made; the next ones start on the device's schedule (see nextPoll).
func (c *conn) follow(ctx context.Context, sink drivers.Sink) error {
	d := c.d
	clk := d.drv.clock
	keep := clk.NewTicker(min(d.opts.KeepAlive, max(d.opts.Watchdog/2, time.Millisecond)))
	defer keep.Stop()
	var poll clock.Timer
	var pollC <-chan time.Time
	var due time.Time // when the poll the timer waits for is due
	if d.opts.Mode == ModePoll {
		now := clk.Now()
		due, _ = d.schedule.Next(now, d.interval(), now)
		poll = clk.NewTimer(due.Sub(now))
		defer poll.Stop()
		pollC = poll.C()
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.lost:
			return errLost
		case n := <-c.notifs:
			if err := c.notified(n, sink); err != nil {
				return err
			}
		case <-pollC:
			if err := c.pollOnce(ctx, sink); err != nil {
				return err
			}
			due = c.nextPoll(poll, due)
		case <-keep.C():
			if err := c.keepAlive(ctx); err != nil {
				return err
			}
			if d.opts.Mode == ModeSubscribe {
				if err := c.watchdog(ctx); err != nil {
					return err
				}
			}
		case <-d.rescan:
			if d.opts.Mode == ModeSubscribe {
				return errRescan
			}
			if !poll.Stop() {
				select { // a fake clock's timer may hold a value it fired meanwhile
				case <-pollC:
				default:
				}
			}
			if err := c.pollOnce(ctx, sink); err != nil {
				return err
			}
			now := clk.Now()
			due, _ = d.schedule.Next(now, d.interval(), now) // the new interval's next start
			poll.Reset(due.Sub(now))
		}
	}
}

// nextPoll arms the poll timer for the poll after the one due at due, and returns when that
// one is due: on the device's schedule, skipping (and counting) starts a slow poll overran.
func (c *conn) nextPoll(poll clock.Timer, due time.Time) time.Time {
	d := c.d
	now := d.drv.clock.Now()
	next, overran := d.schedule.Next(due, d.interval(), now)
	poll.Reset(next.Sub(now))
	if overran {
		args := []any{"interval", d.interval(), "took", now.Sub(due).Round(time.Millisecond)}
		if d.stats.Count(kindOverrun) == 1 {
			d.log.Warn("a poll ended after the next one was due; skipped to the one after (raise poll_interval)", args...)
		} else {
			d.log.Debug("a poll ended after the next one was due", args...)
		}
	}
	return next
}

// notified delivers a notification's values. An error reported by the client's publish loop,
// or a subscription status change, ends the session: the subscription is not trusted after
// either.
func (c *conn) notified(n *opcua.PublishNotificationData, sink drivers.Sink) error {
	if n == nil {
		return nil
	}
	if n.Error != nil {
		return fmt.Errorf("subscription %d: %w", n.SubscriptionID, n.Error)
	}
	switch v := n.Value.(type) {
	case *ua.DataChangeNotification:
		now := c.d.drv.clock.Now()
		c.lastRx, c.suspect = now, time.Time{}
		batch := make([]drivers.Sample, 0, len(v.MonitoredItems))
		for _, item := range v.MonitoredItems {
			if item == nil {
				continue
			}
			i := int(item.ClientHandle)
			if i < 0 || i >= len(c.ids) || c.ids[i] == nil {
				continue
			}
			batch = append(batch, c.sample(i, item.Value, now))
		}
		if len(batch) > 0 {
			c.d.stats.Good(now)
			sink.Samples(batch)
		}
	case *ua.StatusChangeNotification:
		return fmt.Errorf("subscription %d: status changed to %s", n.SubscriptionID, statusText(v.Status))
	}
	return nil
}

// watchdog finds a subscription that went silent while its session still answers (gopcua
// #895 is one way to get there): after a quiet spell of opts.Watchdog it reads the subscribed
// values and compares them with those last delivered. A change beyond the deadband that is
// still undelivered two publishing (or sampling) intervals later, as the server revised them,
// means the subscription is silent.
func (c *conn) watchdog(ctx context.Context) error {
	d := c.d
	clk := d.drv.clock
	now := clk.Now()
	// The server may have revised the intervals: a change may take two of its intervals to come.
	ivl := max(d.interval(), c.revised)
	if len(c.subs) == 0 || now.Sub(c.lastRx) < max(d.opts.Watchdog, 3*ivl) {
		return nil
	}
	if !c.suspect.IsZero() && now.Sub(c.suspect) < 2*ivl+d.opts.Timeout {
		return nil
	}
	changed, err := c.undelivered(ctx)
	if err != nil {
		return err
	}
	switch {
	case changed == "":
		c.suspect, c.lastRx = time.Time{}, now // quiet because nothing changed
	case c.suspect.IsZero():
		c.suspect = now
	default:
		return fmt.Errorf("%w: %s changed without a notification", errSilent, changed)
	}
	return nil
}

// undelivered reads the subscribed values and returns the name of a tag whose value or
// quality differs from what was last delivered by more than its deadband, or "".
func (c *conn) undelivered(ctx context.Context) (string, error) {
	rvs, idx := c.valueIDs()
	res, err := c.readIDs(ctx, rvs)
	if err != nil {
		return "", fmt.Errorf("watchdog read: %w", err)
	}
	now := c.d.drv.clock.Now()
	for k, dv := range res {
		i := idx[k]
		prev := c.last[i]
		s := c.sample(i, dv, now)
		c.last[i] = prev // only deliveries count
		if !prev.set {
			continue
		}
		if s.Quality != prev.q || !withinDeadband(s.Value, prev.v, c.d.tags[i].deadband) {
			return c.d.tags[i].name, nil
		}
	}
	return "", nil
}

// withinDeadband reports whether two values are the same, or numbers no more than deadband
// apart.
func withinDeadband(a, b drivers.Value, deadband float64) bool {
	if a.Equal(b) {
		return true
	}
	if a.IsNull() || b.IsNull() || a.Type() != b.Type() || !numeric(a.Type()) {
		return false
	}
	return math.Abs(a.Float64()-b.Float64()) <= deadband
}
