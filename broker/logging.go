package broker

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/wellgate/wellgate/internal/logx"
)

// mochiLogger is the logger handed to mochi. mochi logs every client connection at info and
// some per-message events at warn (a full in-flight store, a failed packet with the whole
// packet in it); through this handler its info lines become debug, its packets are left out,
// every string is bounded and each kind of warning is rate-limited.
func mochiLogger(log *slog.Logger) *slog.Logger {
	return slog.New(&mochiHandler{h: log.Handler(), limit: logx.NewLimiter(time.Minute)})
}

type mochiHandler struct {
	h     slog.Handler
	limit *logx.Limiter
}

// droppedAttrs are mochi attributes that carry whole packets or payloads.
var droppedAttrs = map[string]bool{"pk": true, "packet": true, "v": true, "will": true}

// quietMessages are mochi records that wellgate reports itself (denials, disconnects, quotas),
// lowered to debug.
var quietMessages = map[string]bool{
	"error processing packet":  true, // the listener and the access hook report why
	"client disconnected":      true,
	"failed publishing packet": true,
	"client keepalive is below minimum recommended value and may exhibit connection instability": true,
}

func (m *mochiHandler) Enabled(ctx context.Context, lv slog.Level) bool {
	return m.h.Enabled(ctx, min(lv, slog.LevelDebug)) || m.h.Enabled(ctx, lv)
}

func (m *mochiHandler) Handle(ctx context.Context, r slog.Record) error {
	lv := r.Level
	if lv == slog.LevelInfo || quietMessages[r.Message] {
		lv = slog.LevelDebug
	}
	if !m.h.Enabled(ctx, lv) {
		return nil
	}
	if lv >= slog.LevelWarn {
		ok, n := m.limit.Allow(r.Message)
		if !ok {
			return nil
		}
		if n > 0 {
			r.AddAttrs(slog.Int("suppressed", n))
		}
	}
	out := slog.NewRecord(r.Time, lv, logx.Value(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if droppedAttrs[a.Key] {
			return true
		}
		if a.Value.Kind() != slog.KindInt64 && a.Value.Kind() != slog.KindBool {
			a.Value = slog.StringValue(logx.Value(fmt.Sprint(a.Value.Any())))
		}
		out.AddAttrs(a)
		return true
	})
	return m.h.Handle(ctx, out)
}

func (m *mochiHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &mochiHandler{h: m.h.WithAttrs(as), limit: m.limit}
}

func (m *mochiHandler) WithGroup(n string) slog.Handler {
	return &mochiHandler{h: m.h.WithGroup(n), limit: m.limit}
}
