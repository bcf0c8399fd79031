package gateway

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wellgate/wellgate/config"
	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/internal/logx"
)

// Reload (SIGHUP) applies a new configuration's [[device]] tables to a running gateway without
// dropping the upstream MQTT session, the store-and-forward queue or the embedded broker:
//
//  1. Reload builds the new drivers through the registry (opening nothing) and checks the new
//     device set as a Sparkplug session would; a failure refuses the reload, nothing changed.
//  2. It hands the new set to runDevices, the one goroutine that runs the drivers and the
//     device writers, which stops the old ones (bounded by reloadStopTimeout): what they
//     polled before they stopped has gone through the outputs as usual.
//  3. There (applyDevices) the set is swapped: drivers, devices and writers under g.mu; the
//     store and the write queues in place (values of tags that stay are kept); the flat
//     output rebuilt; both Sparkplug sessions get the new set (Session.SetDevices: a full
//     rebirth when online; the bridge's on its own loop, Bridge.Reconfigure, bounded by
//     reloadBridgeWait). Then the new drivers and writers start.
//
// Sections other than [[device]] are not applied: one warning names those that changed.

// ErrNotRunning is returned by Reload when the gateway's Run is not (or no longer) running its
// devices.
var ErrNotRunning = errors.New("gateway not running")

// reloadStopTimeout bounds how long a reload waits for the old drivers and writers to stop.
const reloadStopTimeout = 10 * time.Second

// reloadBridgeWait bounds how long a reload waits for the bridge's loop to take the new set.
const reloadBridgeWait = 10 * time.Second

// devLoop is runDevices' inbox.
type devLoop struct {
	reqs chan reloadReq
	done chan struct{} // closed when runDevices has returned
}

func newDevLoop() *devLoop { return &devLoop{reqs: make(chan reloadReq), done: make(chan struct{})} }

// reloadReq asks runDevices to stop the running set, call apply, and start the new one.
type reloadReq struct {
	apply func() error
	reply chan error // buffered
}

// generation is one device set running: its drivers and its device writers.
type generation struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when every goroutine has returned
	failed chan error    // the first driver error
}

// startGeneration runs the drivers and the device writers in force until ctx ends or the
// generation is stopped.
func (g *Gateway) startGeneration(parent context.Context) *generation {
	ctx, cancel := context.WithCancel(parent)
	gen := &generation{cancel: cancel, done: make(chan struct{}), failed: make(chan error, 1)}
	g.mu.RLock()
	ds := g.drivers
	g.mu.RUnlock()
	var wg sync.WaitGroup
	for _, d := range ds {
		wg.Go(func() {
			if err := g.health.tracked("driver", func() error { return d.Run(ctx, g) })(); err != nil {
				select {
				case gen.failed <- err:
				default:
				}
			}
		})
	}
	wg.Go(func() { g.writes.serve(ctx, func(r writeReq) { _ = g.perform(ctx, r) }) })
	go func() { wg.Wait(); close(gen.done) }()
	return gen
}

// stop cancels the generation and waits for it, at most timeout (0: without bound); it
// reports whether it stopped.
func (gen *generation) stop(timeout time.Duration) bool {
	gen.cancel()
	if timeout <= 0 {
		<-gen.done
		return true
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-gen.done:
		return true
	case <-t.C:
		return false
	}
}

// runDevices runs the device set until ctx ends or a driver fails (its error ends the parts,
// as before reloads existed), and carries out reloads in between.
func (g *Gateway) runDevices(ctx context.Context, loop *devLoop) error {
	defer close(loop.done)
	gen := g.startGeneration(ctx)
	for {
		select {
		case <-ctx.Done():
			gen.stop(0)
			select {
			case err := <-gen.failed:
				return err
			default:
				return nil
			}
		case err := <-gen.failed:
			gen.stop(0)
			return err
		case r := <-loop.reqs:
			if !gen.stop(reloadStopTimeout) {
				g.log.Error("reload: old drivers did not stop in time; starting the new ones all the same",
					"waited", reloadStopTimeout)
			}
			r.reply <- r.apply()
			gen = g.startGeneration(ctx)
		}
	}
}

