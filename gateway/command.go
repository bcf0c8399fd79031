package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/wellgate/wellgate/broker"
	"github.com/wellgate/wellgate/drivers"
	"github.com/wellgate/wellgate/internal/logx"
	"github.com/wellgate/wellgate/sparkplug"
)

// Commands. Both Sparkplug sessions (the embedded broker's and the upstream bridge's) decode
// their NCMD/DCMD themselves — a session performs a Rebirth on its own connection — and hand
// every write they carry to route, the one command router: node writes (Node Control/Next
// Server, Node Control/Scan Rate) are carried out at once, device writes go to that device's
// own write queue, so that a device that ignores writes delays only its own.

// writeTimeout bounds one command's write and read-back.
const writeTimeout = 10 * time.Second

// logEvery is how often one kind of repeated event (a refused command, a failing publish)
// may log.
const logEvery = 10 * time.Second

// localCommand handles an NCMD or DCMD arriving on the embedded broker for the local session.
// A command with the retain flag (published retained, or the broker's replay of a retained
// one to the gateway's subscription at every start) is ignored, never written, and logged
// rate-limited: Sparkplug commands are never retained (docs/sparkplug.md
// [cmd-retained-ignored]). Bad commands are logged (rate-limited) and ignored. A Rebirth the
// session merged (asked within its hold-off after the last births) is published once the
// hold-off has passed.
//
// Who sent it (client id, user, remote address, from the broker) is in every line it logs,
// so that the write that moved a valve can be traced to a person.
func (g *Gateway) localCommand(sess *sparkplug.Session, m broker.Message) {
	topic, payload := m.Topic, m.Payload
	who := []any{"client", logx.Value(m.Sender.ClientID), "user", logx.Value(m.Sender.User), "remote", m.Sender.Remote}
	if m.Retain {
		g.limit.Log(g.log, slog.LevelWarn, "command retained|local",
			"retained command ignored: Sparkplug commands are never retained; clear it on the broker",
			append([]any{"origin", originLocal, "topic", logx.Value(topic), "bytes", len(payload)}, who...)...)
		return
	}
	writes, err := sess.HandleCommand(topic, payload)
	if err != nil {
		g.limit.Log(g.log, slog.LevelWarn, "command ignored|local", "command ignored",
			append([]any{"origin", originLocal, "topic", logx.Value(topic), "err", logx.Err(err)}, who...)...)
	}
	if wait, ok := sess.DeferredRebirth(); ok {
		time.AfterFunc(wait, func() {
			if _, err := sess.FlushRebirth(); err != nil {
				g.limit.Log(g.log, slog.LevelWarn, "local rebirth", "merged rebirth failed", "err", logx.Err(err))
			}
		})
	}
	g.routeFrom(originLocal, who, writes)
}

// Origins of commands, for the logs.
const (
	originLocal    = "local"
	originUpstream = "upstream"
)

// route carries out the writes a command asked for; origin names the session it came from.
// It returns at once: device writes are queued per device. A command's device writes are
// logged in one line (how many, to which devices, the first few, how many were refused and
// why), not one per metric; each write's outcome is logged at debug level, failures
// rate-limited per device.
func (g *Gateway) route(origin string, writes []sparkplug.Write) { g.routeFrom(origin, nil, writes) }

// routeFrom is route with who sent the command (log attributes), when known.
func (g *Gateway) routeFrom(origin string, who []any, writes []sparkplug.Write) {
	var sum commandSummary
	for _, w := range writes {
		if w.Device == "" {
			g.writeNodeCommand(origin, w)
			continue
		}
		sum.add(w, g.writes.put(writeReq{origin: origin, w: w}))
	}
	if sum.writes == 0 {
		return
	}
	level := slog.LevelInfo
	if sum.refused > 0 {
		level = slog.LevelWarn
	}
	g.log.Log(context.Background(), level, "command writes", append([]any{"origin", origin, "writes", sum.writes,
		"devices", logx.Value(strings.Join(sum.devices, ",")), "first", logx.Value(sum.first.String()),
		"refused", sum.refused, "err", logx.Err(sum.err)}, who...)...)
}

// commandSummary sums up the device writes of one command for its log line.
type commandSummary struct {
	writes, refused int
	devices         []string
	first           strings.Builder // the first writes, device/tag=value
	err             error           // why the first refused write was refused
}

func (s *commandSummary) add(w sparkplug.Write, err error) {
	s.writes++
	if !slices.Contains(s.devices, w.Device) {
		s.devices = append(s.devices, w.Device)
	}
	if s.first.Len() < logx.MaxValue {
		if s.first.Len() > 0 {
			s.first.WriteString(", ")
		}
		fmt.Fprintf(&s.first, "%s/%s=%s", w.Device, w.Tag, logx.Value(w.Value.String()))
	}
	if err != nil {
		s.refused++
		if s.err == nil {
			s.err = err
		}
	}
}

func (g *Gateway) writeNodeCommand(origin string, w sparkplug.Write) {
	if err := g.writeNode(w.Tag, w.Value); err != nil {
		g.limit.Log(g.log, slog.LevelWarn, "node command refused|"+w.Tag, "node command refused",
			"origin", origin, "metric", w.Tag, "value", logx.Value(w.Value.String()), "err", err)
	}
}

// perform carries out one queued device write (bounded by writeTimeout; ctx ends it early when
// the gateway stops) and publishes the value read back on every output, whichever session the
// command came from. It logs the outcome once.
func (g *Gateway) perform(ctx context.Context, r writeReq) error {
	w := r.w
	log := g.log.With("origin", r.origin, "device", w.Device, "tag", w.Tag, "value", logx.Value(w.Value.String()))
	wr, ok := g.writers[w.Device]
	if !ok {
		log.Warn("write refused: device does not accept writes")
		return drivers.ErrNotWritable
	}
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	got, err := wr.Write(ctx, w.Device, w.Tag, w.Value)
	if err != nil {
		if errors.Is(err, drivers.ErrNotWritable) || errors.Is(err, drivers.ErrOutOfRange) || errors.Is(err, drivers.ErrUnknownTag) {
			g.limit.Log(log, slog.LevelWarn, "write refused|"+w.Device, "write refused", "err", logx.Err(err))
		} else {
			g.limit.Log(log, slog.LevelWarn, "write failed|"+w.Device, "write failed", "err", logx.Err(err))
		}
		return err
	}
	log.Debug("written", "read_back", logx.Value(got.String()))
	batch := []drivers.Sample{{Device: w.Device, Tag: w.Tag, Value: got, Quality: drivers.Good, Time: time.Now()}}
	g.store.samples(batch)
	for _, s := range g.currentSinks() {
		s.Written(batch)
	}
	return nil
}
