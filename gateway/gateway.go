// Package gateway wires the parts of wellgate together: field drivers produce samples; the
// gateway fans them out to the Sparkplug session on the embedded broker, to the upstream
// bridge and to the status page; commands coming back are routed to the drivers.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/wellgate/wellgate/bridge"
	"github.com/wellgate/wellgate/broker"
	"github.com/wellgate/wellgate/config"
	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/internal/logx"
	"github.com/wellgate/wellgate/sparkplug"
	"github.com/wellgate/wellgate/web"
)

// Gateway is one running wellgate.
type Gateway struct {
	cfg     *config.Config
	log     *slog.Logger
	version string
	started time.Time

	// The device set in force. A reload replaces them under mu (see reload.go); the store and
	// the write queues are changed in place, under their own locks.
	drivers []drivers.Driver
	writers map[string]drivers.Writer // by device
	devices []drivers.DeviceInfo
	devCfg  *config.Config // cfg with the [[device]] tables in force (both as keptConfig keeps them)
	store   *store
	writes  *writeQueues             // pending device writes, one queue per device
	limit   *logx.Limiter            // rate-limits repeated log lines
	latency *prometheus.HistogramVec // wellgate_publish_latency_seconds, by session; on the page's /metrics
	health  health                   // parts that failed

	localBdSeq atomic.Uint64 // bdSeq of the local session, for the page

	// Set during Run.
	mu       sync.RWMutex
	sinks    []sink
	scanRate time.Duration // set by NCMD Node Control/Scan Rate; 0: as configured

	birthLocal func() error       // starts the local session (set by startLocal)
	localSess  *sparkplug.Session // the local session from its creation (set by startLocal)
	flat       *flatOutput        // the flat topics output, when enabled
	local      *sparkplug.Session
	sessions   sessionCounts // both sessions, for their message counts on the page
	devLoop    *devLoop      // runs the drivers and device writers (set during runParts)
	reloadMu   sync.Mutex    // one reload at a time
	broker     *broker.Broker
	bridge     *bridge.Bridge
	web        *web.Server
}

// New builds the gateway from a validated configuration: it constructs the drivers (which
// validate every tag) but opens nothing. The error lists every problem found, with file and
// line.
func New(cfg *config.Config, log *slog.Logger, version string) (*Gateway, error) {
	set, err := buildDevices(cfg, log)
	if err != nil {
		return nil, err
	}
	cfg = keptConfig(cfg)
	g := &Gateway{cfg: cfg, devCfg: cfg, log: log, version: version, limit: logx.NewLimiter(logEvery),
		latency: newLatency()}
	g.drivers, g.devices, g.writers = set.drivers, set.devices, set.writers
	if g.cfg.Broker.Enabled {
		if err := g.brokerOptions().Validate(); err != nil {
			return nil, fmt.Errorf("broker: %w", err)
		}
	}
	g.store = newStore(g.storeDevices(), time.Now())
	g.writes = newWriteQueues(slices.Collect(maps.Keys(g.writers)))
	// Building the sessions validates ids and metric names without any I/O.
	if _, err := g.newSession(sessionLocal); err != nil {
		return nil, errors.Join(err, closeAll(set.drivers))
	}
	return g, nil
}

// Devices describes every device the gateway polls.
func (g *Gateway) Devices() []drivers.DeviceInfo {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.devices
}

// currentDrivers are the drivers in force (a reload replaces them).
func (g *Gateway) currentDrivers() []drivers.Driver {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.drivers
}

// The sessions, as wellgate_publish_latency_seconds labels them.
const (
	sessionLocal    = "local"
	sessionUpstream = "upstream"
)

// newSession builds the session named session ("local" or "upstream") for the devices in force.
func (g *Gateway) newSession(session string) (*sparkplug.Session, error) {
	return g.sessionFor(session, g.Devices())
}

// sessionFor builds a Sparkplug session for the devices, offline; its live DATA is observed in
// wellgate_publish_latency_seconds under the label session.
func (g *Gateway) sessionFor(session string, devices []drivers.DeviceInfo) (*sparkplug.Session, error) {
	sp := g.cfg.Sparkplug
	return sparkplug.NewSession(sparkplug.Options{
		GroupID: sp.GroupID, EdgeNodeID: sp.EdgeNodeID, Aliases: sp.Aliases,
		DataQoS: byte(sp.DataQoS), Devices: devices, NodeMetrics: nodeMetrics(),
		MaxCommandMetrics: sp.MaxCommandMetrics,
		Latency:           g.latency.WithLabelValues(session),
		Logger:            g.log.With("part", "sparkplug"),
	})
}

// newLatency is wellgate_publish_latency_seconds: per session, each value published in live
// DATA, from its poll (the sample's time) to its publication.
func newLatency() *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "wellgate_publish_latency_seconds",
		Help:    "Seconds from a value's poll to its publication in live Sparkplug DATA, by session.",
		Buckets: []float64{0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
	}, []string{"session"})
}

// drainTimeout bounds how long the upstream bridge may take, once the drivers have stopped,
// to publish NDEATH and queue what was not confirmed.
const drainTimeout = 20 * time.Second