// Reload applies cfg's [[device]] tables to the running gateway (see the top of this file).
// cfg must have passed the same checks as `wellgate check`. Reloads are serialized; one that
// is refused (a driver that does not build, a device set a session refuses, a gateway not
// running) changes nothing. It returns once the new drivers run, in bounded time.
func (g *Gateway) Reload(cfg *config.Config) error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	set, err := buildDevices(cfg, g.log)
	if err != nil {
		return fmt.Errorf("reload refused: %w", err)
	}
	if _, err := g.sessionFor(sessionLocal, set.devices); err != nil {
		return fmt.Errorf("reload refused: %w", errors.Join(err, closeAll(set.drivers)))
	}
	g.mu.RLock()
	loop := g.devLoop
	g.mu.RUnlock()
	if loop == nil {
		return fmt.Errorf("reload refused: %w", errors.Join(ErrNotRunning, closeAll(set.drivers)))
	}
	if restart := g.restartSections(cfg); len(restart) > 0 {
		g.log.Warn("reload: only [[device]] changes are applied; these sections changed and need a restart",
			"sections", strings.Join(restart, ", "))
	}
	r := reloadReq{apply: func() error { return g.applyDevices(cfg, set) }, reply: make(chan error, 1)}
	select {
	case loop.reqs <- r:
	case <-loop.done:
		return fmt.Errorf("reload refused: %w", errors.Join(ErrNotRunning, closeAll(set.drivers)))
	}
	err = <-r.reply
	returnStartupMemory() // the old drivers and the new file's decoding
	return err
}

// restartSections names the sections of cfg, other than [[device]], that differ from the
// running configuration's.
func (g *Gateway) restartSections(cfg *config.Config) []string {
	var out []string
	for _, s := range []struct {
		name     string
		old, new any
	}{
		{"[gateway]", g.cfg.Gateway, cfg.Gateway},
		{"[sparkplug]", g.cfg.Sparkplug, cfg.Sparkplug},
		{"[broker]", g.cfg.Broker, cfg.Broker},
		{"[upstream]", g.cfg.Upstream, cfg.Upstream},
		{"[web]", g.cfg.Web, cfg.Web},
	} {
		if !reflect.DeepEqual(s.old, s.new) {
			out = append(out, s.name)
		}
	}
	return out
}

// applyDevices swaps the device set for set (built from cfg's [[device]] tables) and tells
// every output. It runs on runDevices' goroutine while no driver or device writer runs.
func (g *Gateway) applyDevices(cfg *config.Config, set deviceSet) error {
	merged := *g.cfg // the running sections, with the new [[device]] tables
	merged.Devices = keptConfig(cfg).Devices
	g.mu.Lock()
	oldDrivers, oldDevices := g.drivers, g.devices
	g.drivers, g.devices, g.writers, g.devCfg = set.drivers, set.devices, set.writers, &merged
	rate := g.scanRate
	local, br := g.localSess, g.bridge
	if g.flat != nil {
		nf := newFlatOutput(&merged, set.devices, g.flat.pub, g.log, g.limit)
		sinks := slices.Clone(g.sinks)
		for i, s := range sinks {
			if s == sink(g.flat) {
				sinks[i] = nf
			}
		}
		g.sinks, g.flat = sinks, nf
	}
	g.mu.Unlock()
	if err := closeAll(oldDrivers); err != nil {
		g.log.Warn("reload: close old drivers", "err", logx.Err(err))
	}
	g.store.setDevices(g.storeDevices(), time.Now())
	if n := g.writes.setDevices(slices.Collect(maps.Keys(set.writers))); n > 0 {
		g.log.Warn("reload: pending writes of removed devices dropped", "writes", n)
	}
	if rate > 0 {
		for _, d := range set.drivers {
			if s, ok := d.(interface{ SetScanRate(time.Duration) }); ok {
				s.SetScanRate(rate)
			}
		}
	}
	var errs []error
	if local != nil {
		if err := local.SetDevices(set.devices); err != nil {
			errs = append(errs, fmt.Errorf("local sparkplug session: %w", err))
		}
	}
	if br != nil {
		t := time.NewTimer(reloadBridgeWait)
		select {
		case err := <-br.Reconfigure(set.devices):
			if err != nil {
				errs = append(errs, fmt.Errorf("upstream sparkplug session: %w", err))
			}
		case <-t.C:
			g.log.Warn("reload: the upstream bridge has not taken the new devices yet; it will", "waited", reloadBridgeWait)
		}
		t.Stop()
	}
	added, removed := deviceDiff(oldDevices, set.devices)
	g.log.Info("configuration reloaded", "devices", len(set.devices), "added", logx.Value(strings.Join(added, ",")),
		"removed", logx.Value(strings.Join(removed, ",")))
	g.fanOut(g.nodeSamples(time.Now()))
	return errors.Join(errs...)
}

// deviceDiff names the devices only in after (added) and only in before (removed).
func deviceDiff(before, after []drivers.DeviceInfo) (added, removed []string) {
	in := func(ds []drivers.DeviceInfo, name string) bool {
		return slices.ContainsFunc(ds, func(d drivers.DeviceInfo) bool { return d.Name == name })
	}
	for _, d := range after {
		if !in(before, d.Name) {
			added = append(added, d.Name)
		}
	}
	for _, d := range before {
		if !in(after, d.Name) {
			removed = append(removed, d.Name)
		}
	}
	return added, removed
}
