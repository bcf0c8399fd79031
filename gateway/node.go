package gateway

import (
	"context"
	"time"

	"github.com/wellgate/wellgate/drivers"
)

// Node metrics: the gateway's own state, published in NBIRTH/NDATA so that Ignition shows the
// box's health beside its devices.
const (
	nmVersion    = "Properties/Version"
	nmUptime     = "Properties/Uptime"
	nmConnects   = "Upstream/Connects"
	nmQueueDepth = "Store and Forward/Depth"
	nmQueueAge   = "Store and Forward/Oldest Age"
	nmQueueDrop  = "Store and Forward/Dropped"
	nmDevGood    = "Devices/Good"
	nmDevBad     = "Devices/Bad"
	nmNextServer = "Node Control/Next Server"
	nmScanRate   = "Node Control/Scan Rate"
)

// nodeInterval is how often node metrics are sampled; uptime moves in whole minutes so that
// it costs one NDATA a minute, not one per sample.
const nodeInterval = 5 * time.Second

func nodeMetrics() []drivers.TagInfo {
	return []drivers.TagInfo{
		{Name: nmVersion, Type: drivers.String, Description: "wellgate version"},
		{Name: nmUptime, Type: drivers.Int64, Units: "s", Description: "seconds since start, in whole minutes"},
		{Name: nmConnects, Type: drivers.Int64, Description: "upstream connections made since start"},
		{Name: nmQueueDepth, Type: drivers.Int64, Description: "samples waiting in store-and-forward"},
		{Name: nmQueueAge, Type: drivers.Int64, Units: "s", Description: "age of the oldest queued sample"},
		{Name: nmQueueDrop, Type: drivers.Int64, Description: "queued samples dropped (size or age limit, corruption, full disk) since start"},
		{Name: nmDevGood, Type: drivers.Int32, Description: "devices communicating"},
		{Name: nmDevBad, Type: drivers.Int32, Description: "devices not communicating"},
		{Name: nmNextServer, Type: drivers.Boolean, Writable: true, Description: "write true to move to the next upstream server"},
		{Name: nmScanRate, Type: drivers.Int64, Units: "ms", Writable: true,
			Description: "poll interval of every device; 0 restores the configured ones"},
	}
}

// nodeSamples samples the node metrics now.
func (g *Gateway) nodeSamples(now time.Time) []drivers.Sample {
	good, bad := g.store.deviceCounts()
	up := g.upstreamView()
	g.mu.RLock()
	scan := g.scanRate
	g.mu.RUnlock()
	uptime := int64(now.Sub(g.started) / time.Minute * 60)
	mk := func(name string, v drivers.Value) drivers.Sample {
		return drivers.Sample{Tag: name, Value: v, Quality: drivers.Good, Time: now}
	}
	return []drivers.Sample{
		mk(nmVersion, drivers.StringValue(g.version)),
		mk(nmUptime, drivers.IntValue(drivers.Int64, uptime)),
		mk(nmConnects, drivers.IntValue(drivers.Int64, int64(up.Connects))),
		mk(nmQueueDepth, drivers.IntValue(drivers.Int64, int64(up.Queued))),
		mk(nmQueueAge, drivers.IntValue(drivers.Int64, int64(up.QueueOldest/time.Second))),
		mk(nmQueueDrop, drivers.IntValue(drivers.Int64, int64(up.Dropped))),
		mk(nmDevGood, drivers.IntValue(drivers.Int32, int64(good))),
		mk(nmDevBad, drivers.IntValue(drivers.Int32, int64(bad))),
		mk(nmNextServer, drivers.BoolValue(false)),
		mk(nmScanRate, drivers.IntValue(drivers.Int64, scan.Milliseconds())),
	}
}

// runNodeMetrics samples the node metrics until ctx ends.
func (g *Gateway) runNodeMetrics(ctx context.Context) error {
	t := time.NewTicker(nodeInterval)
	defer t.Stop()
	for {
		g.fanOut(g.nodeSamples(time.Now()))
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// writeNode carries out an NCMD write of a node metric.
func (g *Gateway) writeNode(name string, v drivers.Value) error {
	switch name {
	case nmNextServer:
		if v.Bool() {
			return g.nextServer()
		}
		return nil
	case nmScanRate:
		ms := v.Int()
		if ms < 0 || (ms > 0 && ms < 50) || ms > int64(24*time.Hour/time.Millisecond) {
			return drivers.ErrOutOfRange
		}
		rate := time.Duration(ms) * time.Millisecond
		g.mu.Lock()
		g.scanRate = rate
		g.mu.Unlock()
		for _, d := range g.currentDrivers() {
			if s, ok := d.(interface{ SetScanRate(time.Duration) }); ok {
				s.SetScanRate(rate)
			}
		}
		g.log.Info("scan rate changed by NCMD", "scan_rate", rate)
		g.fanOut(g.nodeSamples(time.Now()))
		return nil
	}
	return drivers.ErrNotWritable
}
