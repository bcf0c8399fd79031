package sparkplug

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestTopics(t *testing.T) {
	good := map[string]Topic{
		"spBv1.0/G/NBIRTH/E":       {Group: "G", Type: NBIRTH, EdgeNode: "E"},
		"spBv1.0/G/DDATA/E/D":      {Group: "G", Type: DDATA, EdgeNode: "E", Device: "D"},
		"spBv1.0/sité 1/NCMD/nœud": {Group: "sité 1", Type: NCMD, EdgeNode: "nœud"},
	}
	for s, want := range good {
		got, err := ParseTopic(s)
		if err != nil || got != want || got.String() != s {
			t.Errorf("ParseTopic(%q) = %+v, %v; String %q", s, got, err, got.String())
		}
	}
	bad := []string{"", "spBv1.0/G/NBIRTH", "spBv1.0/G/NBIRTH/E/D", "spBv1.0/G/DDATA/E", "spBv1.0/G/FOO/E",
		"spAv1.0/G/NBIRTH/E", "spBv1.0//NBIRTH/E", "spBv1.0/G/NDATA/E+", "spBv1.0/G/DCMD/E/D/X", "spBv1.0/STATE/h",
		"spBv1.0/G/NDATA/\xff"}
	for _, s := range bad {
		if _, err := ParseTopic(s); !errors.Is(err, ErrTopic) {
			t.Errorf("ParseTopic(%q): %v, want ErrTopic", s, err)
		}
	}
	for _, id := range []string{"", "a/b", "a+", "#", "\xc3\x28", "a\x00"} {
		if ValidID(id) == nil {
			t.Errorf("ValidID(%q) accepted", id)
		}
	}
	if ValidID("Well Pad 7 — ☀") != nil {
		t.Error("ValidID rejects a unicode id")
	}
	if StateTopic("h") != "spBv1.0/STATE/h" || LegacyStateTopic("h") != "STATE/h" {
		t.Error("state topics")
	}
}

func TestBdSeqStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bdseq")
	s, err := NewBdSeqStore(path)
	if err != nil {
		t.Fatal(err)
	}
	for want := uint64(0); want < 3; want++ {
		if v, err := s.Next(); err != nil || v != want || s.Current() != want {
			t.Fatalf("Next = %d, %v; want %d", v, err, want)
		}
	}
	// Survives a restart, wraps 255 → 0.
	if err := os.WriteFile(path, []byte("254\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = NewBdSeqStore(path)
	if err != nil || s.Current() != 254 {
		t.Fatalf("reopen: %v, current %d", err, s.Current())
	}
	for _, want := range []uint64{255, 0, 1} {
		if v, err := s.Next(); err != nil || v != want {
			t.Fatalf("Next = %d, %v; want %d (docs/sparkplug.md [topics-nbirth-bdseq-increment]: bdSeq wraps 255 → 0)", v, err, want)
		}
		s2, err := NewBdSeqStore(path)
		if err != nil || s2.Current() != want {
			t.Fatalf("persisted %d, %v; want %d (docs/sparkplug.md [bdseq-persisted])", s2.Current(), err, want)
		}
	}
	for _, corrupt := range []string{"", "x", "256", "-1"} {
		if err := os.WriteFile(path, []byte(corrupt), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := NewBdSeqStore(path)
		if !errors.Is(err, ErrBdSeqCorrupt) || s == nil {
			t.Fatalf("corrupt %q: %v", corrupt, err)
		}
		if v, err := s.Next(); err != nil || v != 0 {
			t.Errorf("after corrupt %q: Next = %d, %v; want 0", corrupt, v, err)
		}
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*tmp*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	// Peek does not spend a number; Commit does, durably (docs/sparkplug.md
	// [topics-nbirth-bdseq-increment]: only a CONNECT sent moves the bdSeq on).
	s, err = NewBdSeqStore(path)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if v, err := s.Peek(); err != nil || v != 1 {
			t.Fatalf("Peek = %d, %v; want 1 after Next gave 0", v, err)
		}
	}
	if err := s.Commit(1); err != nil {
		t.Fatal(err)
	}
	if s2, err := NewBdSeqStore(path); err != nil || s2.Current() != 1 {
		t.Fatalf("after Commit(1): persisted %d, %v", s2.Current(), err)
	}
	if v, _ := s.Peek(); v != 2 {
		t.Fatalf("Peek after Commit(1) = %d, want 2", v)
	}
	if err := s.Commit(256); err == nil {
		t.Error("Commit(256) accepted")
	}
	// A missing directory is an error on Next, not a silent success.
	s, err = NewBdSeqStore(filepath.Join(t.TempDir(), "nodir", "bdseq"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Next(); err == nil {
		t.Error("Next in a missing directory succeeded")
	}
}

func TestParseStateAndTracker(t *testing.T) {
	st, err := ParseState("spBv1.0/STATE/scada", []byte(`{"online":true,"timestamp":1700000000000,"extra":1}`))
	if err != nil || st != (HostState{HostID: "scada", Online: true, Timestamp: 1700000000000}) {
		t.Fatalf("3.0 state %+v, %v", st, err)
	}
	st, err = ParseState("STATE/scada", []byte("OFFLINE"))
	if err != nil || st != (HostState{HostID: "scada", Legacy: true}) {
		t.Fatalf("legacy state %+v, %v", st, err)
	}
	bad := map[string]string{
		"spBv1.0/STATE/scada": `{"online":true}`, "spBv1.0/STATE/a/b": `{"online":true,"timestamp":1}`,
		"STATE/x": "online", "spBv1.0/STATE/": `{"online":true,"timestamp":1}`, "FOO/x": "ONLINE",
	}
	for topic, payload := range bad {
		if _, err := ParseState(topic, []byte(payload)); !errors.Is(err, ErrState) {
			t.Errorf("ParseState(%q, %q): %v", topic, payload, err)
		}
	}
	for _, payload := range []string{`{"online":"yes","timestamp":1}`, `{"online":true,"timestamp":-1}`, `[]`, `null`, ``} {
		if _, err := ParseState("spBv1.0/STATE/h", []byte(payload)); err == nil {
			t.Errorf("ParseState accepted %q", payload)
		}
	}

	tr := NewHostTracker("scada")
	steps := []struct {
		st              HostState
		changed, online bool
	}{
		{HostState{HostID: "scada", Online: true, Timestamp: 10}, true, true},
		{HostState{HostID: "other", Online: false, Timestamp: 99}, false, true},
		{HostState{HostID: "scada", Online: false, Timestamp: 5}, false, true}, // older: ignored
		{HostState{HostID: "scada", Online: true, Timestamp: 11}, false, true},
		{HostState{HostID: "scada", Online: false, Timestamp: 11}, true, false}, // equal timestamp accepted
		{HostState{HostID: "scada", Online: true, Timestamp: 10}, false, false},
		{HostState{HostID: "scada", Online: true, Legacy: true}, true, true},
	}
	for i, s := range steps {
		changed, online := tr.Observe(s.st)
		if changed != s.changed || online != s.online || tr.Online() != s.online {
			t.Errorf("step %d %+v: changed %v online %v; want %v %v (docs/sparkplug.md [message-flow-edge-node-birth-publish-phid-wait-timestamp]: ignore STATE older than the last seen)", i, s.st, changed, online, s.changed, s.online)
		}
	}
}
