package gateway

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/wellgate/wellgate/bridge"
	"github.com/wellgate/wellgate/bridge/queue"
	"github.com/wellgate/wellgate/broker"
	"github.com/wellgate/wellgate/config"
	"github.com/wellgate/wellgate/sparkplug"
)

// startUpstream opens the store-and-forward queue and the bdSeq counter, builds the bridge with
// a Sparkplug session of its own, and runs it until ctx ends; the returned channel gives Run's
// result, after the queue is closed. A bridge that fails calls fail.
func (g *Gateway) startUpstream(ctx context.Context, fail func(error)) (<-chan error, error) {
	done := make(chan error, 1)
	if !g.cfg.Upstream.Enabled() {
		done <- nil
		return done, nil
	}
	up := g.cfg.Upstream
	sess, err := g.newSession(sessionUpstream)
	if err != nil {
		return nil, err
	}
	g.sessions.set(&g.sessions.upstream, sess)
	dir := g.cfg.Gateway.DataDir
	q, err := queue.OpenDisk(filepath.Join(dir, "queue"), queue.Options{
		MaxBytes: int64(up.Queue.MaxBytes), MaxAge: up.Queue.MaxAge.D(), SyncInterval: up.Queue.SyncInterval.D(),
	}, g.log.With("part", "queue"))
	if err != nil {
		return nil, fmt.Errorf("store-and-forward queue: %w", err)
	}
	bd, err := g.openBdSeq("bdseq")
	if err != nil {
		_ = q.Close()
		return nil, err
	}
	opts := upstreamOptions(up)
	opts.PrimaryHostID, opts.LegacyState = g.cfg.Sparkplug.PrimaryHostID, g.cfg.Sparkplug.LegacyState
	opts.FirstPollWait = firstPollWait // as the local births: values, not nulls
	opts.Session, opts.Queue, opts.BdSeq, opts.Logger = sess, q, bd, g.log
	opts.OnCommand = func(ws []sparkplug.Write) { g.route(originUpstream, ws) }
	if b := g.currentBroker(); b != nil {
		opts.Local = localBroker{b}
	}
	if len(opts.Rules) > 0 && opts.Local == nil {
		_ = q.Close()
		return nil, fmt.Errorf("upstream.forward rules need the embedded broker ([broker] enabled = true)")
	}
	br, err := bridge.New(opts)
	if err != nil {
		_ = q.Close()
		return nil, err
	}
	g.mu.Lock()
	g.bridge = br
	g.sinks = append(g.sinks, br)
	g.mu.Unlock()
	go func() {
		err := br.Run(ctx)
		_ = br.Close() // Run has returned: Close only marks the bridge closed
		if cerr := q.Close(); cerr != nil {
			g.log.Warn("close store-and-forward queue", "err", cerr)
		}
		if err != nil {
			fail(fmt.Errorf("upstream bridge: %w", err))
		}
		done <- err
	}()
	return done, nil
}

// openBdSeq opens a bdSeq counter in the data dir; a corrupt one starts over with a warning.
func (g *Gateway) openBdSeq(name string) (*sparkplug.BdSeqStore, error) {
	bd, err := sparkplug.NewBdSeqStore(filepath.Join(g.cfg.Gateway.DataDir, name))
	if bd != nil && err != nil {
		g.log.Warn("bdSeq counter", "file", name, "err", err)
		return bd, nil
	}
	return bd, err
}

func (g *Gateway) currentBroker() *broker.Broker {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.broker
}

// upstreamOptions translates the [upstream] table into the bridge's own options.
func upstreamOptions(up config.Upstream) bridge.Options {
	o := bridge.Options{
		Servers: up.Servers, ClientID: up.ClientID, Username: up.Username, Password: up.Password,
		Keepalive: up.Keepalive.D(), ConnectTimeout: up.ConnectTimeout.D(),
		TLS: bridge.TLS{CAFile: up.TLS.CAFile, CertFile: up.TLS.CertFile, KeyFile: up.TLS.KeyFile,
			ServerName: up.TLS.ServerName, InsecureSkipVerify: up.TLS.InsecureSkipVerify},
		DetectionWindow: up.Queue.DetectionWindow.D(), ReplayRate: up.Queue.ReplayRate,
	}
	for _, f := range up.Forward {
		o.Rules = append(o.Rules, bridge.Rule{Direction: bridge.Direction(f.Direction),
			Filter: f.Filter, Prefix: f.Prefix, QoS: byte(f.QoS), Retain: f.Retain})
	}
	return o
}

// localBroker adapts the embedded broker to the bridge's forwarding rules.
type localBroker struct{ b *broker.Broker }

func (l localBroker) Subscribe(filter string, fn func(topic string, payload []byte, qos byte, retain bool)) error {
	return l.b.Subscribe(filter, fn)
}

func (l localBroker) Publish(topic string, payload []byte, retain bool, qos byte) error {
	return l.b.Publish(topic, qos, retain, payload)
}

// nextServer moves the upstream connection to its next server: "Node Control/Next Server"
// from either session, through the command router. The bridge refuses a move within 10 s of
// the last one (bridge.ErrNextServerTooSoon): a storm of requests moves it once.
func (g *Gateway) nextServer() error {
	g.mu.RLock()
	br := g.bridge
	g.mu.RUnlock()
	if br == nil {
		g.log.Info("next server asked for, but no upstream is configured")
		return nil
	}
	return br.NextServer()
}