// Run opens every part, runs until ctx is cancelled, then stops them in order: the drivers
// (and the page, the node metrics and the writers) first; then, bounded by drainTimeout, the
// upstream bridge, so that the last samples polled are queued rather than lost; then the
// local session (NDEATH) and the broker. A start that fails half-way closes what it opened,
// so that no port stays bound.
func (g *Gateway) Run(ctx context.Context) error {
	g.started = time.Now()
	var opened closers
	defer opened.close(g.log)
	if err := os.MkdirAll(g.cfg.Gateway.DataDir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	opened.add("drivers", func() error { return closeAll(g.currentDrivers()) })
	if err := g.startLocal(&opened); err != nil {
		return err
	}
	if g.cfg.Web.Enabled {
		ws, err := web.NewWithOptions(g.webOptions(), g, g.log)
		if err != nil {
			return err
		}
		g.mu.Lock()
		g.web = ws
		g.mu.Unlock()
		opened.add("status page", ws.Close)
	}
	runCtx, cancelRun := context.WithCancelCause(ctx)
	defer cancelRun(nil)
	bctx, stopBridge := context.WithCancel(context.Background())
	defer stopBridge()
	bridgeDone, err := g.startUpstream(bctx, cancelRun)
	if err != nil {
		return err
	}
	returnStartupMemory()
	err = g.runParts(runCtx)
	if ctx.Err() != nil {
		g.log.Info("wellgate stopping")
	}
	stopBridge()
	if berr := g.drainBridge(bridgeDone); berr != nil && err == nil {
		err = berr
	}
	if cause := context.Cause(runCtx); err == nil && cause != nil && ctx.Err() == nil {
		err = cause
	}
	return err
}

// runParts runs the drivers and the device writers (runDevices: a reload replaces them), the page, the node metrics, the local births and the device
// writers until ctx ends or one of them fails.
func (g *Gateway) runParts(ctx context.Context) error {
	grp, gctx := errgroup.WithContext(ctx)
	if g.web != nil {
		grp.Go(g.health.tracked("status page", func() error { return g.web.Run(gctx) }))
	}
	loop := newDevLoop()
	g.mu.Lock()
	g.devLoop = loop
	g.mu.Unlock()
	grp.Go(func() error { return g.runDevices(gctx, loop) })
	grp.Go(func() error { return g.runNodeMetrics(gctx) })
	grp.Go(func() error { return g.birthWhenPolled(gctx) })
	for _, w := range g.brokerWarnings() { // the page logs its own
		g.log.Warn("configuration: " + w)
	}
	g.log.Info("wellgate running", "version", g.version, "group", g.cfg.Sparkplug.GroupID,
		"edge_node", g.cfg.Sparkplug.EdgeNodeID, "devices", len(g.Devices()))
	return grp.Wait()
}

// returnStartupMemory collects the garbage of building the gateway (decoding the file, the
// drivers, the sessions: hundreds of megabytes at 40,000 tags) and returns it to the OS at
// once, so that the steady state does not start at the start-up's peak and wait for the
// scavenger to come down. Called once the parts are built, and after a reload.
func returnStartupMemory() { debug.FreeOSMemory() }

// drainBridge waits, at most drainTimeout, for the stopped bridge to finish.
func (g *Gateway) drainBridge(done <-chan error) error {
	t := time.NewTimer(drainTimeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		g.log.Error("upstream bridge did not stop in time; values it held may be sent again after restart", "waited", drainTimeout)
		return nil
	}
}

// startLocal starts the embedded broker and the Sparkplug session published into it.
func (g *Gateway) startLocal(opened *closers) error {
	if !g.cfg.Broker.Enabled {
		return nil
	}
	b, err := broker.New(g.brokerOptions())
	if err != nil {
		return err
	}
	g.mu.Lock()
	g.broker = b
	g.mu.Unlock()
	opened.add("local sparkplug session and broker", g.closeLocal)
	if err := b.Serve(); err != nil {
		return err
	}
	sess, err := g.newSession(sessionLocal)
	if err != nil {
		return err
	}
	g.sessions.set(&g.sessions.local, sess)
	ncmd, dcmd := sess.Topics()
	for _, topic := range []string{ncmd, dcmd} {
		if err := b.SubscribeMessages(topic, func(m broker.Message) { g.localCommand(sess, m) }); err != nil {
			return err
		}
	}
	bdseq, err := g.openBdSeq("bdseq-local")
	if err != nil {
		return err
	}
	seq, err := bdseq.Next()
	if err != nil {
		return err
	}
	g.localBdSeq.Store(seq)
	// The session records samples from now on; it is born once the first poll is in.
	g.mu.Lock()
	g.localSess = sess
	g.sinks = append(g.sinks, localOutput{s: sess, log: g.log, limit: g.limit})
	if g.cfg.Broker.Flat.Enabled {
		g.flat = newFlatOutput(g.devCfg, g.devices, b.Publish, g.log, g.limit)
		g.sinks = append(g.sinks, g.flat)
	}
	g.mu.Unlock()
	g.birthLocal = func() error {
		if err := sess.Start(b, seq); err != nil {
			return fmt.Errorf("local sparkplug session: %w", err)
		}
		g.mu.Lock()
		g.local = sess
		g.mu.Unlock()
		return nil
	}
	return nil
}

// firstPollWait bounds how long births wait for every device's first poll.
const firstPollWait = 5 * time.Second

// birthWhenPolled publishes the local births once every device has reported its first poll
// (or firstPollWait has passed), so that NBIRTH/DBIRTH carry values rather than nulls.
func (g *Gateway) birthWhenPolled(ctx context.Context) error {
	if g.birthLocal == nil {
		return nil
	}
	g.store.waitReported(ctx, firstPollWait)
	if ctx.Err() != nil {
		return nil
	}
	return g.birthLocal()
}

// closeLocal publishes the local NDEATH and closes the embedded broker. It is idempotent.
func (g *Gateway) closeLocal() error {
	g.mu.Lock()
	sess, b := g.local, g.broker
	g.local, g.broker = nil, nil
	g.mu.Unlock()
	if sess != nil {
		if err := sess.Death(); err != nil {
			g.log.Warn("local NDEATH", "err", err)
		}
	}
	if b != nil {
		return b.Close()
	}
	return nil
}

// sink is the output contract: the embedded broker's Sparkplug session and the upstream bridge
// receive the same calls with the same meaning.
//   - Samples: what a poll read; report by exception decides what is published.
//   - Written: values read back after a write; always published, even inside a deadband,
//     whichever session the command came from.
//   - DeviceState: a device's communications went up or down (DBIRTH/DDEATH).
type sink interface {
	drivers.Sink
	Written(batch []drivers.Sample)
}

// Samples implements drivers.Sink: the status page first, then every output.
func (g *Gateway) Samples(batch []drivers.Sample) {
	g.store.samples(batch)
	g.fanOut(batch)
}

// fanOut hands batch to every output. The outputs that publish at once keep nothing of it;
// the bridge takes it over (its run loop works on it later) and gives it back itself
// (drivers.Release), so it gets it last, and without a bridge the gateway gives it back.
func (g *Gateway) fanOut(batch []drivers.Sample) {
	var owner sink
	for _, s := range g.currentSinks() {
		if _, takes := s.(*bridge.Bridge); takes {
			owner = s
			continue
		}
		s.Samples(batch)
	}
	if owner == nil {
		drivers.Release(batch)
		return
	}
	owner.Samples(batch)
}

func (g *Gateway) currentSinks() []sink {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.sinks
}

// DeviceState implements drivers.Sink. The driver logs the change (it knows why); the
// gateway records it and tells every output.
func (g *Gateway) DeviceState(device string, up bool, err error) {
	g.store.deviceState(device, up, err)
	for _, s := range g.currentSinks() {
		s.DeviceState(device, up, err)
	}
	g.fanOut(g.nodeSamples(time.Now()))
}

// localOutput feeds the embedded broker's Sparkplug session. A publish that fails (the broker
// is closing) is logged at most once per logEvery.
type localOutput struct {
	s     *sparkplug.Session
	log   *slog.Logger
	limit *logx.Limiter
}

func (o localOutput) Samples(batch []drivers.Sample) {
	if err := o.s.Report(batch, false); err != nil {
		o.limit.Log(o.log, slog.LevelWarn, "local publish", "local publish failed", "err", err)
	}
}

func (o localOutput) Written(batch []drivers.Sample) {
	if err := o.s.Report(batch, true); err != nil {
		o.limit.Log(o.log, slog.LevelWarn, "local publish", "local publish failed", "err", err)
	}
}

func (o localOutput) DeviceState(device string, up bool, _ error) {
	if err := o.s.SetDeviceState(device, up); err != nil {
		o.limit.Log(o.log, slog.LevelWarn, "local publish", "local publish failed", "device", device, "err", err)
	}
}

var _ drivers.Sink = (*Gateway)(nil)

// WritePlan prints each driver's request plan (drivers that plan requests), then the total.
func (g *Gateway) WritePlan(w io.Writer) {
	for _, d := range g.currentDrivers() {
		if p, ok := d.(drivers.Planner); ok {
			p.WritePlan(w)
		}
	}
}

// BrokerAddr is the embedded broker's address once Run has started it and published the local
// births, else "".
func (g *Gateway) BrokerAddr() string {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.broker == nil || g.local == nil {
		return ""
	}
	return g.broker.Addr().String()
}

// WebAddr is the status page's address once Run has bound it, else "".
func (g *Gateway) WebAddr() string {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.web == nil {
		return ""
	}
	return g.web.Addr().String()
}

// webOptions are the status page's options from the configuration.
func (g *Gateway) webOptions() web.Options {
	w := g.cfg.Web
	o := web.Options{Listen: w.Listen, TLSCertFile: w.TLSCertFile, TLSKeyFile: w.TLSKeyFile,
		MaxConns: w.MaxConnections, Version: g.version, Collectors: []prometheus.Collector{g.latency}}
	for _, u := range w.Users {
		o.Users = append(o.Users, web.User{Name: u.Name, Hash: u.PasswordHash})
	}
	return o
}
