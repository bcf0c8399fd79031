package logx

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wellgate/wellgate/internal/clock"
)

func TestValueBoundsAndKeepsUTF8(t *testing.T) {
	if got := Value("short"); got != "short" {
		t.Fatalf("short value changed: %q", got)
	}
	long := strings.Repeat("é", 100_000) // 200,000 bytes
	got := Value(long)
	if len(got) > MaxValue+40 || !utf8.ValidString(got) || !strings.Contains(got, "more bytes") {
		t.Fatalf("Value of a long string: %d bytes, valid %v: %q…", len(got), utf8.ValidString(got), got[:20])
	}
}

func TestLimiterCountsSuppressedLines(t *testing.T) {
	f := clock.NewFake(time.Unix(0, 0))
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	l := &Limiter{Every: 10 * time.Second, Clock: f}
	for range 100_000 {
		l.Log(log, slog.LevelWarn, "dcmd", "command ignored", "err", "bad")
	}
	l.Log(log, slog.LevelWarn, "other", "other event")
	f.Advance(10 * time.Second)
	l.Log(log, slog.LevelWarn, "dcmd", "command ignored", "err", "bad")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[2], "suppressed=99999") {
		t.Fatalf("third line does not count the suppressed ones: %s", lines[2])
	}
}

func TestLimiterKeysAreBounded(t *testing.T) {
	l := NewLimiter(time.Hour)
	for i := range 10 * maxKeys {
		l.Allow(strings.Repeat("k", i%50) + string(rune('a'+i%26)) + time.Duration(i).String())
	}
	if n := len(l.events); n > maxKeys {
		t.Fatalf("limiter tracks %d keys, bound is %d", n, maxKeys)
	}
}
