package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
)

// newLogger returns the gateway's logger at level, writing to w. Started by systemd (the
// JOURNAL_STREAM variable is set and w is that stream), each line starts with its syslog
// priority ("<4>" for a warning) and carries no timestamp of its own, so that journald records
// the priority and `journalctl -p warning` works; elsewhere lines are logfmt with a time.
func newLogger(level string, w io.Writer) *slog.Logger {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		lv = slog.LevelInfo
	}
	if journald(w) {
		return slog.New(&journalHandler{w: w, opts: slog.HandlerOptions{Level: lv}, mu: &sync.Mutex{}})
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lv}))
}

// journald reports whether w is the journal stream systemd handed us (JOURNAL_STREAM is
// "DEVICE:INODE" of that stream).
func journald(w io.Writer) bool {
	js := os.Getenv("JOURNAL_STREAM")
	if js == "" {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	dev, ino, ok := fileID(f)
	return ok && js == strconv.FormatUint(dev, 10)+":"+strconv.FormatUint(ino, 10)
}

// journalHandler writes logfmt lines without a time, prefixed with the syslog priority.
type journalHandler struct {
	w     io.Writer
	opts  slog.HandlerOptions
	attrs []slog.Attr
	group string
	mu    *sync.Mutex
}

func (h *journalHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.opts.Level.Level()
}

func (h *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	var buf []byte
	buf = append(buf, '<')
	buf = strconv.AppendInt(buf, int64(priority(r.Level)), 10)
	buf = append(buf, '>')
	lw := &lineWriter{buf: buf}
	th := slog.NewTextHandler(lw, &slog.HandlerOptions{Level: h.opts.Level, ReplaceAttr: dropTime})
	var inner slog.Handler = th
	if len(h.attrs) > 0 {
		inner = inner.WithAttrs(h.attrs)
	}
	if h.group != "" {
		inner = inner.WithGroup(h.group)
	}
	if err := inner.Handle(ctx, r); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := h.w.Write(lw.buf)
	return err
}

func (h *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &c
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.group = name
	return &c
}

type lineWriter struct{ buf []byte }

func (l *lineWriter) Write(p []byte) (int, error) { l.buf = append(l.buf, p...); return len(p), nil }

func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// priority maps a slog level to a syslog priority: error 3, warning 4, info 6, debug 7.
func priority(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return 3
	case l >= slog.LevelWarn:
		return 4
	case l >= slog.LevelInfo:
		return 6
	}
	return 7
}
