package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Started by systemd (JOURNAL_STREAM names our stderr), lines carry a syslog priority and no
// time of their own; elsewhere they carry a time and no priority.
func TestJournaldLines(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "journal"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dev, ino, ok := fileID(f)
	if !ok {
		t.Fatal("no device and inode for a regular file")
	}
	t.Setenv("JOURNAL_STREAM", strconv.FormatUint(dev, 10)+":"+strconv.FormatUint(ino, 10))
	log := newLogger("debug", f).With("part", "test")
	log.Warn("device is not answering", "device", "Well 1")
	log.Error("stopped")
	log.Info("running")
	log.Debug("detail")
	data, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	want := []string{"<4>level=WARN", "<3>level=ERROR", "<6>level=INFO", "<7>level=DEBUG"}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), data)
	}
	for i, l := range lines {
		if !strings.HasPrefix(l, want[i]) || strings.Contains(l, "time=") || !strings.Contains(l, "part=test") {
			t.Errorf("line %d = %q, want prefix %q, no time, part=test", i, l, want[i])
		}
	}

	// Not the journal's stream: plain logfmt with a time.
	t.Setenv("JOURNAL_STREAM", "1:2")
	g, err := os.Create(filepath.Join(t.TempDir(), "plain"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	newLogger("info", g).Warn("x")
	data, _ = os.ReadFile(g.Name())
	if s := string(data); !strings.HasPrefix(s, "time=") || strings.HasPrefix(s, "<") {
		t.Errorf("plain line = %q", s)
	}
}

func TestVersionLine(t *testing.T) {
	version, commit, buildDate = "1.2.3", "0123456789abcdef0123", "2026-12-02T00:00:00Z"
	t.Cleanup(func() { version, commit, buildDate = "dev", "", "" })
	f := strings.Fields(versionLine())
	if len(f) < 2 || f[0] != "wellgate" || f[1] != "1.2.3" || !strings.Contains(versionLine(), "commit 0123456789ab,") ||
		!strings.Contains(versionLine(), "built 2026-12-02T00:00:00Z") || !strings.Contains(versionLine(), "go1.") {
		t.Errorf("versionLine() = %q", versionLine())
	}
}
