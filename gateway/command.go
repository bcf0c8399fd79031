package gateway

import (
	"context"
	"time"

	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/sparkplug"
	"github.com/wellgate/wellgate/web"
)

// writeTimeout bounds one command's write and read-back.
const writeTimeout = 10 * time.Second

// command handles an NCMD or DCMD arriving for sess: rebirths happen inside the session;
// writes go to the device's driver, and the value read back is published like any sample.
// Bad commands are logged and ignored.
func (g *Gateway) command(sess *sparkplug.Session, topic string, payload []byte) {
	writes, err := sess.HandleCommand(topic, payload)
	if err != nil {
		g.log.Warn("command ignored", "topic", topic, "err", err)
	}
	for _, w := range writes {
		_ = g.write(w) // logged in write
	}
}

func (g *Gateway) write(w sparkplug.Write) error {
	log := g.log.With("device", w.Device, "tag", w.Tag, "value", w.Value.String())
	if w.Device == "" {
		if err := g.writeNode(w.Tag, w.Value); err != nil {
			log.Warn("node command refused", "err", err)
			return err
		}
		return nil
	}
	wr, ok := g.writers[w.Device]
	if !ok {
		log.Warn("write refused: device does not accept writes")
		return drivers.ErrNotWritable
	}
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	got, err := wr.Write(ctx, w.Device, w.Tag, w.Value)
	if err != nil {
		log.Warn("write refused", "err", err)
		return err
	}
	log.Info("written", "read_back", got.String())
	batch := []drivers.Sample{{Device: w.Device, Tag: w.Tag, Value: got, Quality: drivers.Good, Time: time.Now()}}
	g.store.samples(batch)
	for _, s := range g.currentSinks() {
		s.Written(batch)
	}
	return nil
}

// Snapshot implements web.Source.
func (g *Gateway) Snapshot() web.Snapshot {
	status := map[string]drivers.DeviceStatus{}
	for _, d := range g.drivers {
		if r, ok := d.(drivers.StatusReporter); ok {
			for _, s := range r.Status() {
				status[s.Device] = s
			}
		}
	}
	snap := web.Snapshot{
		Group: g.cfg.Sparkplug.GroupID, EdgeNode: g.cfg.Sparkplug.EdgeNodeID,
		Version: g.version, Started: g.started, Devices: g.store.view(status),
		Upstream: web.Upstream{Enabled: g.cfg.Upstream.Enabled()},
	}
	if snap.Upstream.Enabled {
		st := g.upstreamStats()
		snap.Upstream.State, snap.Upstream.Server, snap.Upstream.Since = st.state, st.server, st.since
		snap.Upstream.Connected = st.connected
		snap.Upstream.Queued, snap.Upstream.Dropped = st.depth, st.dropped
	}
	g.mu.RLock()
	if g.broker != nil {
		snap.Broker = g.broker.Addr().String()
	}
	g.mu.RUnlock()
	return snap
}
